"""Compute budgets in suites: steps, training FLOPs or seconds per model."""

import pytest
import yaml

from benchbench import ConfigError, default_registry, parse_suite
from benchbench.config.compute import Budget, curve_steps
from benchbench.plan.cells import plan


def parse(raw):
    return parse_suite(raw, default_registry(), source="s.yaml")


@pytest.mark.parametrize("given, unit, amount", [
    ({"steps": 30}, "steps", 30),
    ({"budget": {"steps": 30}}, "steps", 30),
    ({"budget": {"flops": 2.0e11}}, "flops", 2.0e11),
    ({"budget": {"flops": 5}}, "flops", 5.0),
    ({"budget": {"seconds": 1.5}}, "seconds", 1.5),
])
def test_budget_units(tiny, given, unit, amount):
    del tiny["steps"]
    tiny.update(given)
    suite = parse(tiny)
    assert suite.budget == Budget(unit, amount)
    again = parse(yaml.safe_load(yaml.safe_dump(suite.resolved())))  # the resolved suite reads back the same
    assert again.budget == suite.budget and again.resolved() == suite.resolved()


def test_a_step_budget_resolves_to_the_top_level_steps_key_as_before(tiny):
    resolved = parse(tiny).resolved()
    assert resolved["steps"] == 30 and "budget" not in resolved
    flops = parse({k: v for k, v in tiny.items() if k != "steps"} | {"budget": {"flops": 1e9}}).resolved()
    assert flops["budget"] == {"flops": 1e9} and "steps" not in flops


@pytest.mark.parametrize("given, message", [
    ({"budget": {"flops": 1e9}}, "s.yaml: budget: give the budget once: either `budget: {steps | flops | seconds: N}` "
                                 "or the top-level `steps: N`, not both"),
])
def test_budget_and_steps_together_is_one_error(tiny, given, message):
    tiny.update(given)
    with pytest.raises(ConfigError) as info:
        parse(tiny)
    assert str(info.value) == message


@pytest.mark.parametrize("budget, message", [
    ({"gpu_hours": 3}, "s.yaml: budget.gpu_hours: unknown unit; allowed: steps, flops, seconds"),
    ({"flops": 0}, "s.yaml: budget.flops: must be > 0, got 0"),
    ({"flops": -1e9}, "s.yaml: budget.flops: must be > 0, got -1000000000.0"),
    ({"seconds": "soon"}, "s.yaml: budget.seconds: expected a number, got 'soon'"),
    ({"seconds": 1e12}, "s.yaml: budget.seconds: must be <= 864000.0"),
    ({"flops": float("inf")}, "s.yaml: budget.flops: expected a finite number, got inf"),
    ({"flops": 1e30}, "s.yaml: budget.flops: must be <= 1e+21"),
    ({"steps": 0}, "s.yaml: budget.steps: must be >= 1, got 0"),
    ({"steps": 2.5}, "s.yaml: budget.steps: expected a whole number, got 2.5"),
    ({"flops": 1e9, "steps": 3}, "s.yaml: budget: expected one unit and its amount"),
    ({}, "s.yaml: budget: expected one unit and its amount"),
    ([1e9], "s.yaml: budget: expected one unit and its amount"),
])
def test_bad_budgets_are_one_line_naming_the_key(tiny, budget, message):
    del tiny["steps"]
    tiny["budget"] = budget
    with pytest.raises(ConfigError) as info:
        parse(tiny)
    assert str(info.value).startswith(message) and "\n" not in str(info.value), str(info.value)


def test_cli_steps_override_any_budget_with_a_step_budget(tiny):
    del tiny["steps"]
    tiny["budget"] = {"flops": 1e9}
    suite = parse(tiny).with_overrides(steps=7)
    assert suite.budget == Budget("steps", 7) and suite.steps == 7


def test_cell_keys_of_step_budgets_are_unchanged_and_other_budgets_train_new_cells(tiny):
    registry = default_registry()
    steps = plan(parse(tiny), registry)
    same = plan(parse({k: v for k, v in tiny.items() if k != "steps"} | {"budget": {"steps": 30}}), registry)
    flops = plan(parse({k: v for k, v in tiny.items() if k != "steps"} | {"budget": {"flops": 1e9}}), registry)
    assert [c.key for j in steps for c in j.cells] == [c.key for j in same for c in j.cells]
    trained = [c for j in steps for c in j.cells if j.objective]
    assert all(c.config["steps"] == 30 and "budget" not in c.config for c in trained)  # the key as before budgets
    keys = {c.key: c for j in flops for c in j.cells}
    for job in steps:
        for cell in job.cells:
            assert (cell.key in keys) == (job.objective is None)  # the data reference trains nothing: shared
    assert all(c.config["budget"] == {"flops": 1e9} for c in keys.values() if c.objective != "(data)")


def test_curve_points_of_a_flop_budget_fall_at_fractions_of_it():
    assert curve_steps(100, 4) == {25, 50, 75}
    assert curve_steps(7, 2) == {4}  # round(3.5): banker's rounding in Python
    assert curve_steps(3, 10) == {1, 2}  # fewer steps than intervals: each step at most once
    assert curve_steps(100, 0) == set() and curve_steps(100, 1) == set()
