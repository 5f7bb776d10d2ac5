"""The contract of a reporter: it turns a finished run into files. Plugins subclass :class:`Reporter`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from torch import Tensor

from .dataset import Dataset
from .outputs import Output
from .params import NoConfig

REFERENCE = "(data)"
"""The objective label of the data-reference rows: fresh samples of the true data scored as if
generated (the best each metric can do with this many samples); never compared. No plugin's label
can contain "(".
"""


@dataclasses.dataclass
class Frontier:
    """A run read across its budget rungs (:mod:`benchbench.stats.frontier`); every frame is empty
    where it does not apply (a single rung has no crossovers and no area under a curve).

    - ``by_rung``: the summary (with verdicts) of every rung: summary columns + rung, train_flops
    - ``comparisons``: the pairwise comparisons of every rung (Holm within dataset, metric, rung) + rung
    - ``ranks``: dataset, metric, rung, train_flops, objective, rank (1 = best mean), verdict
    - ``crossovers``: pairs whose significant order flips between two rungs
    - ``targets``: dataset, metric, target, source ("suite" or "2x (data)")
    - ``to_target``: training FLOPs per model to reach each target, median over seeds with an interval
    - ``anytime``: area under the quality-vs-log10-FLOPs curve over the rungs' common span, per objective
    - ``improving``: whether each final score's curve still improved over the last part of the budget
    - ``sampling``: quality at the top rung against FLOPs per sample and nfe, with the Pareto set
    """

    by_rung: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    comparisons: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    ranks: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    crossovers: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    targets: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    to_target: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    to_target_seeds: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    anytime: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    improving: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    sampling: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)

    @property
    def rungs(self) -> int:
        """How many budget rungs were scored (1 for a single budget)."""
        return int(self.by_rung["rung"].nunique()) if "rung" in self.by_rung and not self.by_rung.empty else 1


@dataclasses.dataclass
class RunReport:
    """Everything a reporter may use. Tables are long-format pandas frames:

    - ``records``: cell, job, dataset, objective, seed, rung, metric, value, note (final evaluation; the top
      rung of a budget ladder)
    - ``curves``: cell, dataset, objective, seed, rung, step, metric, value (during training)
    - ``summary``: dataset, objective, metric, mean, std, ci95_low, ci95_high, n, note, median, iqm
      (each with _low/_high bootstrap bounds), tied_best, verdict, still_improving (the curve still
      improved at the end of the budget: :mod:`benchbench.stats.improving`)
    - ``comparisons``: every pair of objectives per (dataset, metric) (:func:`benchbench.comparisons`)
    - ``ranks``: per metric, each objective's mean rank over datasets (:func:`benchbench.ranks`)

    Fields with defaults were added later (a reporter built for fewer fields keeps working):
    ``environment`` is the run's ``environment.json`` (device, versions, git commit...),
    ``problems`` every problem the cells recorded (diverged seeds, metric errors, out-of-memory
    retries, missing cells), ``suite_config`` the resolved suite (``suite.yaml``), ``wall_time_s``
    the seconds from the run's start to its last cell (None if unknown).
    """

    suite: str
    directory: Path
    records: pd.DataFrame
    curves: pd.DataFrame
    summary: pd.DataFrame
    outputs: dict[str, Output]  # metric name -> declaration
    datasets: dict[str, Dataset]  # dataset label -> dataset (densities for plots)
    samples: dict[tuple[str, str, int], Tensor]  # (dataset, objective, seed) -> samples [n, *shape], CPU
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)
    suite_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    wall_time_s: float | None = None
    comparisons: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    ranks: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    chosen: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    """(dataset, objective) -> the setting a search chose, in words (empty without a search)"""
    trials: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # trials.csv (a search's trials)
    budget: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # budget.csv (expected best vs budget)
    selection_warnings: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    """(dataset, objective) -> a winner's-curse warning: the chosen setting's final score fell outside the range
    of its selection scores (:func:`benchbench.plan.trials.winners_curse`; empty without a search)"""
    phases: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    """Where the run's time went (``phases.csv``): scope ("run": the runner's laps, adding up to its wall time;
    "jobs": phases inside the jobs, summed over them), phase ("curve points/metric kde": a part of a phase),
    wall_s, cpu_s, count (:mod:`benchbench.report.phases`); empty for runs that recorded none"""
    frontier: Frontier = dataclasses.field(default_factory=Frontier)
    """the run across its budget rungs: verdicts per rung, crossovers, compute to a target (:class:`Frontier`)"""
    rung_records: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    """records of every rung of a budget ladder (records.csv; ``rung`` 0 the lowest): ``records``, ``curves``,
    ``samples`` and every table derived from them hold the top rung alone"""


class Reporter:
    """Writes files from a :class:`RunReport` into ``directory``; returns the paths written."""

    name: ClassVar[str]
    Config: ClassVar[type] = NoConfig
    runs_last: ClassVar[bool] = False  # True: after the other reporters of the run (it may embed their files)

    def __init__(self, config: Any):
        self.config = config

    def report(self, run: RunReport, directory: Path) -> list[Path]:
        raise NotImplementedError
