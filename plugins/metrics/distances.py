"""Sample-based two-sample distances between held-out data and generated samples: MMD^2 with a
sum of Gaussian kernels, sliced Wasserstein-2 and the energy distance. All lower-is-better and
always applicable; images are flattened to vectors.

Pure functions first (tensors in, tensors out), then the Metric classes that call them.
:func:`distance_blocks` (distance matrices by row blocks, never holding an [n, m] matrix; from
:func:`benchbench_plugins.kernels.squared_distances`) is reused by the other metric modules.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from benchbench import Evaluation, Metric, Output, hookimpl, param
from benchbench_plugins.kernels import DIRECT_MAX_DIM, LOG_FLOOR, median_distance, squared_distances
from benchbench_plugins.metrics.memo import memoised

MEDIAN_POINTS = 1_000
BLOCK_ENTRIES = 1 << 19


def row_blocks(n: int, m: int) -> list[slice]:
    """Slices of the n rows of an [n, m] matrix, each block holding about 2^19 entries: small
    temporaries stay in cache and are reused, where each fresh 25 MB matrix costs ~10 ms of page
    faults."""
    rows = max(1, BLOCK_ENTRIES // max(m, 1))
    return [slice(start, min(start + rows, n)) for start in range(0, n, rows)]


def distance_blocks(x: Tensor, y: Tensor | None = None) -> Iterator[tuple[slice, Tensor]]:
    """(rows, |x_rows - y|^2 ``[b, m]``) over row blocks of ``x`` ``[n, d]``; with ``y`` None, the
    distances within ``x``, with exactly zero self-distances.

    Above :data:`~benchbench_plugins.kernels.DIRECT_MAX_DIM` dimensions the norms |y_j|^2 are
    computed once for all blocks, not once per block (a fresh [m, d] temporary per block, 7 MB at
    m = 10,000, d = 192: that alone doubled the time of the k-NN radii there).
    """
    other = x if y is None else y
    norms = other.square().sum(1) if x.shape[-1] > DIRECT_MAX_DIM else None  # |y_j|^2, [m]
    for rows in row_blocks(len(x), len(other)):
        d2 = squared_distances(x[rows], other, norms)
        if y is None:
            d2.diagonal(offset=rows.start).zero_()
        yield rows, d2


def gaussian_kernel_sum(x: Tensor, y: Tensor | None, sigmas: Sequence[float]) -> Tensor:
    """sum_{i,j} sum_s max(exp(-|x_i - y_j|^2 / (2 s^2)), exp(-80)), float64 scalar; with ``y`` None,
    over the pairs i != j within ``x``.

    The kernel of :func:`benchbench_plugins.kernels.mmd2_gaussian`, each term floored at
    exp(-80) ~ 1.8e-35: exp() of arguments below about -87 (float32 underflow) takes a slow path,
    4-12x slower, on far pairs. Computed by row blocks, without the [n, m] matrix.
    """
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for _, d2 in distance_blocks(x, y):
        term = torch.empty_like(d2)
        for s in sigmas:
            torch.mul(d2, -0.5 / (s * s), out=term).clamp_(min=-LOG_FLOOR).exp_()
            total += term.sum(1).double().sum()
    if y is None:
        total -= len(x) * len(sigmas)  # the diagonal: exp(0) = 1 per bandwidth
    return total


def mmd2(x: Tensor, y: Tensor, sigmas: Sequence[float], unbiased: bool = True) -> float:
    """MMD^2 between samples ``x`` ``[n, d]`` and ``y`` ``[m, d]`` under the sum of Gaussian kernels
    with bandwidths ``sigmas`` (as :func:`benchbench_plugins.kernels.mmd2_gaussian`, floored at
    exp(-80) per term). Unbiased: sum_{i!=j} k(x_i,x_j)/(n(n-1)) + sum_{i!=j} k(y_i,y_j)/(m(m-1))
    - 2 mean k(x_i,y_j) (can be slightly negative); biased: plain means with the diagonals (>= 0).
    The within-``x`` sum (the held-out data's) is computed once for equal ``x`` and ``sigmas``
    (:mod:`~benchbench_plugins.metrics.memo`)."""
    n, m, diagonal = len(x), len(y), len(sigmas)
    kxx = memoised(("gaussian-kernel-sum", tuple(sigmas)), (x,), lambda: gaussian_kernel_sum(x, None, sigmas))
    kyy = gaussian_kernel_sum(y, None, sigmas)
    kxy = gaussian_kernel_sum(x, y, sigmas) / (n * m)
    if unbiased:
        return float(kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2 * kxy)
    return float((kxx + n * diagonal) / n**2 + (kyy + m * diagonal) / m**2 - 2 * kxy)


def random_directions(dim: int, count: int, generator: torch.Generator) -> Tensor:
    """``count`` independent unit vectors uniform on the sphere in R^dim, ``[dim, count]`` (CPU)."""
    u = torch.randn(dim, count, generator=generator, dtype=torch.float64)
    return u / u.norm(dim=0, keepdim=True)


def quantiles(sorted_values: Tensor, levels: Tensor) -> Tensor:
    """Quantile functions of the columns of ``sorted_values`` ``[n, P]`` (each sorted ascending) at
    ``levels`` in (0, 1), ``[L, P]``: the i-th order statistic sits at level (i + 1/2)/n, with
    linear interpolation between them and constant extrapolation beyond the extremes."""
    n = sorted_values.shape[0]
    if n == 1:
        return sorted_values.expand(len(levels), -1)
    position = (levels * n - 0.5).clamp(0, n - 1)
    lower = position.floor().long().clamp_max(n - 2)
    frac = (position - lower).to(sorted_values.dtype)[:, None]
    return sorted_values[lower] * (1 - frac) + sorted_values[lower + 1] * frac


def sliced_wasserstein2(x: Tensor, y: Tensor, directions: Tensor) -> float:
    """Sliced W2 = sqrt(mean over unit ``directions`` ``[d, P]`` of W2^2(x.u, y.u)), in float64.

    The 1-D W2^2 is the mean squared difference of the sorted projections when n == m. When the
    sizes differ, both quantile functions are compared on the common grid of levels
    (i + 1/2)/N, i < N = max(n, m) (see :func:`quantiles`; for n == m it is the sorted case). The
    sorted projections of ``x`` (the held-out data's) are computed once for equal ``x`` and
    ``directions``."""
    directions = directions.to(device=x.device, dtype=torch.float64)
    px = memoised("sorted-projections", (x, directions), lambda: (x.double() @ directions).sort(dim=0).values)
    py = (y.double() @ directions).sort(dim=0).values
    if len(px) != len(py):
        size = max(len(px), len(py))
        levels = (torch.arange(size, device=x.device, dtype=torch.float64) + 0.5) / size
        px, py = quantiles(px, levels), quantiles(py, levels)
    return float((px - py).square().mean().sqrt())


def mean_distance(x: Tensor, y: Tensor | None = None, unbiased: bool = True) -> float:
    """Mean Euclidean distance E|X - Y| over all pairs. With ``y`` None: E|X - X'| within ``x``, over
    the pairs i != j (U-statistic, ``unbiased``) or over all n^2 pairs with the zero diagonal
    (V-statistic). Rows are summed in the input dtype, their totals in float64."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for _, d2 in distance_blocks(x, y):
        total += d2.sqrt_().sum(1).double().sum()
    n, m = len(x), len(x if y is None else y)
    return float(total) / (n * (n - 1) if y is None and unbiased else n * m)


def energy_distance2(x: Tensor, y: Tensor, unbiased: bool = True) -> float:
    """E^2 = 2 E|X-Y| - E|X-X'| - E|Y-Y'|. Unbiased: within-sample means over i != j (can be slightly
    negative); biased (V-statistic): means with the diagonal, = scipy.stats.energy_distance(x, y)**2
    in 1-D. E|X-X'| (the held-out data's) is computed once for equal ``x``."""
    within_x = memoised(("mean-distance", unbiased), (x,), lambda: mean_distance(x, unbiased=unbiased))
    return 2 * mean_distance(x, y) - within_x - mean_distance(y, unbiased=unbiased)


@dataclasses.dataclass(frozen=True)
class MMDConfig:
    scales: tuple[float, ...] = param(
        (0.1, 0.3, 1.0), "Gaussian bandwidths as multiples of the median pairwise distance of the real samples: "
        "from within-mode detail to the layout of the modes", gt=0)


class MMD(Metric):
    """Unbiased MMD^2 with a sum of Gaussian kernels, bandwidths scaled to the data."""

    name = "mmd"
    Config = MMDConfig
    outputs = (Output("mmd2", "divergence", "lower", "unbiased MMD^2, sum of Gaussian kernels with sigma = scales x "
                                                      "median real pairwise distance (can be slightly negative)"),)

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float]:
        real, fake = evaluation.real.flatten(1), evaluation.fake.flatten(1)
        median = memoised(("median-distance", MEDIAN_POINTS), (real,), lambda: median_distance(real[:MEDIAN_POINTS]))
        return {"mmd2": mmd2(real, fake, [s * median for s in self.config.scales])}


@dataclasses.dataclass(frozen=True)
class SlicedConfig:
    projections: int = param(128, "random unit directions averaged over", ge=1)


class SlicedWasserstein(Metric):
    """sqrt of the mean 1-D W2^2 between projections on random directions (seeded per cell)."""

    name = "sliced-wasserstein"
    Config = SlicedConfig
    outputs = (Output("sliced_w2", "divergence", "lower", "sliced Wasserstein-2: sqrt of the mean over random "
                                                           "directions of the 1-D W2^2 of the projections",
                      range=(0.0, math.inf)),)

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float]:
        real, fake = evaluation.real.flatten(1), evaluation.fake.flatten(1)
        directions = random_directions(real.shape[1], self.config.projections, evaluation.generator())
        return {"sliced_w2": sliced_wasserstein2(real, fake, directions)}


class Energy(Metric):
    """Squared energy distance, unbiased (U-statistic) within-sample terms."""

    name = "energy"
    outputs = (Output("energy_distance2", "divergence", "lower", "squared energy distance 2E|X-Y| - E|X-X'| - "
                                                                  "E|Y-Y'| (U-statistic, can be slightly negative)"),)

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float]:
        return {"energy_distance2": energy_distance2(evaluation.real.flatten(1), evaluation.fake.flatten(1))}


@hookimpl
def benchbench_metrics():
    return [MMD, SlicedWasserstein, Energy]
