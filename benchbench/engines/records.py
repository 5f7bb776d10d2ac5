"""What a run keeps of each job an engine finishes (:class:`Records`, the ``on_done`` of
:meth:`~benchbench.engines.base.Engine.execute`): every cell the outcome is saved as (the job's own,
its other samplers', the copies of other labels, a ladder's lower rungs), each in its own file of
the run directory, and the failure of a job that raised."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..api.reporter import REFERENCE
from ..plan.cells import Cell, Job
from ..registry.components import Registry
from ..rundir.directory import CellResult, RunDirectory
from ..train import checkpoint, divergence
from ..train.outcome import JobOutcome
from .failures import describe_failure, format_traceback


class Records:
    """The run's record keeping: cells saved, problems and failures noted, phases handed to ``clock``
    (a :class:`benchbench.report.phases.RunClock`). Rows found finished when the run resumed
    (:meth:`keep`) are never written again."""

    def __init__(self, directory: RunDirectory, registry: Registry, clock: Any, problems: Sequence[str] = ()):
        self.directory, self.registry, self.clock = directory, registry, clock
        self.problems: list[str] = list(problems)  # named plugin failures, metric errors, diverged seeds
        self.failed: list[str] = []  # one line per job that raised; its cells are missing
        self.tracebacks: list[str] = []  # of each failed job, as failed
        self.kept: set[str] = set()  # keys of the cells (and their lower rungs) found finished
        self.skipped = 0  # cells found finished

    def keep(self, finished: Sequence[Cell]) -> None:
        """Cells found finished in the run directory (each with its lower rungs): kept as they are."""
        self.kept.update(x.key for cell in finished for x in (cell, *cell.lower))
        self.skipped += len(finished)

    def done(self, job: Job, outcome: JobOutcome | BaseException) -> None:
        """``on_done``: a job's outcome saved, or its failure recorded."""
        if isinstance(outcome, BaseException):
            self.fail(job, outcome)
            return
        self.clock.add_job(outcome.phases, outcome.started)
        self.save(job, outcome)
        checkpoint.discard(job)  # its cells are written (unless the suite keeps the final weights)

    def fail(self, job: Job, error: BaseException) -> None:
        self.failed.append(describe_failure(job, error, self.registry))
        self.tracebacks.append(format_traceback(error))
        self.directory.record_failure(job.dataset.label, job.objective.label if job.objective else REFERENCE,
                                      job.seeds, self.failed[-1])

    def save(self, job: Job, outcome: JobOutcome) -> None:
        """Every scoring of the trained stack (the job's own, its other samplers') as its cells and their
        copies, then each lower rung of a ladder, scored on the way, as that rung's cells."""
        for (_, cells), scored in zip(job.scored, [outcome, *outcome.samplers]):
            self.write(job, cells, scored)
        for rung, scored in enumerate(outcome.rungs):
            self.save(job.at_rung(rung), scored)

    def write(self, job: Job, cells: Sequence[Cell], outcome: JobOutcome) -> None:
        """Member ``i`` of ``outcome`` as ``cells[i]`` and its copies: each row its own file, named by its labels."""
        rows = [[row for row in job.rows(cell) if row.key not in self.kept] for cell in cells]
        labels = dict.fromkeys(f"{row.dataset}/{row.objective}" for group in rows for row in group)
        self.problems.extend(f"{name}: {p}" for name in labels for p in outcome.problems)
        for i, group in enumerate(rows):
            diverged = outcome.diverged[i] if outcome.diverged else None
            for row in group:
                if diverged:
                    self.problems.append(divergence.warning(f"{row.dataset}/{row.objective}", row.seed, diverged))
                result = CellResult(row, job.key, outcome.scores[i], outcome.curves[i], outcome.problems,
                                    outcome.notes[i] if outcome.notes else {}, diverged)
                self.directory.save(result, outcome.samples[i])
