"""Declarations of the numbers a metric or an objective reports (names are the record keys)."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Literal

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class Output:
    """One named number a metric (or an objective's diagnostics) reports.

    ``group`` puts it in a table (``quality``, ``divergence``, ``theory``, ``throughput``...);
    ``better`` says which direction is good, for reports; ``scope`` is ``"job"`` for measurements
    shared by the seeds trained together in one stacked job (throughput), counted once per job
    when averaging over seeds. ``summary`` is how seeds are combined in tables: ``"mean"`` (with a
    95% interval) or ``"sum"`` (a count, e.g. of diverged seeds). ``heavy_tailed`` marks numbers
    whose values over seeds can be extreme (KL divergences, log-likelihoods): tables show their
    interquartile mean with a bootstrap interval rather than the mean.

    ``range`` = (low, high) is the interval the quantity lies in mathematically (JSD in [0, log 2],
    a KL in [0, inf)); an estimate may stray from it by ``tolerance`` (its known bias and Monte
    Carlo error). A value further out is an estimator failure, not a score: the core records it
    as missing with a note (:meth:`out_of_range`), and neither tables, verdicts nor the search use it.
    """

    name: str
    group: str
    better: Literal["higher", "lower", "none"] = "none"
    doc: str = ""
    scope: Literal["cell", "job"] = "cell"
    summary: Literal["mean", "sum"] = "mean"
    heavy_tailed: bool = False
    range: tuple[float, float] | None = None
    tolerance: float = 0.0

    def __post_init__(self):
        assert NAME.match(self.name), f"output name {self.name!r} must match {NAME.pattern}"
        if self.range is not None:
            low, high = self.range
            assert len(self.range) == 2 and low <= high, f"output {self.name!r}: range {self.range} must be (low, high)"
        assert self.tolerance >= 0, f"output {self.name!r}: tolerance {self.tolerance} must be >= 0"

    def out_of_range(self, value: float) -> str | None:
        """None when ``value`` is within ``range`` widened by ``tolerance`` (or no range is declared,
        or the value is not finite: that is reported apart), else the note that records the failure,
        e.g. "estimator failure: jsd = -0.113 outside [0, 0.693]"."""
        if self.range is None or not math.isfinite(value):
            return None
        low, high = self.range
        if low - self.tolerance <= value <= high + self.tolerance:
            return None
        return f"estimator failure: {self.name} = {value:.4g} outside [{low:.3g}, {high:.3g}]"


def job_scoped(outputs: Mapping[str, Output]) -> set[str]:
    """Names of the outputs measured once per job (shared by its stacked seeds: throughput)."""
    return {name for name, o in outputs.items() if o.scope == "job"}
