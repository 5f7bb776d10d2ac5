"""Kernel math shared by the GMMN objective and the MMD metric: pure functions on tensors.

All functions take an optional leading batch dimension (the stacked members): ``x`` is
``[..., n, d]`` and ``y`` is ``[..., m, d]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


DIRECT_MAX_DIM = 16  # up to this dimension, distances come from coordinate differences
# Kernel exponents are floored at -LOG_FLOOR (exp(-80) ~ 1.8e-35, a change below any tolerance):
# exp() of arguments below about -87 underflows in float32 and takes a path several times slower.
LOG_FLOOR = 80.0


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """|x_i - y_j|^2, ``[..., n, m]``.

    Up to :data:`DIRECT_MAX_DIM` dimensions, summed coordinate by coordinate from the differences:
    exact to rounding where points are close together but far from the origin (the ring's modes,
    where |x|^2 + |y|^2 - 2 x.y loses half the float32 digits), never an [n, m, d] temporary, and
    free of the matrix-vector kernel whose rounding depends on the stack size. Above it, via that
    expansion (one matrix product), clamped at 0.
    """
    if x.shape[-1] <= DIRECT_MAX_DIM:
        d2 = None
        for k in range(x.shape[-1]):
            diff = x[..., :, None, k] - y[..., None, :, k]
            d2 = diff.square() if d2 is None else d2.addcmul_(diff, diff)
        return d2
    xx = (x * x).sum(-1, keepdim=True)
    yy = (y * y).sum(-1, keepdim=True).transpose(-1, -2)
    return (xx + yy - 2 * x @ y.transpose(-1, -2)).clamp_min_(0)


def gaussian_kernel(d2: Tensor, sigmas: Sequence[float]) -> Tensor:
    """Sum over bandwidths of exp(-d2 / (2 sigma^2)) for squared distances ``d2``, exponents
    floored at -:data:`LOG_FLOOR`."""
    return sum(torch.exp((d2 * (-0.5 / (s * s))).clamp_min(-LOG_FLOOR)) for s in sigmas)


def mmd2_from_kernels(kxx: Tensor, kxy: Tensor, kyy: Tensor, unbiased: bool = True) -> Tensor:
    """MMD^2 from kernel matrices ``[..., n, n]``, ``[..., n, m]``, ``[..., m, m]``.

    Unbiased: the within-sample means leave out the diagonal (k(x_i, x_i)); it can be slightly
    negative. Biased: plain means including the diagonal.
    """
    n, m = kxx.shape[-1], kyy.shape[-1]
    if unbiased:
        xx = (kxx.sum((-1, -2)) - kxx.diagonal(dim1=-2, dim2=-1).sum(-1)) / (n * (n - 1))
        yy = (kyy.sum((-1, -2)) - kyy.diagonal(dim1=-2, dim2=-1).sum(-1)) / (m * (m - 1))
    else:
        xx, yy = kxx.mean((-1, -2)), kyy.mean((-1, -2))
    return xx + yy - 2 * kxy.mean((-1, -2))


def mmd2_gaussian(x: Tensor, y: Tensor, sigmas: Sequence[float], unbiased: bool = True) -> Tensor:
    """MMD^2 between samples ``x`` and ``y`` under a sum of Gaussian kernels (one matrix product)."""
    n = x.shape[-2]
    z = torch.cat([x, y], dim=-2)
    k = gaussian_kernel(squared_distances(z, z), sigmas)
    return mmd2_from_kernels(k[..., :n, :n], k[..., :n, n:], k[..., n:, n:], unbiased)


def median_distance(x: Tensor) -> float:
    """Median pairwise Euclidean distance between distinct rows of ``x`` ``[n, d]``."""
    d2 = squared_distances(x, x)
    upper = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
    return float(d2[upper[0], upper[1]].median().sqrt())
