"""Units of work. A cell is one (dataset, objective, seed): independent, deterministic, and keyed
by a hash of everything that determines its result, so any machine can run it and a re-run that
finds its key already done skips it. A job groups the cells that differ only in seed, to be trained
as one stacked model; the data reference of a dataset is a job with no objective.

A row of the results is named by its labels: two labels with identical settings (an objective
given twice, two datasets alike) are two rows. Their cells would hash alike, so :func:`separate`
keys each by its settings and its labels (``config["row"]``; cells of other suites keep the keys
of their settings alone), and :func:`share` trains one of them, the others saved as its copies.

:func:`plan` makes the jobs of a suite once, training shared; resume selects from that list
(:mod:`benchbench.plan.selection`), and the engines run the selection.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..api.params import sampling_settings
from ..api.reporter import REFERENCE
from ..config.suite import ComponentSpec, Suite
from ..registry.components import Registry
from .blueprint import recall
from .ladder import is_ladder, retrains, rung_key, rung_suite, top_rung
from .sizing import members_that_fit

SCHEMA_VERSION = 1
ROW = "row"  # config key naming the labels of a cell whose settings another row shares (see separate)


@dataclasses.dataclass(frozen=True)
class Cell:
    key: str
    dataset: str  # label
    objective: str  # label, or REFERENCE
    seed: int
    config: dict[str, Any]  # the resolved configuration that ``key`` hashes
    spec: ComponentSpec | None = None  # a search trial: the objective as this cell trains it (benchbench.plan.trials)
    trained_as: str = ""  # hash of what training depends on (the config without sampling-only settings); "" = key
    rung: int = 0  # of the suite's budget ladder (benchbench.plan.ladder); 0 for a single budget
    lower: tuple[Cell, ...] = ()  # the cells of the lower rungs that this cell's training is scored for on its way


@dataclasses.dataclass(frozen=True)
class Job:
    key: str
    dataset: ComponentSpec
    objective: ComponentSpec | None  # None: evaluate fresh data (the reference row)
    cells: tuple[Cell, ...]
    suite: Suite
    samplers: tuple[tuple[ComponentSpec, tuple[Cell, ...]], ...] = ()
    """Objectives that differ from ``objective`` only in sampling settings, each with its cells (one per
    member, in member order): the trained stack is scored again under each, without retraining."""
    checkpoints: str | None = None  # the directory of the job's checkpoint (benchbench.train.checkpoint); None: none
    copies: Mapping[str, tuple[Cell, ...]] = dataclasses.field(default_factory=dict)
    """Per key of a cell this job scores (its own or a sampler's), the cells of other labels with the same
    settings that are saved with its result instead of training (:func:`share`)."""

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(c.seed for c in self.cells)

    @property
    def members(self) -> tuple[Any, ...] | None:
        """Each member's objective config when the cells are search trials (they may differ in
        per-member settings), else None: every member trains with ``objective``'s config."""
        if all(c.spec is None for c in self.cells):
            return None
        return tuple(c.spec.config for c in self.cells)

    @property
    def label(self) -> str:
        return f"{self.dataset.label}/{self.objective.label if self.objective else REFERENCE}"

    @property
    def scored(self) -> tuple[tuple[ComponentSpec | None, tuple[Cell, ...]], ...]:
        """(objective, cells) of each scoring of the trained stack, in the order of the outcome and its
        ``samplers``: the job's own, then each other sampler's."""
        return ((self.objective, self.cells), *self.samplers)

    def rows(self, cell: Cell) -> tuple[Cell, ...]:
        """``cell`` and the cells of other labels that are saved with its result."""
        return (cell, *self.copies.get(cell.key, ()))

    @property
    def written(self) -> tuple[Cell, ...]:
        """Every cell this job's outcome is saved as (at the top rung): its own, its samplers', their copies."""
        return tuple(row for _, cells in self.scored for cell in cells for row in self.rows(cell))

    def at_rung(self, rung: int) -> Job:
        """The job as a lower rung of a ladder scores it: every cell (and copy) replaced by that rung's."""
        lower = lambda cells: tuple(c.lower[rung] for c in cells)  # noqa: E731
        return dataclasses.replace(
            self, cells=lower(self.cells), samplers=tuple((spec, lower(cells)) for spec, cells in self.samplers),
            copies={c.lower[rung].key: lower(self.copies[c.key]) for _, cells in self.scored for c in cells
                    if c.key in self.copies})

    def select(self, members: Sequence[int]) -> Job:
        """The job reduced to ``members`` (indices, in order), its samplers and copies with them."""
        pick = lambda cells: tuple(cells[i] for i in members)  # noqa: E731
        cells = pick(self.cells)
        samplers = tuple((spec, pick(c)) for spec, c in self.samplers)
        keys = {c.key for _, group in ((None, cells), *samplers) for c in group}
        return dataclasses.replace(self, key=digest([c.key for c in cells]), cells=cells, samplers=samplers,
                                   copies={k: v for k, v in self.copies.items() if k in keys})


def plan(suite: Suite, registry: Registry) -> list[Job]:
    """Every job of the suite, in suite order (the reference of each dataset first), each training
    once (:func:`share`). On a budget ladder, a job trains to the top rung and its cells carry those
    of the lower rungs, or (objectives that :func:`~benchbench.plan.ladder.retrains`) each rung is a
    job of its own."""
    return share(planned(suite, registry))


def planned(suite: Suite, registry: Registry) -> list[Job]:
    """Every job of the suite, rows separated (:func:`separate`), before training is shared."""
    jobs = []
    for dataset in suite.datasets:
        for objective in ((None,) if suite.eval.reference else ()) + suite.objectives:
            size = group_size(suite, registry, dataset, objective)
            for rung_of_job, cells in rung_cells(suite, registry, dataset, objective):
                groups = [cells[i:i + size] for i in range(0, len(cells), size)]
                job_suite = suite if rung_of_job is None else rung_suite(suite, rung_of_job)
                jobs.extend(make_job(job_suite, dataset, objective, group) for group in groups)
    return separate(jobs)


def rung_cells(suite: Suite, registry: Registry, dataset: ComponentSpec, objective: ComponentSpec | None
               ) -> list[tuple[int | None, list[Cell]]]:
    """The cells a (dataset, objective) trains, one per seed, each with the rung its job trains to
    (None: the suite's whole budget, a ladder's lower rungs scored on the way)."""
    top = top_rung(suite)
    if objective is None or not is_ladder(suite):
        return [(None, [make_cell(suite, registry, dataset, objective, seed, top) for seed in suite.seeds])]
    if retrains(suite, objective):
        return [(rung, [make_cell(suite, registry, dataset, objective, seed, rung) for seed in suite.seeds])
                for rung in range(top + 1)]
    return [(None, [dataclasses.replace(make_cell(suite, registry, dataset, objective, seed, top),
                                        lower=tuple(make_cell(suite, registry, dataset, objective, seed, rung)
                                                    for rung in range(top)))
                    for seed in suite.seeds])]


def group_size(suite: Suite, registry: Registry, dataset: ComponentSpec, objective: ComponentSpec | None) -> int:
    """Seeds per stacked model: all of them, unless the suite or the objective says otherwise
    (``stack_seeds: false``, ``max_members``, ``stackable = False``) or they would not fit in memory
    (as estimated by the blueprint the suite's check made; without one, all of them)."""
    seeds = len(suite.seeds)
    if objective is None:
        return seeds
    cls = registry.entry(objective).cls
    if not suite.execution.stack_seeds or not cls.stackable:
        return 1
    if suite.execution.max_members:
        return min(seeds, suite.execution.max_members)
    blueprint = recall(registry, dataset, objective)  # made when the suite was checked
    if blueprint is None:
        return seeds
    device = torch.device(suite.device)
    workers = 1 if device.type == "cuda" else suite.execution.workers or os.cpu_count() or 1
    return min(seeds, members_that_fit(blueprint, device, workers) or seeds)


def make_job(suite: Suite, dataset: ComponentSpec, objective: ComponentSpec | None, cells) -> Job:
    return Job(digest([c.key for c in cells]), dataset, objective, tuple(cells), suite)


def make_cell(suite: Suite, registry: Registry, dataset: ComponentSpec, objective: ComponentSpec | None,
              seed: int, rung: int | None = None) -> Cell:
    """The cell of ``seed`` at ``rung`` of the suite's budget (default: the top rung)."""
    rung = top_rung(suite) if rung is None else rung

    def versioned(spec: ComponentSpec) -> dict[str, Any]:
        plugin = registry.entry(spec).plugin
        return {**spec.resolved(), "plugin": plugin.name, "version": plugin.version}

    config = {
        "schema": SCHEMA_VERSION,
        "dataset": versioned(dataset),
        "objective": versioned(objective) if objective else None,
        "seed": seed,
        **budget_key(suite, objective, rung),
        "device": torch.device(suite.device).type,
        "eval": {k: v for k, v in dataclasses.asdict(suite.eval).items() if k not in ("reference",)},
        "metrics": {m.label: versioned(m) for m in suite.metrics},
    }
    sampling = sampling_settings(objective.config) if objective else ()
    trained_as = ""
    if any(name in config["objective"] for name in sampling):
        trained_as = digest({**config, "objective": {k: v for k, v in config["objective"].items() if k not in sampling}})
    return Cell(digest(config), dataset.label, objective.label if objective else REFERENCE, seed, config,
                trained_as=trained_as, rung=rung)


def training_key(cell: Cell) -> str:
    """The hash of what a cell's result depends on (its settings, not its labels): cells that share it
    train once."""
    return digest({k: v for k, v in cell.config.items() if k != ROW})


def separate(jobs: list[Job]) -> list[Job]:
    """``jobs`` with a key of its own for every cell whose settings a cell of other labels shares (its
    config then names its labels), so that each row keeps a cell file of its own. Idempotent."""
    rows: dict[str, set[tuple[str, str]]] = {}
    for cell in (c for job in jobs for c in job.cells):
        rows.setdefault(training_key(cell), set()).add((cell.dataset, cell.objective))
    shared = {key for key, labels in rows.items() if len(labels) > 1}
    if not shared:
        return jobs
    out = []
    for job in jobs:
        cells = [_labelled(c) if training_key(c) in shared else c for c in job.cells]
        out.append(job if cells == list(job.cells) else make_job(job.suite, job.dataset, job.objective, cells))
    return out


def _labelled(cell: Cell) -> Cell:
    config = {**{k: v for k, v in cell.config.items() if k != ROW},
              ROW: {"dataset": cell.dataset, "objective": cell.objective}}
    return dataclasses.replace(cell, key=digest(config), config=config, lower=tuple(map(_labelled, cell.lower)))


def share(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` with each training done once. A cell whose settings an earlier cell of other labels
    shares is not trained: it becomes one of that cell's :attr:`Job.copies` (a job left with no cell
    is dropped). A job that differs from an earlier one only in sampling settings (the same seeds,
    stacked alike, :attr:`Cell.trained_as`) is not trained either: it becomes one of that job's
    ``samplers``, scored on its trained stack."""
    trains: dict[str, Cell] = {}
    copies: dict[str, list[Cell]] = {}
    own_jobs = []
    for job in jobs:
        own = []
        for cell in job.cells:
            first = trains.setdefault(training_key(cell), cell)
            if first is cell:
                own.append(cell)
            else:
                copies.setdefault(first.key, []).append(cell)
        if len(own) == len(job.cells):
            own_jobs.append(job)
        elif own:
            own_jobs.append(make_job(job.suite, job.dataset, job.objective, own))
    first_of: dict[tuple[str, ...], int] = {}
    out: list[Job] = []
    for job in own_jobs:
        trained = tuple(c.trained_as for c in job.cells)
        if job.objective is not None and all(trained) and not job.samplers and job.members is None:
            if trained in first_of:
                i = first_of[trained]
                out[i] = dataclasses.replace(out[i], samplers=(*out[i].samplers, (job.objective, job.cells)))
                continue
            first_of[trained] = len(out)
        out.append(job)
    return [dataclasses.replace(job, copies={c.key: (*job.copies.get(c.key, ()), *copies.get(c.key, ()))
                                             for _, cells in job.scored for c in cells
                                             if c.key in copies or c.key in job.copies}) for job in out]


def budget_key(suite: Suite, objective: ComponentSpec | None, rung: int) -> dict[str, Any]:
    """The training budget in a cell's key: ``steps`` for a step budget (the key cells had before budgets
    had units, so their keys and records do not change), else ``budget`` (``{"flops": F}``); the data
    reference trains nothing (``steps: 0``), so it is shared by suites of any budget. A rung of a
    ladder: its budget (``{"steps": N}``...) and the ladder (:func:`~benchbench.plan.ladder.rung_key`)."""
    if objective is None:
        return {"steps": 0}
    if is_ladder(suite):
        return {"budget": suite.budget.at(rung).resolved(), **rung_key(suite, rung)}
    if suite.budget.unit == "steps":
        return {"steps": suite.steps}
    return {"budget": suite.budget.resolved()}


def digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stream(seed: int, purpose: str, device: torch.device | str = "cpu") -> torch.Generator:
    """An independent random stream for one seed and purpose ("init", "train", "eval-data"...).
    It depends on nothing else, so paired objectives see the same data for the same seed."""
    value = int.from_bytes(hashlib.sha256(f"{seed}/{purpose}".encode()).digest()[:8], "little") >> 1
    return torch.Generator(device=device).manual_seed(value)
