"""When a job stops training, records a curve point and reports progress, under the suite's budget
(:mod:`benchbench.config.compute`): a number of steps, of training FLOPs per model, or of seconds.

- steps: ``steps`` steps; a curve point every ``eval.every`` steps (as before budgets had units).
- flops: floor(F / f) steps, f the FLOPs of one member-step (counted once at job start); a curve
  point at every 1/``every`` of them, so every objective is scored at the same FLOPs.
- seconds: until the stack's training clock (evaluation excluded) reaches S; a curve point each
  time it passes another 1/``every`` of S.

On a budget ladder (a job that trains to the top rung), :meth:`Schedule.rungs_due` says when the
training reaches each lower rung: at its step count (steps; floor(F / f) for FLOPs) or when the
training clock passes its seconds.

Progress is reported in steps for a step budget, else in :data:`PROGRESS_UNITS` per model (the
units the run's progress bar counts, :attr:`benchbench.config.suite.Suite.steps`).
"""

from __future__ import annotations

import math

from ..config.compute import PROGRESS_UNITS, Budget, curve_steps
from .timing import Stopwatch


class BudgetTooSmall(ValueError):
    """The budget does not pay for one training step (the message says how much one costs)."""


class Schedule:
    def __init__(self, budget: Budget, every: int, flops_per_member_step: float | None, clock: Stopwatch):
        self.budget, self.every, self.clock = budget, every, clock
        if budget.unit == "flops":
            if not flops_per_member_step:
                raise BudgetTooSmall("a FLOP budget needs the FLOPs of a training step, which were not counted")
            self.steps: int | None = math.floor(budget.amount / flops_per_member_step)
            if self.steps < 1:
                raise BudgetTooSmall(f"one training step takes {flops_per_member_step:.3g} FLOPs per model, more "
                                     f"than the budget of {budget.amount:.3g}")
            self.curves = curve_steps(self.steps, every)
        else:
            self.steps = budget.steps  # None for seconds
        self.lower = budget.rungs[:-1]  # the lower rungs of a ladder, scored on the way to the top
        self.rung_steps = self.lower_rung_steps(flops_per_member_step)  # None for seconds
        self.next_rung = 0
        self.report_every = max(1, self.steps // 100) if self.steps else 1
        self.next_curve = 1  # seconds: the next curve point falls at next_curve / every of the budget
        self.reported = 0  # progress units reported so far (per model)

    def lower_rung_steps(self, flops_per_member_step: float | None) -> list[int] | None:
        if self.budget.unit == "steps":
            return [int(a) for a in self.lower]
        if self.budget.unit == "seconds":
            return None
        steps = [math.floor(a / flops_per_member_step) for a in self.lower]
        for i, (amount, n) in enumerate(zip(self.lower, steps)):
            if n < 1:
                raise BudgetTooSmall(f"rung {i}: one training step takes {flops_per_member_step:.3g} FLOPs per model, "
                                     f"more than the rung's {amount:.3g}")
        return steps

    def rungs_due(self, step: int) -> list[int]:
        """The lower rungs the training reaches after ``step`` (each once, in order)."""
        due = []
        while self.next_rung < len(self.lower) and self._reached(self.next_rung, step):
            due.append(self.next_rung)
            self.next_rung += 1
        return due

    def rungs_left(self) -> list[int]:
        """The lower rungs not reached (a training stopped early: every member diverged)."""
        left = list(range(self.next_rung, len(self.lower)))
        self.next_rung = len(self.lower)
        return left

    def _reached(self, rung: int, step: int) -> bool:
        if self.rung_steps is not None:
            return step >= self.rung_steps[rung]
        return self.clock.elapsed() >= self.lower[rung]

    def finished(self, step: int) -> bool:
        """Whether the budget is spent after ``step`` steps."""
        if self.steps is not None:
            return step >= self.steps
        return self.clock.elapsed() >= self.budget.amount

    def curve_due(self, step: int) -> bool:
        """Whether a curve point falls after ``step`` (never after the last step: that one is always scored)."""
        if self.budget.unit == "steps":
            return bool(self.every) and step % self.every == 0 and step != self.steps
        if self.budget.unit == "flops":
            return step in self.curves
        if not self.every or self.next_curve >= self.every:
            return False
        reached = math.floor(self.every * self.clock.elapsed() / self.budget.amount)
        if reached < self.next_curve:
            return False
        self.next_curve = reached + 1
        return True

    def progress(self, step: int, finished: bool) -> int:
        """Progress units per model to report after ``step`` (0: nothing to report yet)."""
        if self.budget.unit == "steps":
            done = step
        elif finished:
            done = PROGRESS_UNITS
        elif self.steps is not None:
            done = PROGRESS_UNITS * step // self.steps
        else:
            done = min(PROGRESS_UNITS - 1, math.floor(PROGRESS_UNITS * self.clock.elapsed() / self.budget.amount))
        new, self.reported = done - self.reported, max(done, self.reported)
        return max(new, 0)

    def report_due(self, step: int) -> bool:
        """Whether to report progress (and look for a stack whose members all diverged) after ``step``."""
        return step % self.report_every == 0
