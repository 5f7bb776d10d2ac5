"""The contract of a dataset. Plugins subclass :class:`Dataset`."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import Tensor

from .params import NoConfig


@dataclasses.dataclass(frozen=True)
class Modes:
    """The components of a mixture: what mode-coverage metrics count."""

    centers: Tensor  # [K, *shape]
    stds: Tensor  # [K], isotropic std of each component
    weights: Tensor  # [K], sums to 1


@dataclasses.dataclass(frozen=True)
class Split:
    """The real examples of one split of a finite dataset (e.g. images) with their class labels."""

    x: Tensor  # [N, *shape] float32, values within the dataset's ``bounds``, on the CPU
    labels: Tensor  # [N] int64; or [N, C]: one label per channel (stacked datasets, e.g. Stacked MNIST)
    classes: int  # number of classes of each label


class Dataset:
    """A data distribution to sample from, with its exact density where known.

    Subclasses set ``name``, ``Config`` and ``shape`` (per-sample shape, e.g. ``(2,)``), and
    implement :meth:`sample`; they implement :meth:`log_prob` when the density is known and
    :meth:`modes` when the data is a mixture whose modes can be counted. Finite datasets (images)
    implement :meth:`split` and :meth:`heldout`, and set ``bounds`` so generators squash their
    output into the data's range.
    """

    name: ClassVar[str]
    Config: ClassVar[type] = NoConfig
    shape: tuple[int, ...]
    bounds: tuple[float, float] | None = None  # (low, high) of every value; None: unbounded

    def __init__(self, config: Any):
        self.config = config

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` samples ``[n, *shape]`` (float32) on ``generator.device``, drawn with ``generator`` only."""
        raise NotImplementedError

    def sample_members(self, n: int, generators: list[torch.Generator]) -> Tensor:
        """``[M, n, *shape]``: ``sample(n, generators[i])`` for each member ``i``. Override only
        to do the same faster for a stack (the result must not change)."""
        samples = [self.sample(n, g) for g in generators]
        return samples[0].unsqueeze(0) if len(samples) == 1 else torch.stack(samples)

    def heldout(self, n: int, generator: torch.Generator) -> Tensor:
        """Up to ``n`` held-out real samples ``[n', *shape]`` (n' <= n) that metrics compare against,
        on ``generator.device``. Default: fresh samples. A dataset with a test split returns (a
        subset of) it, which may hold fewer than ``n`` examples."""
        return self.sample(n, generator)

    def split(self, name: str) -> Split | None:
        """The real examples of split ``name`` ("train", "validation" or "test"), or None when the
        dataset has no finite splits (e.g. a mixture with a known density)."""
        return None

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density of ``x`` ``[n, *shape]`` under the data distribution, ``[n]``."""
        raise NotImplementedError(f"{self.name} has no known density")

    def modes(self) -> Modes | None:
        """The mixture components, or None when the data has no countable modes."""
        return None

    @property
    def has_log_prob(self) -> bool:
        return type(self).log_prob is not Dataset.log_prob

    @property
    def dim(self) -> int:
        return int(torch.Size(self.shape).numel())
