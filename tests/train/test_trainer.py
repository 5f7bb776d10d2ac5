import json

import pytest
import torch

from benchbench import hookimpl, registry_with, run
from benchbench_plugins.objectives.gan import NonSaturating


def cells(directory):
    return {(d["dataset"], d["objective"], d["seed"]): d
            for d in (json.loads(p.read_text()) for p in (directory / "cells").glob("*.json"))}


def test_a_cell_is_the_same_alone_or_stacked_and_reruns_skip_it(tiny, tmp_path):
    tiny["metrics"] = []
    tiny["reporters"] = []
    stacked = run(tiny_suite(tiny, seeds=3), out=tmp_path / "stacked")
    tiny["execution"]["stack_seeds"] = False
    alone = run(tiny_suite(tiny, seeds=3), out=tmp_path / "alone")
    a, b = cells(stacked.directory), cells(alone.directory)
    assert set(a) == set(b) and len(a) == 2 * 4 * 3
    for key in a:
        assert a[key]["cell"] == b[key]["cell"]
        untimed = lambda scores: {k: v for k, v in scores.items() if k != "eval_time_s"}  # noqa: E731
        assert a[key]["curves"] == b[key]["curves"] and untimed(a[key]["scores"]) == untimed(b[key]["scores"]), key
    seeds = {k[2]: a[k]["curves"] for k in a if k[:2] == ("ring", "minimax")}
    assert seeds[0] != seeds[1]  # seeds differ from each other

    again = run(tiny_suite(tiny, seeds=3), out=tmp_path / "stacked")
    assert again.skipped_cells == len(a)
    assert again.records.equals(stacked.records)


def tiny_suite(raw, seeds):
    from benchbench import default_registry, parse_suite
    return parse_suite({**raw, "seeds": seeds}, default_registry(), source="tiny")


def test_training_records_curves_and_theory_diagnostics(tiny, tmp_path):
    tiny["metrics"] = ["throughput"]
    tiny["reporters"] = []
    outcome = run(tiny_suite(tiny, seeds=2), out=tmp_path / "r")
    curves = outcome.curves
    minimax = curves[(curves.dataset == "ring") & (curves.objective == "minimax") & (curves.seed == 0)]
    assert sorted(minimax.step.unique()) == [0, 10, 20, 30]
    assert {"generator_loss", "critic_loss", "critic_value", "jsd_lower_bound"} <= set(minimax.metric)
    gmmn = curves[curves.objective == "gmmn"]
    assert "critic_loss" not in set(gmmn.metric) and "generator_loss" in set(gmmn.metric)
    records = outcome.records
    throughput = records[(records.metric == "model_steps_per_s") & (records.objective == "gmmn")]
    assert len(throughput) == 4 and (throughput.value > 0).all()
    summary = outcome.summary.set_index(["dataset", "objective", "metric"])
    assert summary.loc[("ring", "gmmn", "model_steps_per_s"), "n"] == 1  # one stacked job, counted once


class WrongShape(NonSaturating):
    name = "wrong-shape"

    def generator_loss(self, critic, real, fake):
        return super().generator_loss(critic, real, fake).mean()  # a scalar, not one loss per member


def test_a_broken_objective_fails_its_job_named_and_the_others_finish(tiny, tmp_path):
    plugin = type("Plugin", (), {"benchbench_objectives": staticmethod(hookimpl(lambda: [WrongShape]))})
    registry = registry_with([("third-party", plugin)])
    from benchbench import parse_suite
    tiny["objectives"]["wrong-shape"] = {"batch_size": 16, "hidden": [8], "critic_hidden": [8]}
    tiny["metrics"], tiny["reporters"] = [], []
    suite = parse_suite(tiny, registry, source="tiny")
    outcome = run(suite, out=tmp_path / "r", registry=registry)
    assert len(outcome.failed_jobs) == 2
    assert outcome.failed_jobs[0].startswith(
        "ring/wrong-shape (seeds 0, 1): objective 'wrong-shape' of plugin 'third-party': generator_loss returned "
        "shape (); expected one loss per stacked member, shape (2,): reduce each member with .flatten(1).mean(1)")
    assert "in per_member" in outcome.tracebacks[0] and "ComponentError" in outcome.tracebacks[0]  # for --traceback
    assert set(outcome.curves.objective) >= {"minimax", "nonsaturating", "gmmn"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_trains_on_cuda(tiny, tmp_path):
    tiny["device"] = "cuda"
    tiny["reporters"] = []
    outcome = run(tiny_suite(tiny, seeds=2), out=tmp_path / "r")
    assert not outcome.failed_jobs
    assert outcome.records[outcome.records.metric == "peak_memory_mb"].value.gt(0).all()


class FailsFirstCall(NonSaturating):
    """Its first critic loss raises (say, a lazily built buffer): that first call is the FLOP
    counting step, which must then be reported as not counted, the job going on."""

    name = "fails-first-call"
    calls = 0

    def critic_loss(self, critic, real, fake):
        type(self).calls += 1
        if type(self).calls == 1:
            raise RuntimeError("buffer not ready")
        return super().critic_loss(critic, real, fake)


def test_flops_that_cannot_be_counted_are_unavailable_with_the_reason_and_the_job_runs(tiny, tmp_path):
    from benchbench import parse_suite
    plugin = type("Plugin", (), {"benchbench_objectives": staticmethod(hookimpl(lambda: [FailsFirstCall]))})
    registry = registry_with([("third-party", plugin)])
    tiny.update(datasets={"ring": {}}, objectives={"fails-first-call": {"batch_size": 16, "hidden": [8],
                                                                       "critic_hidden": [8]}})
    tiny["metrics"], tiny["reporters"], tiny["steps"] = ["throughput"], [], 3
    outcome = run(parse_suite(tiny, registry, source="tiny"), out=tmp_path / "r", registry=registry)
    assert not outcome.failed_jobs
    rate = outcome.records[(outcome.records.metric == "gflop_per_s") & (outcome.records.objective != "(data)")]
    assert len(rate) == 2 and rate.value.isna().all()
    assert set(rate.note) == {"FLOPs not counted: RuntimeError: buffer not ready"}
    steps = outcome.records[(outcome.records.metric == "model_steps_per_s") & (outcome.records.objective != "(data)")]
    assert (steps.value > 0).all()
