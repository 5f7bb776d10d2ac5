"""Parzen-window log-likelihood: the image metric of the GAN (Goodfellow et al. 2014) and GMMN
(Li et al. 2015) papers, for datasets with validation and test splits.

An isotropic Gaussian window on the m generated samples y_j,

    log q(x) = log sum_j exp(-|x - y_j|^2 / (2 sigma^2)) - log m - d/2 log(2 pi sigma^2),

with sigma the value of a grid (the GAN code: 10 values in logspace(-1, 0)) that maximises the
mean log q of validation images; reported: the mean log q of test images and its standard error,
in nats. By default images are first rescaled from the dataset's ``bounds`` to [0, 1], the units
of the papers' numbers (MNIST: GAN 225 +- 2, GMMN+AE 282 +- 2) and of their sigma grid.
Computed with log-sum-exp by row blocks of test points (never the whole [n, m] matrix). A weak
metric in high dimension (Theis et al. 2016), kept because the seed papers report it.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from benchbench import Evaluation, Metric, Output, Unavailable, hookimpl, param
from benchbench_plugins.metrics.density import log_kernel_sums, log_normaliser
from benchbench_plugins.metrics.distances import distance_blocks

LL, SE, SIGMA = "parzen_ll", "parzen_ll_se", "parzen_sigma"
SUBSET_SEED = 0  # the same validation and test points for every cell


def parzen_log_densities(points: Tensor, samples: Tensor, sigmas: Tensor) -> Tensor:
    """log q_sigma(points_i) of the Parzen window of ``samples`` ``[m, d]`` (q_sigma(x) =
    1/m sum_j N(x; samples_j, sigma^2 I)) for each sigma of ``sigmas`` ``[S]``, ``[S, n]`` float64,
    by row blocks of ``points`` ``[n, d]`` (:func:`log_kernel_sums`: log-sum-exp, no underflow),
    written into one tensor made beforehand (as in knn_radii2: a list of pieces can fragment the heap)."""
    points, samples = points.flatten(1), samples.flatten(1)
    sigmas = sigmas.to(device=points.device, dtype=torch.float64)
    sums = torch.empty(len(sigmas), len(points), dtype=torch.float64, device=points.device)
    for rows, d2 in distance_blocks(points, samples):
        sums[:, rows] = log_kernel_sums(d2, sigmas)
    return sums - log_normaliser(sigmas, points.shape[1], len(samples))[:, None]


def select_sigma(validation: Tensor, samples: Tensor, sigmas: Tensor) -> tuple[float, Tensor]:
    """(sigma, scores): the sigma of ``sigmas`` with the highest mean validation log-likelihood,
    and those means ``[S]``."""
    scores = parzen_log_densities(validation, samples, sigmas).mean(1)
    return float(sigmas[int(scores.argmax())]), scores


def parzen_log_likelihood(test: Tensor, samples: Tensor, sigma: float) -> tuple[float, float]:
    """(mean, standard error) of the Parzen log-likelihood of the ``test`` points, nats."""
    log_q = parzen_log_densities(test, samples, torch.tensor([sigma], dtype=torch.float64))[0]
    se = float(log_q.std() / math.sqrt(len(log_q))) if len(log_q) > 1 else math.nan
    return float(log_q.mean()), se


def subset(x: Tensor, n: int | None) -> Tensor:
    """``n`` rows of ``x`` chosen by a fixed generator (all of them for None or n >= len(x))."""
    if n is None or n >= len(x):
        return x
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(SUBSET_SEED))[:n]]


@dataclasses.dataclass(frozen=True)
class ParzenConfig:
    sigmas: tuple[float, ...] = param(tuple(10 ** (-1 + i / 9) for i in range(10)),
                                      "window widths tried on the validation split (GAN code: 10 values in "
                                      "logspace(-1, 0)), in the units of unit_range", gt=0)
    validation_points: int | None = param(1000, "validation images that choose sigma, a fixed random subset "
                                                "(null: the whole split)", ge=1)
    test_points: int | None = param(None, "test images scored, a fixed random subset (null: the whole split, "
                                          "as the papers)", ge=1)
    unit_range: bool = param(True, "rescale images from the dataset's bounds to [0, 1] first (the papers' "
                                   "units); false: the data's own units")


class Parzen(Metric):
    """Mean Parzen-window log-likelihood of test images under the generated samples."""

    name = "parzen"
    Config = ParzenConfig
    outputs = (
        Output(LL, "quality", "higher", "Parzen-window log-likelihood of the test split under the generated "
                                        "samples, mean over test images (nats; images in [0, 1] by default)",
               heavy_tailed=True),
        Output(SE, "quality", "none", "standard error of parzen_ll over the test images"),
        Output(SIGMA, "quality", "none", "window width chosen on the validation split"),
    )

    def applies(self, evaluation: Evaluation) -> bool:
        dataset = evaluation.dataset
        return dataset.split("validation") is not None and dataset.split("test") is not None

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        dataset, fake = evaluation.dataset, evaluation.fake
        validation = subset(dataset.split("validation").x, self.config.validation_points).to(fake.device)
        test = subset(dataset.split("test").x, self.config.test_points).to(fake.device)
        if self.config.unit_range and dataset.bounds is not None:
            low, high = dataset.bounds
            validation, test, fake = ((t - low) / (high - low) for t in (validation, test, fake))
        sigma, _ = select_sigma(validation, fake, torch.tensor(self.config.sigmas, dtype=torch.float64))
        mean, se = parzen_log_likelihood(test, fake, sigma)
        return {LL: mean, SE: se if len(test) > 1 else Unavailable("a single test image"), SIGMA: sigma}


@hookimpl
def benchbench_metrics():
    return [Parzen]
