"""Faults during a run: diverging losses, out of memory, unavailable metric values. Each is
provoked by a small plugin defined here; the sweep must go on and say what happened."""

import json
import math

import torch

from benchbench import Metric, Output, Unavailable, hookimpl, parse_suite, registry_with, run
from benchbench_plugins.objectives.gan import NonSaturating


class NaNAfterSixSteps(NonSaturating):
    """The last member's generator loss becomes NaN from the 6th training step on."""

    name = "nan-after-six"

    def __init__(self, config, data):
        super().__init__(config, data)
        self.calls = 0

    def generator_loss(self, critic, real, fake):
        loss = super().generator_loss(critic, real, fake)
        self.calls += 1  # the first call is the FLOP count on a scratch copy, then one per step
        if self.calls > 6:
            loss = torch.cat([loss[:-1], loss[-1:] * math.nan])
        return loss


class OutOfMemoryWhenStacked(NonSaturating):
    """Runs out of memory whenever more than one member is stacked."""

    name = "oom-when-stacked"

    def generator_loss(self, critic, real, fake):
        if real.shape[0] > 1:
            raise torch.OutOfMemoryError("simulated: CUDA out of memory")
        return super().generator_loss(critic, real, fake)


class Unstackable(NonSaturating):
    name = "unstackable"
    stackable = False


class TooFewSamples(Metric):
    name = "too-few"
    outputs = (Output("needs_many", "quality", "higher", "a metric that needs 10^6 samples"),)

    def compute(self, evaluation):
        return {"needs_many": Unavailable(f"n={len(evaluation.fake)} < 10^6")}


class ReturnsNaN(Metric):
    name = "returns-nan"
    outputs = (Output("nan_value", "quality", "higher", "a metric whose value is NaN"),)

    def compute(self, evaluation):
        return {"nan_value": math.nan}


SMALL = {"batch_size": 16, "hidden": [8], "critic_hidden": [8]}


def registry():
    plugin = type("Faulty", (), {
        "benchbench_objectives": staticmethod(hookimpl(lambda: [NaNAfterSixSteps, OutOfMemoryWhenStacked,
                                                                Unstackable])),
        "benchbench_metrics": staticmethod(hookimpl(lambda: [TooFewSamples, ReturnsNaN])),
    })
    return registry_with([("faulty", plugin)])


def suite(tiny, objectives, **extra):
    reg = registry()
    raw = {**tiny, "datasets": {"ring": {}}, "objectives": objectives, "reporters": ["markdown"], **extra}
    return parse_suite(raw, reg, source="tiny"), reg


def test_a_diverged_seed_is_recorded_with_its_step_and_loss_and_the_sweep_goes_on(tiny, tmp_path):
    tiny["metrics"] = ["modes"]
    s, reg = suite(tiny, {"nan-after-six": SMALL, "nonsaturating": SMALL})
    outcome = run(s, out=tmp_path / "r", registry=reg)
    assert not outcome.failed_jobs
    records = outcome.records.set_index(["objective", "seed", "metric"])["value"]
    assert records[("nan-after-six", 1, "diverged")] == 1 and records[("nan-after-six", 0, "diverged")] == 0
    assert ("nan-after-six", 1, "modes_captured") not in records.index  # its metrics are missing
    assert ("nan-after-six", 0, "modes_captured") in records.index  # the other seed of the stack is scored
    assert any("seed 1: diverged at step 6 (generator_loss" in p for p in outcome.problems)
    summary = outcome.summary.set_index(["objective", "metric"])
    assert summary.loc[("nan-after-six", "diverged"), "mean"] == 1  # a count over seeds
    assert summary.loc[("nonsaturating", "diverged"), "mean"] == 0
    assert "stability" in (outcome.directory / "summary.md").read_text()


def test_out_of_memory_retries_with_smaller_stacks(tiny, tmp_path):
    tiny["metrics"] = []
    s, reg = suite(tiny, {"oom-when-stacked": SMALL}, seeds=3)
    outcome = run(s, out=tmp_path / "r", registry=reg)
    assert not outcome.failed_jobs
    assert sorted(outcome.records[outcome.records.metric == "diverged"].seed) == [0, 1, 2]
    assert any("out of memory with 3 stacked members" in p for p in outcome.problems)


def test_an_unstackable_objective_trains_one_seed_at_a_time_and_max_members_splits(tiny):
    from benchbench.plan.cells import plan
    s, reg = suite(tiny, {"unstackable": SMALL, "nonsaturating": SMALL}, seeds=3,
                   execution={"workers": 1, "max_members": 2})
    sizes = [(j.objective.label, len(j.cells)) for j in plan(s, reg) if j.objective]
    assert sizes == [("unstackable", 1)] * 3 + [("nonsaturating", 2), ("nonsaturating", 1)]


def test_an_unavailable_value_shows_its_reason_in_the_tables(tiny, tmp_path):
    tiny["metrics"] = ["too-few"]
    s, reg = suite(tiny, {"nonsaturating": SMALL})
    outcome = run(s, out=tmp_path / "r", registry=reg)
    row = outcome.summary.set_index(["objective", "metric"]).loc[("nonsaturating", "needs_many")]
    assert math.isnan(row["mean"]) and row["note"] == "n=200 < 10^6"
    assert "n/a (n=200 &lt; 10^6)" in (outcome.directory / "summary.md").read_text()  # markdown escapes HTML


def test_bf16_trains_and_compile_is_ignored_on_the_cpu_with_a_note(tiny, tmp_path):
    tiny["metrics"] = ["modes"]
    s, reg = suite(tiny, {"nonsaturating": SMALL}, execution={"workers": 1, "precision": "bf16", "compile": True})
    outcome = run(s, out=tmp_path / "r", registry=reg)
    assert not outcome.failed_jobs
    assert outcome.records[outcome.records.metric == "modes_captured"].value.notna().all()
    assert any("execution.compile is ignored on cpu" in p for p in outcome.problems)


def test_user_errors_survive_the_trip_back_from_a_worker_process():
    import pickle

    from benchbench import ConfigError, PluginError
    for error in (ConfigError("suites/x.yaml: datasets.mnist", "files missing"), PluginError("gan", "bad shape")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error)


def test_samples_that_run_away_mark_the_seed_diverged_with_the_step(tiny, tmp_path):
    """GMMN with lr 1e9 keeps a finite loss while its samples fly off (near 1e30): diverged all the same."""
    tiny.update(metrics=["modes", "energy"], steps=40)
    s, reg = suite(tiny, {"gmmn": {"lr": 1e9, "batch_size": 16, "hidden": [8]}, "nonsaturating": SMALL})
    outcome = run(s, out=tmp_path / "r", registry=reg)
    records = outcome.records.set_index(["objective", "seed", "metric"])["value"]
    assert records[("gmmn", 0, "diverged")] == 1 and records[("gmmn", 1, "diverged")] == 1
    assert records[("nonsaturating", 0, "diverged")] == 0
    assert ("gmmn", 0, "energy_distance2") not in records.index  # no 1e60 in the tables
    assert any("ring/gmmn seed 0: diverged at step 10 (its samples became NaN or infinite, or left 1000x" in p
               for p in outcome.problems), outcome.problems
    document = json.loads(next((tmp_path / "r" / "cells").glob("*.json")).read_text())  # any cell reads back
    assert document["diverged"] in (None, {"step": 10, "loss": "samples"})


def test_a_metric_that_returns_nan_is_a_note_not_a_missing_row(tiny, tmp_path):
    tiny["metrics"] = ["returns-nan"]
    s, reg = suite(tiny, {"nonsaturating": SMALL})
    outcome = run(s, out=tmp_path / "r", registry=reg)
    rows = outcome.records[outcome.records.metric == "nan_value"]
    assert len(rows) == 4 and (rows.note == "metric 'returns-nan' returned nan").all()  # (data) and the objective
    row = outcome.summary.set_index(["objective", "metric"]).loc[("nonsaturating", "nan_value")]
    assert math.isnan(row["mean"]) and row["note"] == "metric 'returns-nan' returned nan"


def test_fewer_held_out_samples_than_eval_samples_is_recorded(tiny, tmp_path):
    """The digits' test split holds 360 images: eval.samples 400 is scored on those, and said so."""
    tiny.update(metrics=[], steps=2, seeds=1)
    tiny["eval"].update(samples=400, every=0)
    raw = {**tiny, "datasets": {"digits": {}}, "objectives": {"gmmn": {"batch_size": 8, "hidden": [8]}},
           "reporters": []}
    reg = registry()
    outcome = run(parse_suite(raw, reg, source="tiny"), out=tmp_path / "r", registry=reg)
    note = "eval.samples is 400 but digits has 360 held-out samples: the metrics compare 400 generated samples"
    assert sum(note in p for p in outcome.problems) == 2, outcome.problems  # one per job: (data) and gmmn
    cells = [json.loads(c.read_text()) for c in (tmp_path / "r" / "cells").glob("*.json")]
    assert all(any(note in p for p in c["problems"]) for c in cells)  # kept with the results
