"""Settings that only change sampling (``param(..., sampling=True)``) stay out of training: objectives
that differ only in them train one stack, scored under each sampler, and each row equals the row
the same objective gets when it trains alone."""

import pandas as pd

from benchbench import default_registry, parse_suite, run
from benchbench.plan.cells import REFERENCE

NET = {"batch_size": 16, "hidden": [16]}
SAMPLERS = {
    "name": "samplers",
    "seeds": 2,
    "steps": 8,
    "eval": {"samples": 150, "every": 4, "curve_samples": 60, "plot_samples": 10},
    "datasets": {"ring": {}},
    "objectives": {"euler-4": {"type": "flow", "sampling_steps": 4, **NET},
                   "midpoint-2": {"type": "flow", "solver": "midpoint", "sampling_steps": 2, **NET},
                   "euler-16": {"type": "flow", "sampling_steps": 16, **NET}},
    "metrics": ["kde-divergence", "modes", "throughput"],
    "reporters": [],
    "execution": {"workers": 1},
}
TIMED = {"train_time_s", "eval_time_s", "model_steps_per_s", "samples_per_s", "gflop_per_s", "peak_memory_mb"}


def run_counting(raw, path):
    trained = []
    outcome = run(parse_suite(raw, default_registry(), source="s.yaml"), out=path, progress=trained.append)
    return outcome, sum(trained)


def values(records: pd.DataFrame, objective: str) -> pd.Series:
    rows = records[(records["objective"] == objective) & ~records["metric"].isin(TIMED)]
    return rows.set_index(["seed", "metric"])["value"].sort_index()


def test_samplers_of_one_trained_stack_train_once_and_score_as_if_trained_alone(tmp_path):
    outcome, member_steps = run_counting(SAMPLERS, tmp_path / "all")
    assert member_steps == SAMPLERS["steps"] * SAMPLERS["seeds"]  # one stack trained, not three
    records = outcome.records
    assert list(dict.fromkeys(records["objective"])) == [REFERENCE, "euler-4", "midpoint-2", "euler-16"]
    nfe = records[records["metric"] == "nfe"].groupby("objective")["value"].first()
    assert nfe.to_dict() == {"euler-4": 4, "midpoint-2": 4, "euler-16": 16}
    train_time = records[records["metric"] == "train_time_s"].groupby("objective")["value"].nunique()
    assert set(train_time) == {1} and records[records["metric"] == "train_time_s"]["value"].nunique() == 1
    assert not values(records, "euler-16").equals(values(records, "euler-4"))  # another sampler, other scores
    curves = outcome.curves[outcome.curves["objective"] == "euler-16"]
    assert set(curves["metric"]) == {"model_loss"}  # the shared training's losses; metric curves are the first's

    alone = {**SAMPLERS, "objectives": {"euler-16": SAMPLERS["objectives"]["euler-16"]}}
    single, _ = run_counting(alone, tmp_path / "alone")
    pd.testing.assert_series_equal(values(records, "euler-16"), values(single.records, "euler-16"))
