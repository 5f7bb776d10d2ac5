"""The contract of a metric. Plugins subclass :class:`Metric`.

A metric sees one :class:`Evaluation` (held-out real samples, generated samples, the dataset,
and for final evaluations the job's timing) and returns a dict of plain floats keyed by the names
it declares in ``outputs``. The math lives in pure functions beside it (tensors in, numbers out).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import Tensor

from .dataset import Dataset
from .outputs import Output
from .params import NoConfig


@dataclasses.dataclass(frozen=True)
class Timing:
    """How a training job ran. Evaluation time is not in ``train_seconds``."""

    device: str  # e.g. "cpu" or "cuda:0 NVIDIA H100 80GB HBM3"
    members: int  # seeds trained together as one stacked model
    steps: int  # training steps, each running every update of the objective (a GAN's: k critic, one generator)
    train_seconds: float  # wall time of the training loop of the whole job
    samples: int  # samples generated per member for the sampling measurement
    sample_seconds: float  # wall time to generate ``samples`` samples for every member
    peak_memory_bytes: int | None  # CUDA: peak allocated by torch; CPU: peak RSS of the process
    memory_kind: str  # "cuda_allocated" or "process_rss"
    flops_per_step: float | None = None  # floating-point operations of one training step of the whole stack
    flops_note: str = ""  # why ``flops_per_step`` is None (e.g. the counter failed), shown as n/a (reason)
    flops_per_sample: float | None = None  # of the real sampler, per generated sample of one member
    sample_flops_note: str = ""  # why ``flops_per_sample`` is None
    nfe: int = 1  # network evaluations per generated sample (the objective's ``nfe()``)


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What a metric sees about one trained cell (or about fresh data, for the reference row)."""

    real: Tensor  # held-out data [n, *shape], on the evaluation device
    fake: Tensor  # generated samples [n, *shape], same device
    dataset: Dataset
    seed: int  # seeds any randomness inside the metric (use :meth:`generator`)
    timing: Timing | None = None  # the training job's measurements; None for curves and the reference
    step: int | None = None  # training step of the evaluation

    def generator(self, salt: int = 0) -> torch.Generator:
        """A CPU generator for metric-internal randomness, fixed by the cell's seed."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)


@dataclasses.dataclass(frozen=True)
class Unavailable:
    """What a metric returns for an output it cannot compute honestly here, with the reason
    shown in the tables instead of a number (e.g. ``Unavailable("n=500 < 64 feature dims")``)."""

    reason: str


class Metric:
    """Numbers computed from an :class:`Evaluation`. Subclasses set ``name``, ``outputs``
    (and ``Config`` if they have settings) and implement :meth:`compute`. The class's ``outputs``
    are every output it can report (record keys, unique across plugins); an instance whose config
    chooses among them (e.g. a feature set) narrows ``self.outputs`` to those it reports."""

    name: ClassVar[str]
    Config: ClassVar[type] = NoConfig
    outputs: ClassVar[tuple[Output, ...]]

    def __init__(self, config: Any):
        self.config = config

    def applies(self, evaluation: Evaluation) -> bool:
        """Whether this metric can be computed here (e.g. needs a known density, or timing)."""
        return True

    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        raise NotImplementedError

    def check(self, dataset: Dataset) -> None:
        """Called once per dataset of a suite before anything trains: raise a one-line
        :class:`~benchbench.ConfigError` when this metric, as configured, cannot run on ``dataset`` on
        this machine (a package or a file it needs is missing). Default: nothing to check."""
