"""What a job returns: each member's scores, curves and samples, with the same trained stack rescored
under other samplers (:attr:`JobOutcome.samplers`) and at a budget ladder's lower rungs
(:attr:`JobOutcome.rungs`). A checkpoint holds the rungs scored so far as plain data
(:meth:`JobOutcome.state`, :meth:`JobOutcome.from_state`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import Tensor

from .phases import Times


@dataclasses.dataclass
class JobOutcome:
    """Scores of each member of a job (in seed order), curves, samples for plots, problems met."""

    scores: list[dict[str, float]]
    curves: list[list[tuple[int, str, float]]]  # per member: (step, metric, value)
    samples: Tensor  # [M, plot_samples, *shape], CPU
    problems: list[str]
    notes: list[dict[str, str]] = dataclasses.field(default_factory=list)  # per member: output -> why missing
    diverged: list[dict | None] = dataclasses.field(default_factory=list)  # per member: {"step", "loss"} or None
    samplers: list[JobOutcome] = dataclasses.field(default_factory=list)  # per job.samplers: the stack rescored
    rungs: list[JobOutcome] = dataclasses.field(default_factory=list)  # a ladder's lower rungs (Cell.lower), in order
    phases: Times = dataclasses.field(default_factory=dict)  # where the job's time went (benchbench.train.phases)
    started: float = 0.0  # time.time() when the job began (after its worker started)

    def state(self) -> dict[str, Any]:
        """Plain data (dicts, lists, numbers, strings, tensors) that ``torch.load(weights_only=True)`` reads."""
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> JobOutcome:
        nested = {name: [cls.from_state(s) for s in state[name]] for name in ("samplers", "rungs")}
        return cls(**{**state, **nested, "curves": [[tuple(point) for point in curve] for curve in state["curves"]]})
