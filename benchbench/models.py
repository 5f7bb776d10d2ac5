"""Stacked MLPs: the networks of several seeds (members) in one module.

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
        return torch.baddbmm(self.bias, x, self.weight)


class StackedMLP(nn.Module):
    """ReLU MLP with widths ``sizes`` (input, hidden..., output), one per member."""

    def __init__(self, sizes: Sequence[int], generators: Sequence[torch.Generator]):
        super().__init__()
        self.members = len(generators)
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(StackedLinear(fan_in, fan_out, generators))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[M, B, *in_shape]`` -> ``[M, B, out]``."""
        return self.net(x.flatten(2))
