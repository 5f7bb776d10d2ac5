"""Mode coverage on mixtures with known components: the protocol of VEEGAN (2017) and PacGAN (2018).

Each generated sample is assigned to its nearest mode centre. It is *high quality* when its
distance to that centre is within 3 standard deviations of that component. Reported:

- ``modes_captured``: components nearest to at least one high-quality sample;
- ``high_quality_pct``: percent of samples that are high quality;
- ``mode_kl``: KL(h || w) between the histogram h of the nearest-mode assignments of *all* samples
  and the mixture weights w (KL to uniform for equal weights, as PacGAN reports; 0 log 0 = 0).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from benchbench import Evaluation, Metric, Output, hookimpl, param
from benchbench_plugins.kernels import squared_distances


def assign_modes(x: Tensor, centers: Tensor) -> tuple[Tensor, Tensor]:
    """(index ``[n]``, distance ``[n]``): the nearest of ``centers`` ``[K, *shape]`` to each sample of
    ``x`` ``[n, *shape]`` and the Euclidean distance to it."""
    centers = centers.to(device=x.device, dtype=x.dtype)
    d2 = squared_distances(x.flatten(1), centers.flatten(1))
    nearest = d2.min(dim=1)
    return nearest.indices, nearest.values.sqrt()


def kl_histogram(counts: Tensor, weights: Tensor) -> float:
    """KL(h || w) = sum_k h_k log(h_k / w_k) in nats, h = counts / counts.sum(), w = weights / weights.sum()
    (float64), with 0 log 0 = 0."""
    h = counts.double() / counts.sum()
    w = weights.to(device=h.device, dtype=torch.float64)
    w = w / w.sum()
    terms = torch.where(h > 0, h * (h.log() - w.log()), torch.zeros_like(h))
    return float(terms.sum())


def mode_statistics(index: Tensor, distance: Tensor, stds: Tensor, weights: Tensor,
                    threshold: float = 3.0) -> dict[str, float]:
    """``modes_captured``, ``high_quality_pct`` and ``mode_kl`` from nearest-mode assignments.

    A sample is high quality when ``distance <= threshold * stds[index]``; a mode is captured when
    it is the nearest mode of at least one high-quality sample; ``mode_kl`` = KL(histogram of all
    assignments || weights) (:func:`kl_histogram`).
    """
    k = len(weights)
    stds = stds.to(device=distance.device, dtype=distance.dtype)
    good = distance <= threshold * stds[index]
    captured = torch.bincount(index[good], minlength=k) > 0
    counts = torch.bincount(index, minlength=k)
    return {"modes_captured": float(captured.sum()),
            "high_quality_pct": 100.0 * float(good.double().mean()),
            "mode_kl": kl_histogram(counts, weights)}


@dataclasses.dataclass(frozen=True)
class ModesConfig:
    threshold: float = param(3.0, "a sample is high quality within this many stds of its nearest centre "
                                  "(VEEGAN, PacGAN: 3)", gt=0)


class ModeCoverage(Metric):
    """Modes captured, percent of high-quality samples and KL of the mode histogram (PacGAN)."""

    name = "modes"
    Config = ModesConfig
    outputs = (
        Output("modes_captured", "quality", "higher", "components nearest to at least one high-quality sample",
               range=(0.0, math.inf)),
        Output("high_quality_pct", "quality", "higher", "percent of samples within 3 std of their nearest centre",
               range=(0.0, 100.0)),
        Output("mode_kl", "quality", "lower", "KL(nearest-mode histogram of all samples || mixture weights), "
                                                 "nats", heavy_tailed=True,
               range=(0.0, math.inf)),
    )

    def applies(self, evaluation: Evaluation) -> bool:
        return evaluation.dataset.modes() is not None

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float]:
        modes = evaluation.dataset.modes()
        index, distance = assign_modes(evaluation.fake, modes.centers)
        return mode_statistics(index, distance, modes.stds, modes.weights, self.config.threshold)


@hookimpl
def benchbench_metrics():
    return [ModeCoverage]
