"""The search never selects a trial on an estimator failure (a value outside the metric's range)."""

import math

import pytest

from benchbench import default_registry, parse_suite
from benchbench.config.search import SELECTION_SEED_BASE
from benchbench.plan.trials import select

RAW = {
    "name": "search", "seeds": 2, "steps": 5, "datasets": {"ring": {}},
    "objectives": {"gmmn": {"batch_size": 8, "hidden": [8], "search": {"lr": {"loguniform": [1e-4, 1e-2]}}}},
    "metrics": ["kde-divergence"],
    "search": {"trials": 3, "seed": 0, "seeds": 1, "select": {"metric": "jsd"}},
}


def documents(values, notes=None):
    return [{"dataset": "ring", "objective": "gmmn", "seed": SELECTION_SEED_BASE, "cell": f"t{t}",
             "config": {"trial": t}, "scores": {"jsd": v}, "notes": (notes or {}).get(t, {})}
            for t, v in enumerate(values)]


@pytest.mark.parametrize("failed", [math.nan, -0.113, 0.9])
def test_an_estimator_failure_is_never_selected(failed):
    # NaN with a note: as this version records a failure; -0.113 or 0.9 (JSD outside [0, log 2]):
    # as a run directory written before outputs declared ranges holds it
    suite = parse_suite(RAW, default_registry(), source="s.yaml")
    note = {1: {"jsd": "estimator failure: jsd = -0.113 outside [0, 0.693] (metric 'kde-divergence')"}}
    selection = select(suite, default_registry(), documents([0.3, failed, 0.2], note))
    assert selection.chosen["ring", "gmmn"] == 2
    assert math.isnan(selection.trials.set_index("trial").at[1, "value"])


def test_a_value_within_the_tolerance_is_a_score():
    suite = parse_suite(RAW, default_registry(), source="s.yaml")
    selection = select(suite, default_registry(), documents([0.3, -0.005, 0.2]))
    assert selection.chosen["ring", "gmmn"] == 1
