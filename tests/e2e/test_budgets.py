"""Runs under a FLOP budget: every objective trains until it has spent it, curves at fractions of
it, the search's trials each under it; a budget below one step is refused before training."""

import copy
import json
import math

import torch
from clirun import invoke

from benchbench import default_registry, parse_suite, run
from benchbench.plan.build import build
from benchbench.train.step_cost import member_step_cost

FLOPS = 6.0e6
SUITE = {
    "name": "flops", "seeds": 2, "budget": {"flops": FLOPS},
    "eval": {"samples": 200, "every": 4, "curve_samples": 100, "plot_samples": 0},
    "datasets": {"ring": {}},
    "objectives": {
        "k3": {"type": "nonsaturating", "critic_steps": 3, "batch_size": 32, "hidden": [16], "critic_hidden": [16]},
        "k1": {"type": "nonsaturating", "batch_size": 32, "hidden": [16], "critic_hidden": [16]},
    },
    "metrics": ["modes", "throughput"], "reporters": [], "execution": {"workers": 1},
}


def member_flops(suite, label):
    """FLOPs of one member-step of objective ``label``, counted as preflight counts them."""
    spec = next(o for o in suite.objectives if o.label == label)
    data = build(default_registry(), suite.datasets[0])
    return member_step_cost(default_registry(), spec, data, torch.device("cpu"), suite.execution, "flops")


def test_every_objective_spends_the_flop_budget_and_is_scored_at_fractions_of_it(tmp_path):
    suite = parse_suite(copy.deepcopy(SUITE), default_registry(), source="s.yaml")
    outcome = run(suite, out=tmp_path / "r")
    assert not outcome.failed_jobs, outcome.failed_jobs
    curves = outcome.curves[outcome.curves.metric == "modes_captured"]
    trained = {}
    for label in ("k1", "k3"):
        steps = math.floor(FLOPS / member_flops(suite, label))
        points = sorted(set(curves[curves.objective == label].step))
        assert points == [0, *sorted({round(steps * j / 4) for j in (1, 2, 3)}), steps]
        trained[label] = steps
        spent = outcome.records[(outcome.records.objective == label) & (outcome.records.metric == "train_flops")]
        assert len(spent) == 2 and ((spent.value <= FLOPS) & (spent.value > FLOPS - member_flops(suite, label))).all()
    assert trained["k3"] < trained["k1"] / 1.5  # the objective whose step costs more takes fewer steps


def test_a_flop_budget_below_one_step_is_one_line_and_nothing_trains(write_suite, tmp_path, capsys):
    raw = copy.deepcopy(SUITE)  # (written with sorted keys: k1 is checked first)
    raw["budget"] = {"flops": 1000}
    code, _, err, = invoke(["run", str(write_suite(raw)), "--results", str(tmp_path / "results"), "-q"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and "tiny.yaml: budget.flops: objective 'k1' on 'ring': one training step takes "\
        in err and "more than the budget of 1e+03; raise it to at least" in err, err
    assert not (tmp_path / "results").exists()


def test_search_trials_each_train_under_the_flop_budget(tmp_path):
    raw = copy.deepcopy(SUITE)
    raw["objectives"] = {"k1": {**raw["objectives"]["k1"], "search": {"critic_steps": [1, 3]}}}
    raw["search"] = {"trials": 3, "seeds": 1, "select": {"metric": "modes_captured"}}
    outcome = run(parse_suite(raw, default_registry(), source="s.yaml"), out=tmp_path / "r")
    assert not outcome.failed_jobs
    cells = [json.loads(p.read_text()) for p in (tmp_path / "r" / "cells").glob("*.json")]
    trials = [c for c in cells if "trial" in c["config"]]
    assert len(trials) == 3 and all(c["config"]["budget"] == {"flops": FLOPS} for c in trials)
    last = {c["config"]["trial"]: max(step for step, *_ in c["curves"]) for c in trials}
    assert last[0] == last[1] > last[2] > 0  # trials 0 and 1 take k = 1, trial 2 k = 3: fewer steps, same FLOPs


def test_a_seconds_budget_trains_each_stack_for_that_long(tmp_path):
    raw = copy.deepcopy(SUITE)
    raw.update(budget={"seconds": 0.3}, seeds=2, datasets={"ring": {}}, objectives={"k1": SUITE["objectives"]["k1"]})
    outcome = run(parse_suite(raw, default_registry(), source="s.yaml"), out=tmp_path / "r")
    time = outcome.records[outcome.records.metric == "train_time_s"].value  # the stack's clock / members
    assert len(time) == 2 and (time * 2 >= 0.3).all() and (time * 2 < 3).all()
