"""Divergence seen in the samples: a member whose generated samples are not finite, or lie far
beyond the scale of the data, has diverged, even when its losses stay finite (a GMMN with a huge
learning rate drifts to samples near 1e30 while its kernel loss stays bounded).

The bound: ``SCALE_FACTOR`` (1000) times the data's scale, which is the largest absolute value
the data can take (its ``bounds``) or, for unbounded data, that of its held-out samples, and
never less than 1 (so that data near zero does not make an untrained generator diverge).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..api.dataset import Dataset

SCALE_FACTOR = 1e3


def sample_bound(dataset: Dataset, real: Tensor) -> float:
    """The largest absolute value a sane sample of ``dataset`` may take; ``real`` ``[M, n, *shape]``."""
    if dataset.bounds is not None:
        scale = max(abs(float(dataset.bounds[0])), abs(float(dataset.bounds[1])))
    else:
        finite = real[torch.isfinite(real)]
        scale = float(finite.abs().max()) if finite.numel() else 1.0
    return SCALE_FACTOR * max(scale, 1.0)


def runaway(fake: Tensor, bound: float) -> Tensor:
    """``[M]`` bool: members whose samples ``fake`` ``[M, n, *shape]`` are not all finite and within ``bound``."""
    flat = fake.detach().flatten(1).float()
    return ~(torch.isfinite(flat).all(1) & (flat.abs().amax(1) <= bound))


def describe(diverged: dict) -> str:
    """What a cell's ``diverged`` record means, for a warning line."""
    if diverged["loss"] == "samples":
        return "its samples became NaN or infinite, or left 1000x the data's scale"
    return f"{diverged['loss']} became NaN or infinite"


def warning(label: str, seed: int, diverged: dict) -> str:
    """The one line a run (and its report) gives for a diverged seed of ``label`` (dataset/objective)."""
    return f"{label} seed {seed}: diverged at step {diverged['step']} ({describe(diverged)}); its metrics are missing"
