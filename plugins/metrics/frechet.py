"""Frechet distance between Gaussians fitted to the real and generated samples (the FID formula,
here on the raw flattened samples):

    FD = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}),   covariances with N - 1.

Tr (S1 S2)^{1/2} is the sum of the square roots of the eigenvalues of the symmetric PSD matrix
sqrt(S1) S2 sqrt(S1), which has the eigenvalues of S1 S2; everything in float64, negative
round-off eigenvalues clamped to 0 (no scipy.linalg.sqrtm: slow, and it has had precision
regressions). Needs more samples than dimensions; few samples bias it upward.
"""

from __future__ import annotations

import torch
from torch import Tensor

from benchbench import Evaluation, Metric, Output, hookimpl


def sqrt_psd(s: Tensor) -> Tensor:
    """The symmetric square root of a symmetric PSD matrix (eigendecomposition, eigenvalues clamped at 0)."""
    values, vectors = torch.linalg.eigh(s)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def trace_sqrt_product(s1: Tensor, s2: Tensor) -> Tensor:
    """Tr (S1 S2)^{1/2} = sum sqrt(eig(sqrt(S1) S2 sqrt(S1))) for symmetric PSD ``s1``, ``s2`` (float64)."""
    r = sqrt_psd(s1)
    m = r @ s2 @ r
    return torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()


def frechet_distance(mu1: Tensor, s1: Tensor, mu2: Tensor, s2: Tensor) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}) for means ``[d]`` and covariances ``[d, d]``,
    in float64 (>= 0 up to round-off)."""
    mu1, s1, mu2, s2 = (t.double() for t in (mu1, s1, mu2, s2))
    fd = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * trace_sqrt_product(s1, s2)
    return float(fd)


def mean_and_covariance(x: Tensor) -> tuple[Tensor, Tensor]:
    """(mean ``[d]``, covariance ``[d, d]`` with N - 1) of ``x`` ``[N, *shape]`` flattened, float64.
    d = 1 gives a 1 x 1 matrix."""
    x = x.flatten(1).double()
    mu = x.mean(0)
    centred = x - mu
    return mu, centred.T @ centred / (len(x) - 1)


def frechet_from_samples(x: Tensor, y: Tensor) -> float:
    """Frechet distance between the Gaussians fitted to samples ``x`` and ``y`` (N - 1 covariances)."""
    return frechet_distance(*mean_and_covariance(x), *mean_and_covariance(y))


class Frechet(Metric):
    """FID's formula on the raw samples: the Frechet distance of fitted Gaussians."""

    name = "frechet"
    outputs = (Output("frechet_distance", "divergence", "lower", "Frechet distance between Gaussians fitted to the "
                                                                  "real and generated samples (raw, flattened)"),)

    def applies(self, evaluation: Evaluation) -> bool:
        return evaluation.dataset.split("train") is None  # images: the feature-space metrics of ``images``

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float]:
        return {"frechet_distance": frechet_from_samples(evaluation.real, evaluation.fake)}


@hookimpl
def benchbench_metrics():
    return [Frechet]
