"""Stacked networks: the networks of several seeds (members) in one module, built from an
objective's declarations (:class:`benchbench.Network`, :func:`build_network`; a
:class:`benchbench.FreeParameter` as a :class:`StackedParameter`, :func:`build_declared`) and a
dataset's shape. A network's ``activation`` (MLPs) and ``zero_init`` (its ``output_layer()`` zeroed
after drawing it, so the streams move as without it) are applied here.

A stacked linear layer holds weights ``[M, in, out]`` and maps ``[M, B, in]`` to ``[M, B, out]``
with one ``torch.baddbmm``. Members share no parameters and no randomness: member ``i`` is
initialised from its own generator exactly as ``nn.Linear`` would be, so its weights do not depend
on how many members are stacked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..api.dataset import Dataset
from ..api.errors import PluginError
from ..api.objective import Activation, Declaration, FreeParameter, Network
from .convnets import DCGANCritic, DCGANDenoiser, DCGANGenerator

NARROW = 4  # fan-outs up to this use the transposed matrix product
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU,
                                           "silu": nn.SiLU, "softplus": nn.Softplus, "tanh": nn.Tanh}
"""The modules of :data:`benchbench.api.objective.Activation`, by name."""


class StackedLinear(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, generators: Sequence[torch.Generator]):
        super().__init__()
        bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in))
        weights, biases = [], []
        for g in generators:
            weights.append(torch.empty(fan_in, fan_out, device=g.device).uniform_(-bound, bound, generator=g))
            biases.append(torch.empty(1, fan_out, device=g.device).uniform_(-bound, bound, generator=g))
        self.weight = nn.Parameter(torch.stack(weights))
        self.bias = nn.Parameter(torch.stack(biases))

    def forward(self, x: Tensor) -> Tensor:
        # Matrix-vector shapes take another CPU kernel for a stack of one than for several, which
        # would make a member's result depend (in the last bits) on the stack size. These layers
        # are tiny: compute them elementwise, which is the same for every stack size.
        if self.weight.shape[1] == 1:  # fan-in 1: an outer product
            return self.bias + x * self.weight
        if self.weight.shape[2] == 1:  # fan-out 1: one dot product per sample
            return self.bias + (x * self.weight.transpose(1, 2)).sum(-1, keepdim=True)
        if self.weight.shape[2] <= NARROW:  # few outputs: the transposed product is the faster kernel
            return self.bias + torch.bmm(self.weight.transpose(1, 2), x.transpose(1, 2)).transpose(1, 2)
        return torch.baddbmm(self.bias, x, self.weight)


class StackedMLP(nn.Module):
    """MLP with widths ``sizes`` (input, hidden..., output), one per member, ``activation`` (ReLU by
    default) between its layers."""

    def __init__(self, sizes: Sequence[int], generators: Sequence[torch.Generator], activation: Activation = "relu"):
        super().__init__()
        self.members = len(generators)
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(StackedLinear(fan_in, fan_out, generators))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[M, B, *in_shape]`` -> ``[M, B, out]``."""
        return self.net(x.flatten(2))

    def output_layer(self) -> nn.Module:
        return self.net[-1]


class StackedParameter(nn.Module):
    """A declared :class:`benchbench.FreeParameter`: one tensor ``[M, *shape]``, every member starting at
    ``init``; ``value`` is what losses read as ``nets[name]``."""

    def __init__(self, spec: FreeParameter, members: int, device: torch.device):
        super().__init__()
        self.value = nn.Parameter(torch.full((members, *spec.shape), float(spec.init), device=device))

    def forward(self) -> Tensor:
        return self.value


class Squash(nn.Module):
    """Maps outputs into ``(low, high)`` with a scaled tanh: generators of bounded data (images)."""

    def __init__(self, low: float, high: float):
        super().__init__()
        self.low, self.half = low, (high - low) / 2

    def forward(self, x: Tensor) -> Tensor:
        return self.low + self.half * (torch.tanh(x) + 1)


class BuiltNetwork(nn.Module):
    """A declared network: ``[M, B, *input]`` (and times ``t`` ``[M, B]`` when ``spec.time``) ->
    ``[M, B, *output]``, squashed into the data's bounds when ``spec.squash`` and the data has any."""

    def __init__(self, body: nn.Module, spec: Network, squash: Squash | None, time_feature: bool):
        super().__init__()
        self.body, self.squash = body, squash
        self.output, self.time, self.time_feature = tuple(spec.output), spec.time, time_feature

    def forward(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        if self.time != (t is not None):
            raise TypeError(f"this network {'takes' if self.time else 'takes no'} time: call it as "
                            f"{'net(x, t) with t [M, B]' if self.time else 'net(x)'}")
        if self.time_feature:  # an MLP: the time is one more input feature
            h = self.body(torch.cat([x.flatten(2), t.to(x.dtype).unsqueeze(-1)], -1))
        else:
            h = self.body(x) if t is None else self.body(x, t)
        if self.squash is not None:
            h = self.squash(h)
        return h.unflatten(2, self.output)


def build_declared(spec: Declaration, dataset: Dataset, generators: Sequence[torch.Generator], owner: str
                   ) -> nn.Module:
    """What ``spec`` declares, stacked: a network (:func:`build_network`) or a free parameter."""
    if isinstance(spec, FreeParameter):
        return StackedParameter(spec, len(generators), generators[0].device)
    return build_network(spec, dataset, generators, owner)


def build_network(spec: Network, dataset: Dataset, generators: Sequence[torch.Generator], owner: str) -> nn.Module:
    """The stacked network ``spec`` declares, member ``i`` initialised from ``generators[i]``.
    ``owner`` (the objective's name) is named by the errors of an impossible declaration."""
    size_in, size_out = math.prod(spec.input), math.prod(spec.output)
    if spec.architecture == "dcgan":
        if not (_is_image(spec.input) or _is_image(spec.output)):
            _check_image(dataset)  # the message of the default networks on flat data
        body = _dcgan(spec, generators, owner)
        time_feature = False
    else:
        body = StackedMLP([size_in + int(spec.time), *spec.hidden, size_out], generators, spec.activation or "relu")
        time_feature = spec.time
    if spec.zero_init:  # drawn first (the streams move as without it), then zeroed
        with torch.no_grad():
            for p in body.output_layer().parameters():
                p.zero_()
    squash = Squash(*dataset.bounds) if spec.squash and dataset.bounds is not None else None
    return BuiltNetwork(body, spec, squash, time_feature)


def _dcgan(spec: Network, generators: Sequence[torch.Generator], owner: str) -> nn.Module:
    source, target = tuple(spec.input), tuple(spec.output)
    for shape in (source, target):
        if len(shape) == 3 and shape[1] != shape[2]:
            raise PluginError(owner, f"network {spec.name!r}: architecture dcgan needs square images (C, H, H), got "
                                     f"{shape}: use architecture mlp")
    if len(source) == 1 and _is_image(target) and not spec.time:
        return DCGANGenerator(source[0], target, spec.channels, generators)
    if _is_image(source) and len(target) == 1 and not spec.time:
        return DCGANCritic(source, spec.channels, generators, outputs=target[0])
    if _is_image(source) and source == target:
        return DCGANDenoiser(source, spec.channels, generators, time=spec.time)
    raise PluginError(owner, f"network {spec.name!r}: architecture dcgan maps a vector to an image, an image to a "
                             f"vector, or an image to an image of the same shape (with or without time; the first "
                             f"two without); got {source} -> {target}{' with time' if spec.time else ''}")


def _is_image(shape: Sequence[int]) -> bool:
    return len(shape) == 3


def _check_image(dataset: Dataset) -> None:
    if len(dataset.shape) != 3 or dataset.shape[1] != dataset.shape[2]:
        raise PluginError(dataset.name, f"architecture dcgan needs square images (C, H, H); the data has shape "
                                        f"{tuple(dataset.shape)}: use architecture mlp")
