"""The budget schedule: when training stops, when curve points fall, how progress is reported."""

import pytest

from benchbench.config.compute import PROGRESS_UNITS, Budget
from benchbench.train.schedule import BudgetTooSmall, Schedule


class Clock:
    """A stopwatch whose elapsed time the test sets."""

    def __init__(self):
        self.now = 0.0

    def elapsed(self):
        return self.now


def run(schedule, clock=None, tick=0.0, limit=10_000):
    """(steps trained, curve steps, progress reported) of a loop driven like the trainer's."""
    curves, reported = [], 0
    for step in range(1, limit):
        if clock is not None:
            clock.now += tick
        finished = schedule.finished(step)
        if finished or schedule.report_due(step):
            reported += schedule.progress(step, finished)
        if finished:
            return step, curves, reported
        if schedule.curve_due(step):
            curves.append(step)
    raise AssertionError("never finished")


def test_step_budget_as_before():
    steps, curves, reported = run(Schedule(Budget("steps", 250), 100, None, Clock()))
    assert (steps, curves, reported) == (250, [100, 200], 250)
    assert Schedule(Budget("steps", 250), 0, None, Clock()).report_every == 2


def test_flop_budget_trains_the_steps_it_pays_for_and_scores_at_fractions_of_it():
    steps, curves, reported = run(Schedule(Budget("flops", 1000.0), 4, 9.0, Clock()))
    assert steps == 111 and curves == [28, 56, 83] and reported == PROGRESS_UNITS  # floor(1000 / 9)
    assert run(Schedule(Budget("flops", 9.0), 4, 9.0, Clock()))[:2] == (1, [])  # exactly one step


@pytest.mark.parametrize("flops, message", [
    (10.0, "one training step takes 10 FLOPs per model, more than the budget of 9"),
    (None, "a FLOP budget needs the FLOPs of a training step, which were not counted"),
])
def test_flop_budget_too_small_for_one_step(flops, message):
    with pytest.raises(BudgetTooSmall, match=message):
        Schedule(Budget("flops", 9.0), 4, flops, Clock())


def test_seconds_budget_stops_on_the_clock_and_scores_each_fraction_once():
    clock = Clock()
    steps, curves, reported = run(Schedule(Budget("seconds", 1.0), 4, None, clock), clock, tick=0.125)
    assert steps == 8 and reported == PROGRESS_UNITS
    assert curves == [2, 4, 6]  # the steps that reach 0.25, 0.5 and 0.75 s
    clock = Clock()
    steps, curves, _ = run(Schedule(Budget("seconds", 1.0), 4, None, clock), clock, tick=0.625)
    assert steps == 2 and curves == [1]  # a step that passes two fractions scores once
