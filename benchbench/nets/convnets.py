"""Stacked DCGAN-style convolutional networks (Radford et al. 2016) for image datasets.

The members of a stack are the groups of one grouped convolution: activations are laid out
``[B, M * C, H, W]`` inside the network (member-major channels), and ``[M, B, C, H, W]`` at its
boundary, like every stacked network. Batch normalisation over ``M * C`` channels normalises each
member's channels over its own batch only, so members stay independent.

Sizing from the image shape ``(C, H, W)``: the resolution is halved while it is even and above 4
(8 -> 4, 28 -> 14 -> 7, 32 -> 16 -> 8 -> 4); each halving is one stride-2 4x4 (transposed)
convolution, and the channels double per halving from ``channels`` at full resolution.

- Generator: stacked linear z -> (top channels, s, s), BN, ReLU; per up-sampling a transposed
  convolution, BN, ReLU; a 3x3 convolution to the image channels.
- Critic: a 3x3 convolution, LeakyReLU(0.2); per down-sampling a stride-2 convolution,
  LeakyReLU(0.2); a stacked linear to one logit (or any number of outputs: an image encoder).
  No batch normalisation in the critic, so that losses that look at single samples (e.g.
  gradient penalties) stay valid.
- Denoiser (image -> image of the same shape, optionally conditioned on a time ``t`` in [0, 1]:
  velocity fields, noise predictors): a small encoder-decoder. A 3x3 convolution of the image
  (and ``t`` as one more constant channel), then per down-sampling a stride-2 convolution, per
  up-sampling a transposed one whose output is added to the encoder's at that resolution (skip
  connections), SiLU activations, ``t`` times a learned per-channel vector added after every
  layer, and a 3x3 convolution back to the image channels. No normalisation: a sample's output
  depends on that sample alone. So without gradients on the CPU (a sampler's hundreds of calls on
  thousands of samples) it runs on chunks of samples whose widest activation holds about
  :data:`SAMPLING_CHUNK_ENTRIES` values: each layer's output then stays in the CPU's cache, where a
  whole batch of 28x28 images streamed every elementwise layer through memory at a third of the
  speed. On the CPU the chunks give the same bits as one call (checked by tests/nets/test_convnets.py).

Weights are drawn as in DCGAN: N(0, 0.02) for convolutions and linear maps, zero biases, batch-norm
scales N(1, 0.02), each member from its own generator. Each network names its last layer
(``output_layer()``), which a declaration with ``zero_init`` starts at zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LEAK = 0.2
SAMPLING_CHUNK_ENTRIES = 1 << 20  # without gradients, the denoiser runs on chunks of samples of this many activations


def resolutions(size: int) -> list[int]:
    """Spatial sizes from the smallest to ``size``: halved while even and above 4."""
    sizes = [size]
    while sizes[-1] % 2 == 0 and sizes[-1] > 4:
        sizes.append(sizes[-1] // 2)
    return sizes[::-1]


def _normal(shape: Sequence[int], generators: Sequence[torch.Generator], mean: float = 0.0) -> nn.Parameter:
    return nn.Parameter(torch.cat([torch.empty(*shape, device=g.device).normal_(mean, 0.02, generator=g)
                                   for g in generators]))


class StackedConv(nn.Module):
    """A (transposed) convolution per member, as one grouped convolution on ``[B, M * C, H, W]``."""

    def __init__(self, fan_in: int, fan_out: int, kernel: int, stride: int, padding: int,
                 generators: Sequence[torch.Generator], transpose: bool = False):
        super().__init__()
        self.members, self.stride, self.padding, self.transpose = len(generators), stride, padding, transpose
        shape = (fan_in, fan_out, kernel, kernel) if transpose else (fan_out, fan_in, kernel, kernel)
        self.weight = _normal(shape, generators)  # [M * first, second, k, k]
        self.bias = nn.Parameter(torch.zeros(self.members * fan_out, device=generators[0].device))

    def forward(self, x: Tensor) -> Tensor:
        conv = F.conv_transpose2d if self.transpose else F.conv2d
        return conv(x, self.weight, self.bias, self.stride, self.padding, groups=self.members)


class StackedBatchNorm(nn.BatchNorm2d):
    """Batch statistics per member and channel; no running statistics (always the batch's own)."""

    def __init__(self, channels: int, generators: Sequence[torch.Generator]):
        super().__init__(len(generators) * channels, track_running_stats=False)
        self.weight = _normal((channels,), generators, mean=1.0)


class StackedDense(nn.Module):
    """A linear map per member on flattened ``[M, B, in]`` inputs (DCGAN initialisation)."""

    def __init__(self, fan_in: int, fan_out: int, generators: Sequence[torch.Generator]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([torch.empty(fan_in, fan_out, device=g.device).normal_(
            0.0, 0.02, generator=g) for g in generators]))
        self.bias = nn.Parameter(torch.zeros(len(generators), 1, fan_out, device=generators[0].device))

    def forward(self, x: Tensor) -> Tensor:
        if self.weight.shape[2] == 1:  # one logit: a dot product per sample (same bits for any stack size)
            return self.bias + (x * self.weight.transpose(1, 2)).sum(-1, keepdim=True)
        return torch.baddbmm(self.bias, x, self.weight)


class DCGANGenerator(nn.Module):
    """``[M, B, noise_dim]`` -> ``[M, B, C * H * W]`` (flattened, like the MLP generator)."""

    def __init__(self, noise_dim: int, shape: Sequence[int], channels: int, generators: Sequence[torch.Generator]):
        super().__init__()
        image_channels, height = shape[0], shape[1]
        sizes = resolutions(height)
        self.members, self.start = len(generators), sizes[0]
        self.top = channels * 2 ** (len(sizes) - 1)
        self.project = StackedDense(noise_dim, self.top * self.start ** 2, generators)
        layers: list[nn.Module] = [StackedBatchNorm(self.top, generators), nn.ReLU()]
        width = self.top
        for _ in sizes[1:]:
            layers += [StackedConv(width, width // 2, 4, 2, 1, generators, transpose=True),
                       StackedBatchNorm(width // 2, generators), nn.ReLU()]
            width //= 2
        layers.append(StackedConv(width, image_channels, 3, 1, 1, generators))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        members, batch = z.shape[:2]
        h = self.project(z)  # [M, B, top * s * s]
        h = h.view(members, batch, self.top, self.start, self.start).transpose(0, 1)
        x = self.net(h.reshape(batch, members * self.top, self.start, self.start))  # [B, M * C, H, W]
        return x.view(batch, members, -1).transpose(0, 1)

    def output_layer(self) -> nn.Module:
        return self.net[-1]


class DCGANCritic(nn.Module):
    """``[M, B, C, H, W]`` (or flattened) -> logits ``[M, B, outputs]``."""

    def __init__(self, shape: Sequence[int], channels: int, generators: Sequence[torch.Generator], outputs: int = 1):
        super().__init__()
        self.shape = tuple(shape)
        sizes = resolutions(shape[1])
        layers: list[nn.Module] = [StackedConv(shape[0], channels, 3, 1, 1, generators), nn.LeakyReLU(LEAK)]
        width = channels
        for _ in sizes[1:]:
            layers += [StackedConv(width, width * 2, 4, 2, 1, generators), nn.LeakyReLU(LEAK)]
            width *= 2
        self.net = nn.Sequential(*layers)
        self.head = StackedDense(width * sizes[0] ** 2, outputs, generators)

    def forward(self, x: Tensor) -> Tensor:
        members, batch = x.shape[:2]
        channels, height, width = self.shape
        h = x.reshape(members, batch, channels, height, width).transpose(0, 1)
        h = self.net(h.reshape(batch, members * channels, height, width))  # [B, M * C', s, s]
        return self.head(h.view(batch, members, -1).transpose(0, 1))

    def output_layer(self) -> nn.Module:
        return self.head


class TimeShift(nn.Module):
    """Adds ``t`` times a learned vector per member and channel to ``[B, M * C, H, W]`` activations."""

    def __init__(self, channels: int, generators: Sequence[torch.Generator]):
        super().__init__()
        self.members = len(generators)
        self.weight = _normal((channels,), generators)  # [M * C]

    def forward(self, h: Tensor, t: Tensor) -> Tensor:
        batch = h.shape[0]
        scale = t.transpose(0, 1).unsqueeze(-1) * self.weight.view(1, self.members, -1)  # [B, M, C]
        return h + scale.reshape(batch, -1, 1, 1)


class DCGANDenoiser(nn.Module):
    """``[M, B, C, H, W]`` (or flattened) and times ``t`` ``[M, B]`` -> ``[M, B, C * H * W]``
    (flattened): the image-to-image network of velocity fields and noise predictors."""

    def __init__(self, shape: Sequence[int], channels: int, generators: Sequence[torch.Generator], time: bool = True):
        super().__init__()
        self.shape, self.members, self.time = tuple(shape), len(generators), time
        image_channels = shape[0]
        halvings = len(resolutions(shape[1])) - 1
        widths = [channels * 2 ** i for i in range(halvings + 1)]  # per resolution, full first
        self.stem = StackedConv(image_channels + int(time), widths[0], 3, 1, 1, generators)
        self.down = nn.ModuleList(StackedConv(a, b, 4, 2, 1, generators) for a, b in zip(widths, widths[1:]))
        self.up = nn.ModuleList(StackedConv(b, a, 4, 2, 1, generators, transpose=True)
                                for a, b in reversed(list(zip(widths, widths[1:]))))
        self.shifts = nn.ModuleList(TimeShift(w, generators) for w in [*widths, *reversed(widths[:-1])]) \
            if time else None
        self.out = StackedConv(widths[0], image_channels, 3, 1, 1, generators)

    def forward(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        members, batch = x.shape[:2]
        chunk = self.chunk_samples()
        if torch.is_grad_enabled() or x.device.type != "cpu" or batch <= chunk:  # a GPU wants whole batches
            return self._forward(x, t)
        return torch.cat([self._forward(x[:, i:i + chunk], None if t is None else t[:, i:i + chunk])
                          for i in range(0, batch, chunk)], 1)

    def output_layer(self) -> nn.Module:
        return self.out

    def chunk_samples(self) -> int:
        """Samples per call without gradients: the widest activation [B, M * C, H, W] near
        :data:`SAMPLING_CHUNK_ENTRIES` values."""
        widest = self.members * max(self.stem.weight.shape[0] // self.members, self.shape[0] + 1)
        return max(1, SAMPLING_CHUNK_ENTRIES // (widest * self.shape[1] * self.shape[2]))

    def _forward(self, x: Tensor, t: Tensor | None) -> Tensor:
        members, batch = x.shape[:2]
        channels, height, width = self.shape
        h = x.reshape(members, batch, channels, height, width)
        if self.time:
            h = torch.cat([h, t.to(h.dtype)[:, :, None, None, None].expand(members, batch, 1, height, width)], 2)
        h = h.transpose(0, 1).reshape(batch, -1, height, width)  # [B, M * C, H, W]
        shifts = iter(self.shifts) if self.time else None
        h = self._act(self.stem(h), shifts, t)
        skips = [h]
        for down in self.down:
            h = self._act(down(h), shifts, t)
            skips.append(h)
        skips.pop()
        for up in self.up:
            h = self._act(up(h), shifts, t) + skips.pop()
        return self.out(h).view(batch, members, -1).transpose(0, 1)

    def _act(self, h: Tensor, shifts, t: Tensor | None) -> Tensor:
        if shifts is not None:
            h = next(shifts)(h, t.to(h.dtype))
        return F.silu(h)
