"""Declarations of the numbers a metric or an objective reports (names are the record keys)."""

from __future__ import annotations

import dataclasses
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
    """

    name: str
    group: str
    better: Literal["higher", "lower", "none"] = "none"
    doc: str = ""
    scope: Literal["cell", "job"] = "cell"
    summary: Literal["mean", "sum"] = "mean"
    heavy_tailed: bool = False

    def __post_init__(self):
        assert NAME.match(self.name), f"output name {self.name!r} must match {NAME.pattern}"


def job_scoped(outputs: Mapping[str, Output]) -> set[str]:
    """Names of the outputs measured once per job (shared by its stacked seeds: throughput)."""
    return {name for name, o in outputs.items() if o.scope == "job"}
