"""Metrics that use the data's exact density (datasets with ``log_prob``): divergences between
p_data and the generator's distribution p_g, and the data log-likelihood of generated samples.

``kde-divergence`` estimates p_g by an isotropic Gaussian kernel density estimate (KDE) of the
generated samples, q(z) = 1/m sum_j N(z; y_j, h^2 I), in log-space (log-sum-exp). The bandwidth h
is the point of a log-spaced grid (multiples of the generated samples' scale) that maximises the
leave-one-out log-likelihood of the generated samples, so a collapsed generator gets a small h.
With log p exact, on held-out data x ~ p and generated y ~ p_g:

    JSD       ~ 1/2 mean_x log[2p / (p + q)] + 1/2 mean_y log[2q_loo / (p + q_loo)]   (<= log 2)
    KL(p||g)  ~ mean_x [log p(x) - log q(x)]       (all generated samples as centres)
    KL(g||p)  ~ mean_y [log q_loo(y) - log p(y)]   (leave-one-out at generated samples)

KL(p||g) is unbounded: data in a mode the generator dropped lies in the Gaussian tails of the KDE.
The KDE smooths p_g, so for p_g = p_data the JSD and KL(g||p) estimates are slightly negative
(-E_p log[(p + q)^2 / 4pq] / 2 and -KL(p||q-hat)): on the ring at n = 2,500, JSD ~ -0.008,
KL(p||g) ~ 0.035, KL(g||p) ~ -0.04.
The quadrature helpers compute exact 1-D divergences between known densities (for tests and
reference values).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from benchbench_plugins.metrics.distances import LOG_FLOOR, distance_blocks
from torch import Tensor

from benchbench import Evaluation, Metric, Output, hookimpl, param

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


def kde_log_density(points: Tensor, centers: Tensor, h: float, leave_one_out: bool = False) -> Tensor:
    """log q(points_i) for the Gaussian KDE q(z) = 1/m sum_j N(z; centers_j, h^2 I), ``[n]`` float64.

    ``leave_one_out``: ``points`` are the centres and point i leaves out its own kernel,
    q_loo(y_i) = 1/(m-1) sum_{j != i} N(y_i; y_j, h^2 I). Computed by row blocks.
    """
    points, centers = points.flatten(1), centers.flatten(1)
    if leave_one_out:
        assert points.shape == centers.shape and len(points) > 1, "leave-one-out needs points == centers, m > 1"
    bandwidth = torch.tensor([h], dtype=torch.float64, device=points.device)
    sums = []
    for rows, d2 in distance_blocks(points, None if leave_one_out else centers):
        if leave_one_out:
            d2.diagonal(offset=rows.start).fill_(math.inf)
        sums.append(log_kernel_sums(d2, bandwidth)[0])
    centres = len(centers) - 1 if leave_one_out else len(centers)
    return torch.cat(sums) - log_normaliser(bandwidth, points.shape[1], centres)


def leave_one_out_scores(centers: Tensor, bandwidths: Tensor, rows: Tensor | None = None) -> Tensor:
    """Mean leave-one-out log-likelihood 1/r sum_i log q_loo(y_i) for each bandwidth, ``[B]`` float64,
    over the centres ``centers`` ``[m, d]`` selected by index tensor ``rows`` (default: all), each
    scored by the KDE of the other m - 1 centres."""
    centers = centers.flatten(1)
    rows = torch.arange(len(centers), device=centers.device) if rows is None else rows.to(centers.device)
    bandwidths = bandwidths.to(centers.device)
    total = torch.zeros(len(bandwidths), dtype=torch.float64, device=centers.device)
    for block, d2 in distance_blocks(centers[rows], centers):
        own = rows[block]
        d2[torch.arange(len(own), device=d2.device), own] = math.inf
        total += log_kernel_sums(d2, bandwidths).sum(1)
    return total / len(rows) - log_normaliser(bandwidths, centers.shape[1], len(centers) - 1)


def select_bandwidth(centers: Tensor, bandwidths: Tensor, rows: Tensor | None = None) -> tuple[float, Tensor]:
    """(h, scores): the bandwidth of the grid ``bandwidths`` that maximises the mean leave-one-out
    log-likelihood of ``centers`` (at the index subset ``rows``, default all), and those scores
    ``[B]`` (:func:`leave_one_out_scores`)."""
    scores = leave_one_out_scores(centers, bandwidths, rows)
    return float(bandwidths[int(scores.argmax())]), scores


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


# ---- metrics --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class KDEConfig:
    bandwidth_low: float = param(1e-3, "smallest bandwidth, times the generated samples' scale (RMS "
                                       "per-coordinate std)", gt=0)
    bandwidth_high: float = param(1.0, "largest bandwidth, times the same scale", gt=0)
    bandwidths: int = param(24, "log-spaced bandwidths tried", ge=1)
    selection_points: int = param(500, "generated samples (a seeded random subset) whose leave-one-out "
                                       "log-likelihood selects the bandwidth; all remain KDE centres", ge=1)

    def __post_init__(self):
        if self.bandwidth_low > self.bandwidth_high:
            raise ValueError(f"bandwidth_low: {self.bandwidth_low} exceeds bandwidth_high {self.bandwidth_high}")


def sample_scale(x: Tensor) -> float:
    """RMS over coordinates of the per-coordinate std of ``x`` ``[n, d]``: sqrt(trace(cov) / d)."""
    return float(x.double().var(0).mean().sqrt())


class KDEDivergence(Metric):
    """JSD and both KLs between p_data (exact) and a leave-one-out-tuned KDE of the samples."""

    name = "kde-divergence"
    Config = KDEConfig
    outputs = (
        Output("jsd", "divergence", "lower", "Jensen-Shannon divergence (nats, <= log 2), p_g by a Gaussian KDE"),
        Output("kl_data_model", "divergence", "lower", "KL(p_data || p_g) (nats), p_g by a Gaussian KDE; unbounded "
                                                       "when modes are dropped", heavy_tailed=True),
        Output("kl_model_data", "divergence", "lower", "KL(p_g || p_data) (nats), leave-one-out KDE at the samples",
               heavy_tailed=True),
    )

    def applies(self, evaluation: Evaluation) -> bool:
        return evaluation.dataset.has_log_prob

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float]:
        config = self.config
        real, fake = evaluation.real.flatten(1), evaluation.fake.flatten(1)
        scale = max(sample_scale(fake), 1e-6 * sample_scale(real), 1e-12)
        grid = bandwidth_grid(scale, config.bandwidth_low, config.bandwidth_high, config.bandwidths)
        rows = torch.randperm(len(fake), generator=evaluation.generator())[:config.selection_points]
        h, _ = select_bandwidth(fake, grid, rows)
        log_q_fake = kde_log_density(fake, fake, h, leave_one_out=True)
        log_q_real = kde_log_density(real, fake, h)
        dataset = evaluation.dataset
        return divergences_from_log_densities(dataset.log_prob(evaluation.real), log_q_real,
                                              dataset.log_prob(evaluation.fake), log_q_fake)


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
