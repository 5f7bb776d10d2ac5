"""Budget ladders in suites: a list of budgets in one unit, or a top budget with log-spaced rungs."""

import pytest
import yaml

from benchbench import ConfigError, default_registry, parse_suite
from benchbench.config.compute import Budget


def parse(raw):
    return parse_suite(raw, default_registry(), source="s.yaml")


def with_budget(tiny, budget):
    del tiny["steps"]
    tiny["budget"] = budget
    return tiny


@pytest.mark.parametrize("budget, unit, rungs, retrain", [
    ({"flops": [1e9, 3e9, 1e10]}, "flops", (1e9, 3e9, 1e10), False),
    ({"steps": [10, 20, 40], "retrain": True}, "steps", (10, 20, 40), True),
    ({"seconds": [0.5, 1.0]}, "seconds", (0.5, 1.0), False),
    ({"flops": 1e12, "rungs": 5}, "flops", (1e10, 3.162e10, 1e11, 3.162e11, 1e12), False),  # half a decade apart
    ({"flops": 1e12, "rungs": 3, "lowest": 1e8}, "flops", (1e8, 1e10, 1e12), False),
    ({"steps": 1000, "rungs": 4, "lowest": 10}, "steps", (10, 46, 215, 1000), False),
])
def test_ladders_parse_and_read_back_the_same(tiny, budget, unit, rungs, retrain):
    suite = parse(with_budget(tiny, budget))
    assert suite.budget.unit == unit and suite.budget.retrain is retrain
    assert suite.budget.ladder == pytest.approx(rungs) and suite.budget.amount == rungs[-1]
    assert suite.budget.at(0) == Budget(unit, suite.budget.ladder[0])
    again = parse(yaml.safe_load(yaml.safe_dump(suite.resolved())))  # the resolved suite reads back the same
    assert again.budget == suite.budget and again.resolved() == suite.resolved()


def test_a_one_rung_list_is_a_single_budget(tiny):
    assert parse(with_budget(tiny, {"flops": [1e9]})).budget == Budget("flops", 1e9)


@pytest.mark.parametrize("budget, message", [
    ({"flops": []}, "s.yaml: budget.flops: an empty ladder"),
    ({"flops": [1e9, 1e9]}, "s.yaml: budget.flops[1]: a ladder's rungs must increase: 1e+09 follows 1e+09"),
    ({"steps": [20, 10]}, "s.yaml: budget.steps[1]: a ladder's rungs must increase: 10 follows 20"),
    ({"flops": [1e9, 3e9], "steps": [10, 30]}, "s.yaml: budget: expected one unit and its amount"),
    ({"flops": [1e9, "lots"]}, "s.yaml: budget.flops[1]: expected a number, got 'lots'"),
    ({"steps": [0, 10]}, "s.yaml: budget.steps[0]: must be >= 1, got 0"),
    ({"flops": [1e9, 3e9], "rungs": 3}, "s.yaml: budget.rungs: give either a list of rungs"),
    ({"flops": 1e9, "rungs": 1}, "s.yaml: budget.rungs: must be >= 2, got 1"),
    ({"flops": 1e9, "rungs": 3, "lowest": 1e10}, "s.yaml: budget.lowest: must be below the top budget"),
    ({"steps": 4, "rungs": 5, "lowest": 1}, "s.yaml: budget.rungs: 5 rungs up to 4 steps would repeat a step count"),
    ({"flops": 1e9, "retrain": True}, "s.yaml: budget.retrain: retrains the rungs of a ladder"),
    ({"flops": [1e9, 3e9], "retrain": "yes"}, "s.yaml: budget.retrain: expected"),
    ({"flops": [1e9, 3e9], "spacing": 2}, "s.yaml: budget.spacing: unknown unit; allowed: steps, flops, seconds"),
])
def test_bad_ladders_are_one_line_naming_the_key(tiny, budget, message):
    with pytest.raises(ConfigError) as info:
        parse(with_budget(tiny, budget))
    assert str(info.value).startswith(message) and "\n" not in str(info.value), str(info.value)


def test_a_search_selects_on_the_top_rung_unless_it_names_another(tiny):
    from benchbench.plan.trials import trial_suite
    tiny = with_budget(tiny, {"steps": [10, 20, 40]})
    tiny["search"] = {"trials": 2, "select": {"metric": "modes_captured"}}
    tiny["datasets"] = {"ring": {}}
    assert trial_suite(parse(tiny), default_registry()).budget == Budget("steps", 40)
    tiny["search"]["select"]["rung"] = 1
    suite = parse(tiny)
    assert trial_suite(suite, default_registry()).budget == Budget("steps", 20)
    assert parse(yaml.safe_load(yaml.safe_dump(suite.resolved()))).search.rung == 1
    tiny["search"]["select"]["rung"] = 3
    with pytest.raises(ConfigError, match=r"^s.yaml: search.select.rung: must be <= 2, got 3$"):
        parse(tiny)
