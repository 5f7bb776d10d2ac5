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


def rung_steps(schedule, clock=None, tick=0.0):
    """(rung, step) of each lower rung of a ladder the loop reaches, and the steps trained."""
    reached = []
    for step in range(1, 10_000):
        if clock is not None:
            clock.now += tick
        reached += [(rung, step) for rung in schedule.rungs_due(step)]
        if schedule.finished(step):
            return reached, step
    raise AssertionError("never finished")


@pytest.mark.parametrize("budget, flops, expected, steps", [
    (Budget("steps", 40, (10, 20, 40)), None, [(0, 10), (1, 20)], 40),
    (Budget("flops", 100.0, (20.0, 45.0, 100.0)), 9.0, [(0, 2), (1, 5)], 11),  # floor(F / f) for each rung
    (Budget("flops", 100.0, (9.5, 9.9, 100.0)), 9.0, [(0, 1), (1, 1)], 11),  # two rungs at one step: both scored
])
def test_a_ladder_reaches_each_lower_rung_once_on_the_way_to_the_top(budget, flops, expected, steps):
    assert rung_steps(Schedule(budget, 0, flops, Clock())) == (expected, steps)


def test_a_seconds_ladder_reaches_its_rungs_on_the_training_clock():
    clock = Clock()
    assert rung_steps(Schedule(Budget("seconds", 1.0, (0.25, 0.5, 1.0)), 0, None, clock), clock, 0.125) == \
        ([(0, 2), (1, 4)], 8)


def test_a_flop_rung_below_one_step_fails_the_job_naming_the_rung():
    with pytest.raises(BudgetTooSmall, match="rung 0: one training step takes 9 FLOPs per model, more than the rung's 5"):
        Schedule(Budget("flops", 100.0, (5.0, 100.0)), 0, 9.0, Clock())
