"""The training recipe through whole runs: an objective with a moving average of its weights is trained once
and scored twice (its row: the average; ``<label>.raw``: the raw weights), every member of a stack with warmup,
a decaying learning rate and clipped gradients as if trained alone."""

import json

import pandas as pd

from benchbench import default_registry, parse_suite, run
from benchbench.plan.cells import REFERENCE

NET = {"batch_size": 16, "hidden": [16]}
RECIPE = {"ema": 0.9, "lr_schedule": "cosine", "warmup": 3, "lr_floor": 0.1, "grad_clip": 0.5, "lr": 0.01}
SUITE = {
    "name": "recipes",
    "seeds": 3,
    "steps": 12,
    "eval": {"samples": 150, "every": 4, "curve_samples": 60, "plot_samples": 10},
    "datasets": {"ring": {}},
    "objectives": {"flow": {**NET, **RECIPE},
                   "vae": {"encoder_hidden": [16], **NET, **RECIPE}},  # two networks, each clipped alone
    "metrics": ["kde-divergence", "modes"],
    "reporters": [],
    "execution": {"workers": 1},
}


def run_counting(raw, path):
    trained = []
    outcome = run(parse_suite(raw, default_registry(), source="s.yaml"), out=path, progress=trained.append)
    return outcome, sum(trained)


# Means over a whole [members, batch] tensor (a loss, the ELBO diagnostic) may round differently in a stack of 3
# than alone, recipe or not; the weights do not: what they sample, and every metric of those samples, is
# bit-identical.
UNSTACKED = {"eval_time_s", "elbo", "model_loss"}


def cells(directory):
    """{(objective, seed, cell file): (samples, curves and scores of the samples)} of a run directory."""
    found = {}
    for path in (directory / "cells").glob("*.json"):
        d = json.loads(path.read_text())
        curves = [c for c in d["curves"] if c[1] not in UNSTACKED]
        scores = {k: v for k, v in d["scores"].items() if k not in UNSTACKED}
        found[d["objective"], d["seed"], path.name] = (path.with_suffix(".npy").read_bytes(), curves, scores)
    return found


def values(records: pd.DataFrame, objective: str) -> pd.Series:
    rows = records[(records["objective"] == objective) & (records["metric"] != "eval_time_s")]
    return rows.set_index(["seed", "metric"])["value"].sort_index()


def test_one_training_scores_the_average_and_the_raw_weights_each_member_as_if_trained_alone(tmp_path):
    stacked, member_steps = run_counting(SUITE, tmp_path / "stacked")
    assert list(dict.fromkeys(stacked.records["objective"])) == [REFERENCE, "flow", "flow.raw", "vae", "vae.raw"]
    assert member_steps == 2 * SUITE["steps"] * SUITE["seeds"]  # each objective trained once, scored twice
    assert not values(stacked.records, "flow").equals(values(stacked.records, "flow.raw"))
    raw_curves = stacked.curves[stacked.curves["objective"] == "vae.raw"]
    assert set(raw_curves["metric"]) == {"model_loss"}  # the shared training's losses

    alone = run(parse_suite({**SUITE, "execution": {"workers": 1, "stack_seeds": False}}, default_registry(),
                            source="s.yaml"), out=tmp_path / "alone")
    assert cells(stacked.directory) == cells(alone.directory)  # both variants, bit for bit

    only_raw = {**SUITE, "objectives": {"flow": {**NET, **RECIPE, "weights": "raw"}}}
    raw, _ = run_counting(only_raw, tmp_path / "raw")
    assert list(dict.fromkeys(raw.records["objective"])) == [REFERENCE, "flow"]  # weights given: one row
    pd.testing.assert_series_equal(values(raw.records, "flow"), values(stacked.records, "flow.raw"))


def test_without_averaging_there_is_one_row_and_the_recipe_changes_training(tmp_path):
    plain = {**SUITE, "seeds": 1, "objectives": {"flow": {**NET, "lr": 0.01}}}
    clipped = {**plain, "objectives": {"flow": {**NET, "lr": 0.01, "grad_clip": 1e-3}}}
    a, b = run_counting(plain, tmp_path / "plain")[0], run_counting(clipped, tmp_path / "clipped")[0]
    assert list(dict.fromkeys(a.records["objective"])) == [REFERENCE, "flow"]
    losses = [r.curves[r.curves["metric"] == "model_loss"]["value"].to_numpy() for r in (a, b)]
    assert (losses[0] != losses[1]).any()


def test_trials_of_a_search_with_per_member_rates_follow_the_schedule_as_if_trained_alone(tmp_path):
    recipe = {"lr_schedule": "linear", "warmup": 4, "ema": 0.9, "grad_clip": 0.5}
    raw = {"name": "search", "seeds": 1, "steps": 10, "datasets": {"ring": {}}, "reporters": [],
           "eval": {"samples": 150, "every": 5, "curve_samples": 60, "plot_samples": 10, "reference": False},
           "objectives": {"gmmn": {**NET, **recipe, "search": {"lr": {"loguniform": [1e-3, 1e-1]}}}},
           "metrics": ["kde-divergence"], "search": {"trials": 3, "seed": 1, "seeds": 1, "select": {"metric": "jsd"}}}
    stacked = run(parse_suite(raw, default_registry(), source="s.yaml"), out=tmp_path / "stacked")
    alone = run(parse_suite({**raw, "execution": {"workers": 1, "max_members": 1}}, default_registry(),
                            source="s.yaml"), out=tmp_path / "alone")
    assert not stacked.failed_jobs and list(dict.fromkeys(stacked.records["objective"])) == ["gmmn"]  # no raw row
    assert cells(stacked.directory) == cells(alone.directory)


def test_the_raw_row_is_added_once_and_the_resolved_suite_reads_back_the_same():
    s = parse_suite({"datasets": ["ring"], "objectives": {"flow": {"ema": 0.99}, "gmmn": {}}}, default_registry())
    assert [(o.label, o.config.weights) for o in s.objectives] == [("flow", "ema"), ("flow.raw", "raw"),
                                                                   ("gmmn", "ema")]
    assert parse_suite(s.resolved(), default_registry()).objectives == s.objectives
    names = parse_suite({"datasets": ["ring"], "objectives": ["flow", "gmmn"]}, default_registry())
    assert [o.label for o in names.objectives] == ["flow", "gmmn"]
