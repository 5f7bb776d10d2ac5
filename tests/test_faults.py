"""Faults during a run: diverging losses, out of memory, unavailable metric values. Each is
provoked by a small plugin defined here; the sweep must go on and say what happened."""

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


SMALL = {"batch_size": 16, "hidden": [8], "critic_hidden": [8]}


def registry():
    plugin = type("Faulty", (), {
        "benchbench_objectives": staticmethod(hookimpl(lambda: [NaNAfterSixSteps, OutOfMemoryWhenStacked,
                                                                Unstackable])),
        "benchbench_metrics": staticmethod(hookimpl(lambda: [TooFewSamples])),
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
    from benchbench.cells import plan
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
    assert "n/a (n=200 < 10^6)" in (outcome.directory / "summary.md").read_text()


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
