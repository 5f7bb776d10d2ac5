"""Selecting from the planned jobs (:func:`benchbench.plan.cells.plan`): what a resumed run has left
to do (:func:`remaining`), members and rows of the planned jobs; nothing plans again."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .cells import Cell, Job


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
