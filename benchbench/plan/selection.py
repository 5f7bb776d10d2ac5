"""Selecting from the planned jobs (:func:`benchbench.plan.cells.plan`): what a resumed run has left
to do (:func:`remaining`) and the jobs of the objectives a check refused (:func:`refuse`). Both
select members and rows of the planned jobs; neither plans again."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .cells import Cell, Job, share


def remaining(jobs: Sequence[Job], done: Callable[[Cell], bool]) -> tuple[list[Job], list[Cell]]:
    """``jobs`` reduced to the members with a row not yet ``done`` (re-runs are idempotent), and the
    rows that were (to be kept as they are). A member trains again when any cell it is saved as (its
    own, a sampler's, a copy, or one of their lower rungs, which only its training scores) is missing."""
    todo, finished = [], []
    for job in jobs:
        members = []
        for i in range(len(job.cells)):
            rows = [row for _, cells in job.scored for row in job.rows(cells[i])]
            found = [row for row in rows if all(done(x) for x in (row, *row.lower))]
            finished += found
            if len(found) < len(rows):
                members.append(i)
        if len(members) == len(job.cells):
            todo.append(job)
        elif members:
            todo.append(job.select(members))
    return todo, finished


def refuse(jobs: Sequence[Job], refused: Mapping[tuple[str, str], Exception]) -> tuple[list[Job], list[tuple[Job, Exception]]]:
    """(the jobs to run, (job, error) of each row of labels refused): ``refused`` maps (dataset label,
    objective label) to why. A job with a refused row is taken apart into its rows and the others
    shared again, so that a sampler whose own settings pass trains in its place."""
    if not refused:
        return list(jobs), []
    kept: list[Job] = []
    failed: list[tuple[Job, Exception]] = []
    for job in jobs:
        parts = job.unshared()
        if not any(_labels(part) in refused for part in parts):
            kept.append(job)
            continue
        failed += [(part, refused[_labels(part)]) for part in parts if _labels(part) in refused]
        kept += share([part for part in parts if _labels(part) not in refused])
    return kept, failed


def _labels(job: Job) -> tuple[str, str] | None:
    return (job.dataset.label, job.objective.label) if job.objective else None
