"""Metrics that use the data's exact density (datasets with ``log_prob``): divergences between
p_data and the generator's distribution p_g, and the data log-likelihood of generated samples.

``kde-divergence`` estimates p_g by an adaptive Gaussian kernel density estimate (KDE) of the m
generated samples, q(z) = 1/m sum_j N(z; y_j, h_j^2 I), in log-space (log-sum-exp). Each sample's
width is h_j = c r_3(y_j), a multiple of its distance to its 3rd nearest other sample (never below
1e-6 times the data's scale), with c from a log-spaced grid chosen by the leave-one-out
log-likelihood of the samples. With log p exact, on held-out data x ~ p and on draws z ~ q of the
KDE itself (z_j = y_j + h_j e_j, one per sample):

    JSD       ~ 1/2 mean_x log[2p / (p + q)] + 1/2 mean_z log[2q / (p + q)]   = JSD(p, q)
    KL(p||g)  ~ mean_x [log p(x) - log q(x)]                                  = KL(p || q)
    KL(g||p)  ~ mean_z [log q(z) - log p(z)]                                  = KL(q || p)

each a Monte Carlo estimate of a divergence between two densities, so within its range up to
Monte Carlo error. Why not a single bandwidth and leave-one-out at the samples (this module until
issue 20): a collapsed generator puts most samples in tight clusters, the bandwidth follows them,
and the few samples elsewhere sit exp(-d^2 / 2h^2) from every other kernel, where q_loo << p: on
the ring, 8 clusters of std 0.0005 plus 1% of samples with std 0.03 gave JSD = -3.5 and
KL(g||p) = -3.8 (quadrature: 0.47 and 2.2). tests/plugins/test_metrics_collapse.py checks the
estimates against quadrature on collapsed generators (subsets of modes, narrow modes, a point,
samples off the support).

Biases: the KDE's noise makes the estimates of p_g = p_data slightly positive (ring, n = 2,500:
JSD ~ 0.02, KL(p||g) ~ 0.07, KL(g||p) ~ 0.13; these are the data reference row). KL(p||g) is
unbounded: where the generator dropped a mode, the data lie in the tails of the KDE, dozens of
kernel widths from any sample; the estimate is then an extrapolation of those tails (observed
2-10x below the quadrature value of Gaussian generators, whose tails are lighter), only its size
means anything. The quadrature helpers compute exact divergences between known 1-D and 2-D
densities (tests and reference values).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from benchbench import Evaluation, Metric, Output, hookimpl, param
from benchbench_plugins.metrics.distances import LOG_FLOOR, distance_blocks
from benchbench_plugins.metrics.manifold import shared_knn_radii2

LOG2 = math.log(2.0)
LogDensity = Callable[[Tensor], Tensor]


# ---- kernel density estimation -------------------------------------------------------------

def bandwidth_grid(scale: float, low: float, high: float, count: int) -> Tensor:
    """``count`` bandwidths log-spaced from ``low * scale`` to ``high * scale`` (float64)."""
    return scale * torch.logspace(math.log10(low), math.log10(high), count, dtype=torch.float64)


def log_kernel_sums(d2: Tensor, bandwidths: Tensor) -> Tensor:
    """log sum_j exp(-d2_ij / (2 h^2)) for each bandwidth h, ``[B, n]`` for ``d2`` ``[n, m]``.

    Entries equal to +inf are left out (the point itself, for leave-one-out). Each row is shifted
    by its nearest centre, so the largest term is exp(0) and no row underflows whatever h; terms
    below exp(-80) of the largest count as exp(-80) (a relative change below m * 1.8e-35) to keep
    exp off its slow underflow path. Rows need at least one finite entry.
    """
    nearest = d2.amin(1, keepdim=True)
    excess = d2 - nearest
    buffer = torch.empty_like(excess)
    sums = []
    for h in bandwidths.tolist():
        a = 0.5 / (h * h)
        torch.mul(excess, -a, out=buffer).clamp_(min=-LOG_FLOOR).exp_()
        sums.append(buffer.sum(1).double().log() - a * nearest[:, 0].double())
    return torch.stack(sums)


def log_normaliser(bandwidths: Tensor, dim: int, centres: int) -> Tensor:
    """log(centres) + dim/2 log(2 pi h^2): turns log kernel sums into log KDE densities."""
    return math.log(centres) + 0.5 * dim * torch.log(2 * math.pi * bandwidths.square())


FLOOR = 1e-6  # smallest kernel width, times the data's scale: a point mass stays a spike of positive width


def neighbour_distances(x: Tensor, k: int) -> Tensor:
    """Distance of each row of ``x`` ``[m, d]`` to its k-th nearest other row (duplicates count, so
    0 for a point with k copies), ``[m]`` float64; k is capped at m - 1 (zeros for m = 1)."""
    x = x.flatten(1)
    k = min(k, len(x) - 1)
    if k < 1:
        return torch.zeros(len(x), dtype=torch.float64, device=x.device)
    return shared_knn_radii2(x.float(), (k,))[0].double().clamp_min(0).sqrt()


def log_kernel_terms(d2: Tensor, bandwidths: Tensor, dim: int) -> Tensor:
    """log sum_j N(z_i; c_j, h_j^2 I) from squared distances ``d2`` ``[n, m]`` (+inf leaves a centre
    out) and per-centre widths ``bandwidths`` ``[m]``, ``[n]`` float64. The terms are formed in
    float32 (an error of ~1e-7 times the largest term's magnitude) and shifted by each row's
    largest; as in :func:`log_kernel_sums`, those below exp(-80) of the largest count as exp(-80):
    exp of far smaller arguments takes a slow underflow path (with torch.logsumexp the bandwidth
    selection took 10x as long)."""
    h2 = bandwidths.double().square()
    slope, offset = (-0.5 / h2).float(), (-0.5 * dim * torch.log(2 * math.pi * h2)).float()
    terms = torch.addcmul(offset, d2.float(), slope)
    largest = terms.amax(1, keepdim=True)
    return terms.sub_(largest).clamp_(min=-LOG_FLOOR).exp_().sum(1).double().log() + largest[:, 0].double()


def adaptive_log_density(points: Tensor, centers: Tensor, bandwidths: Tensor, leave_one_out: bool = False) -> Tensor:
    """log q(points_i) for the Gaussian KDE with one width per centre, q(z) = 1/m sum_j N(z; centers_j,
    h_j^2 I) (``bandwidths`` ``[m]``, all > 0), ``[n]`` float64, by row blocks (log-sum-exp: no
    underflow whatever the widths). ``leave_one_out``: ``points`` are the centres and point i leaves
    out its own kernel (1/(m-1) sum_{j != i})."""
    points, centers = points.flatten(1).double(), centers.flatten(1).double()
    if leave_one_out:
        assert points.shape == centers.shape and len(points) > 1, "leave-one-out needs points == centers, m > 1"
    bandwidths = bandwidths.to(points.device)
    out = torch.empty(len(points), dtype=torch.float64, device=points.device)
    for rows, d2 in distance_blocks(points, None if leave_one_out else centers):
        if leave_one_out:
            d2.diagonal(offset=rows.start).fill_(math.inf)
        out[rows] = log_kernel_terms(d2, bandwidths, points.shape[1])
    return out - math.log(len(centers) - 1 if leave_one_out else len(centers))


def adaptive_bandwidths(centers: Tensor, neighbours: int, widths: Tensor, floor: float) -> list[Tensor]:
    """Per-centre kernel widths ``[m]`` to choose from, h_j = max(c r_k(y_j), ``floor``) for each
    multiple c of ``widths``, with r_k the distance of centre j to its k-th nearest other centre
    (k = ``neighbours``): isolated samples get wide kernels, clustered ones narrow kernels, and no
    width falls below what the sample supports around its centre (nor below ``floor``)."""
    radii = neighbour_distances(centers, neighbours)
    return [(c * radii).clamp_min(floor) for c in widths.tolist()]


def select_bandwidths(centers: Tensor, candidates: Sequence[Tensor], rows: Tensor | None = None
                      ) -> tuple[Tensor, Tensor]:
    """(bandwidths ``[m]``, scores ``[C]``): the candidate of ``candidates`` (each ``[m]``, one width
    per centre) that maximises the mean leave-one-out log-likelihood of the centres ``rows``
    (default: all) under the KDE of the other m - 1, and those means.

    A single bandwidth tuned to tight clusters puts a few samples outside them exp(-d^2 / 2h^2) from
    every kernel: with that, the leave-one-out JSD of a collapsed generator reached -3.5."""
    centers = centers.flatten(1).double()
    if len(centers) < 2:
        return candidates[0], torch.zeros(len(candidates), dtype=torch.float64)
    rows = torch.arange(len(centers), device=centers.device) if rows is None else rows.to(centers.device)
    total = torch.zeros(len(candidates), dtype=torch.float64)
    for block, d2 in distance_blocks(centers[rows], centers):
        own = rows[block]
        d2[torch.arange(len(own), device=d2.device), own] = math.inf
        d2 = d2.float()  # once for every candidate (log_kernel_terms forms its terms in float32)
        for i, h in enumerate(candidates):
            total[i] += float(log_kernel_terms(d2, h.to(d2.device), centers.shape[1]).sum())
    scores = total / len(rows) - math.log(len(centers) - 1)
    return candidates[int(scores.argmax())], scores


def divergences_from_log_densities(log_p_real: Tensor, log_q_real: Tensor, log_p_fake: Tensor,
                                   log_q_fake: Tensor) -> dict[str, float]:
    """``jsd``, ``kl_data_model`` = KL(p||q), ``kl_model_data`` = KL(q||p) (nats) from log-densities
    of both distributions at held-out data x ~ p (``*_real``) and at generated y ~ q (``*_fake``):
    JSD = 1/2 mean_x log[2p/(p+q)] + 1/2 mean_y log[2q/(p+q)], KL(p||q) = mean_x [log p - log q],
    KL(q||p) = mean_y [log q - log p]."""
    pr, qr, pf, qf = (t.double() for t in (log_p_real, log_q_real, log_p_fake, log_q_fake))
    jsd = 0.5 * (LOG2 + pr - torch.logaddexp(pr, qr)).mean() + 0.5 * (LOG2 + qf - torch.logaddexp(pf, qf)).mean()
    return {"jsd": float(jsd), "kl_data_model": float((pr - qr).mean()), "kl_model_data": float((qf - pf).mean())}


# ---- exact divergences of 1-D densities by quadrature ----------------------------------------

def _log_density_on(log_density: LogDensity, grid: Tensor) -> Tensor:
    return log_density(grid[:, None]).reshape(-1).double()


def kl_quadrature(log_p: LogDensity, log_q: LogDensity, grid: Tensor) -> float:
    """KL(p||q) = integral of p (log p - log q) over the 1-D ``grid`` (trapezoid rule, float64, nats).

    ``log_p``/``log_q`` map a column of points ``[G, 1]`` (the layout of ``Dataset.log_prob`` for a
    1-D dataset) to G log-densities (any shape); the integrand is 0 where p is 0. The grid must
    cover the mass of p.
    """
    grid = grid.double()
    lp, lq = _log_density_on(log_p, grid), _log_density_on(log_q, grid)
    p = lp.exp()
    integrand = torch.where(p > 0, p * (lp - lq), torch.zeros_like(p))
    return float(torch.trapezoid(integrand, grid))


def jsd_quadrature(log_p: LogDensity, log_q: LogDensity, grid: Tensor) -> float:
    """JSD(p, q) = 1/2 KL(p||m) + 1/2 KL(q||m), m = (p + q)/2, by the trapezoid rule on the 1-D
    ``grid`` (float64, nats; symmetric, in [0, log 2] up to quadrature error). Callables as in
    :func:`kl_quadrature`; the grid must cover the mass of both."""
    grid = grid.double()
    lp, lq = _log_density_on(log_p, grid), _log_density_on(log_q, grid)
    lm = torch.logaddexp(lp, lq) - LOG2
    p, q = lp.exp(), lq.exp()
    zero = torch.zeros_like(p)
    integrand = 0.5 * (torch.where(p > 0, p * (lp - lm), zero) + torch.where(q > 0, q * (lq - lm), zero))
    return float(torch.trapezoid(integrand, grid))


def divergences_quadrature(log_p: LogDensity, log_q: LogDensity, axes: Sequence[Tensor]) -> dict[str, float]:
    """``jsd``, ``kl_data_model`` = KL(p||q) and ``kl_model_data`` = KL(q||p) (nats) by the
    trapezoid rule on the tensor-product grid of the 1-D ``axes`` (one per dimension, 1-D or 2-D in
    practice), float64: the exact reference for the sample estimates. ``log_p``/``log_q`` map points
    ``[G, d]`` to G log-densities; integrands are 0 where the density is 0. The grid must cover the
    mass of both, with a spacing at most about the narrowest component's std (the trapezoid rule
    on a Gaussian is then exact to ~1e-8)."""
    axes = [a.double() for a in axes]
    mesh = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    points = mesh.reshape(-1, len(axes))
    lp, lq = (f(points).reshape(-1).double().reshape(mesh.shape[:-1]) for f in (log_p, log_q))
    lm = torch.logaddexp(lp, lq) - LOG2
    p, q = lp.exp(), lq.exp()
    zero = torch.zeros_like(p)

    def integral(values: Tensor) -> float:
        for axis in reversed(axes):
            values = torch.trapezoid(values, axis, dim=-1)
        return float(values)

    return {"jsd": integral(0.5 * (torch.where(p > 0, p * (lp - lm), zero) + torch.where(q > 0, q * (lq - lm), zero))),
            "kl_data_model": integral(torch.where(p > 0, p * (lp - lq), zero)),
            "kl_model_data": integral(torch.where(q > 0, q * (lq - lp), zero))}


# ---- metrics --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class KDEConfig:
    neighbours: int = param(3, "k: each generated sample's kernel width is a multiple of the distance to its k-th "
                                "nearest other generated sample (an adaptive KDE)", ge=1)
    width_low: float = param(0.1, "smallest multiple of that distance tried", gt=0)
    width_high: float = param(30.0, "largest multiple tried", gt=0)
    widths: int = param(20, "log-spaced multiples tried", ge=1)
    selection_points: int = param(500, "generated samples (a seeded random subset) whose leave-one-out "
                                       "log-likelihood selects the multiple; all remain KDE centres", ge=1)

    def __post_init__(self):
        if self.width_low > self.width_high:
            raise ValueError(f"width_low: {self.width_low} exceeds width_high {self.width_high}")


def sample_scale(x: Tensor) -> float:
    """RMS over coordinates of the per-coordinate std of ``x`` ``[n, d]``: sqrt(trace(cov) / d)."""
    return float(x.double().var(0).mean().sqrt())


class KDEDivergence(Metric):
    """JSD and both KLs between p_data (exact) and an adaptive Gaussian KDE q of the samples,
    expectations under q from draws of q itself (so each estimate is a divergence between two
    densities: within its range up to Monte Carlo error)."""

    name = "kde-divergence"
    Config = KDEConfig
    outputs = (
        Output("jsd", "divergence", "lower", "Jensen-Shannon divergence (nats, in [0, log 2]), p_g by an adaptive "
                                             "Gaussian KDE", range=(0.0, LOG2), tolerance=0.01),
        Output("kl_data_model", "divergence", "lower", "KL(p_data || p_g) (nats), p_g by an adaptive Gaussian KDE; "
                                                       "unbounded when modes are dropped", heavy_tailed=True,
               range=(0.0, math.inf), tolerance=0.05),
        Output("kl_model_data", "divergence", "lower", "KL(p_g || p_data) (nats), p_g by an adaptive Gaussian KDE, "
                                                       "averaged over draws of the KDE", heavy_tailed=True,
               range=(0.0, math.inf), tolerance=0.05),
    )

    def applies(self, evaluation: Evaluation) -> bool:
        return evaluation.dataset.has_log_prob

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float]:
        config = self.config
        real, fake = evaluation.real.flatten(1).double(), evaluation.fake.flatten(1).double()
        floor = max(FLOOR * sample_scale(real), 1e-12)
        generator = evaluation.generator()
        rows = torch.randperm(len(fake), generator=generator)[:config.selection_points]
        widths = bandwidth_grid(1.0, config.width_low, config.width_high, config.widths)
        bandwidths, _ = select_bandwidths(fake, adaptive_bandwidths(fake, config.neighbours, widths, floor), rows)
        noise = torch.randn(fake.shape, generator=generator, dtype=torch.float64).to(fake.device)
        draws = fake + bandwidths[:, None] * noise  # one draw of q per centre
        dataset = evaluation.dataset
        log_p_draws = dataset.log_prob(draws.to(evaluation.fake.dtype).reshape(evaluation.fake.shape))
        return divergences_from_log_densities(dataset.log_prob(evaluation.real),
                                              adaptive_log_density(real, fake, bandwidths),
                                              log_p_draws, adaptive_log_density(draws, fake, bandwidths))


class LogLikelihood(Metric):
    """Mean exact data log-density of the generated samples (high for samples on the modes, blind
    to dropped modes)."""

    name = "log-likelihood"
    outputs = (Output("log_likelihood", "quality", "higher", "mean log p_data(generated sample) (nats)",
                      heavy_tailed=True),)

    def applies(self, evaluation: Evaluation) -> bool:
        return evaluation.dataset.has_log_prob

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float]:
        return {"log_likelihood": float(evaluation.dataset.log_prob(evaluation.fake).double().mean())}


@hookimpl
def benchbench_metrics():
    return [KDEDivergence, LogLikelihood]
