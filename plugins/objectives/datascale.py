"""An affine map between the data and a model's working scale, fixed from the setup batch.

Diffusion assumes data of roughly unit scale (the forward process ends at N(0, I)): the ring
(radius 1) and the grid (coordinates up to 4) differ by a factor of four. A :class:`DataScale`
subtracts each coordinate's mean and divides by one scale (the root mean square of the centred
data over every coordinate), so the shape of the data is unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor


class DataScale:
    """``to_model(x) = (x - center) / scale`` and its inverse, from a data batch ``[n, *shape]``."""

    def __init__(self, data: Tensor, enabled: bool = True):
        data = data.detach().float()
        if enabled:
            self.center = data.mean(0)
            self.scale = float((data - self.center).pow(2).mean().sqrt().clamp_min(1e-8))
        else:
            self.center, self.scale = torch.zeros(data.shape[1:]), 1.0

    def to_model(self, x: Tensor) -> Tensor:
        return (x - self.center.to(x)) / self.scale

    def to_data(self, x: Tensor) -> Tensor:
        return x * self.scale + self.center.to(x)
