"""Throughput numbers from a hand-made Timing: amortised over the members of a stacked job."""

import math

import pytest
import torch
from benchbench_plugins.datasets.mixtures import Grid, Ring
from benchbench_plugins.metrics.throughput import Throughput, throughput

from benchbench import Evaluation, Timing, Unavailable

TIMING = Timing(device="cpu", members=4, steps=1000, train_seconds=8.0, samples=5000, sample_seconds=0.5,
                peak_memory_bytes=3 * 2**20, memory_kind="process_rss", flops_per_step=2e7, flops_per_sample=3e3, nfe=10)


def test_throughput_is_amortised_over_the_members_of_the_job():
    assert throughput(TIMING) == {
        "train_time_s": 2.0,  # 8 s shared by 4 seeds
        "model_steps_per_s": 500.0,  # 4 models x 1000 steps in 8 s
        "samples_per_s": 40_000.0,  # 4 x 5000 samples in 0.5 s
        "peak_memory_mb": 3.0,  # the whole job, not divided
        "gflop_per_s": 2.5,  # 2e7 FLOPs per step of the stack x 1000 steps in 8 s
        "train_steps": 1000.0,
        "train_flops": 5e9,  # 2e7 FLOPs per step of 4 members x 1000 steps / 4 members
        "flops_per_sample": 3e3,
        "nfe": 10.0,
    }


def test_unknown_memory_is_nan_and_uncounted_flops_are_unavailable_with_the_reason():
    values = throughput(Timing("cuda:0 H100", 1, 10, 1.0, 100, 0.01, None, "cuda_allocated"))
    assert math.isnan(values["peak_memory_mb"]) and values["gflop_per_s"] == Unavailable("FLOPs not counted")
    why = throughput(Timing("cpu", 1, 10, 1.0, 100, 0.01, None, "process_rss", None, "FLOPs not counted: RuntimeError"))
    assert why["gflop_per_s"] == why["train_flops"] == Unavailable("FLOPs not counted: RuntimeError")
    assert why["flops_per_sample"] == Unavailable("FLOPs not counted") and why["nfe"] == 1.0
    assert values["model_steps_per_s"] == pytest.approx(10.0) and values["samples_per_s"] == pytest.approx(10_000.0)


def test_outputs_are_job_scoped_throughput():
    assert {o.scope for o in Throughput.outputs} == {"job"}
    assert {o.group for o in Throughput.outputs} == {"throughput"}
    assert {o.name: o.better for o in Throughput.outputs} == {
        "train_time_s": "lower", "model_steps_per_s": "higher", "samples_per_s": "higher", "peak_memory_mb": "lower",
        "gflop_per_s": "higher", "train_steps": "none", "train_flops": "none", "flops_per_sample": "lower", "nfe": "none"}


@pytest.mark.parametrize("dataset", [Ring(Ring.Config()), Grid(Grid.Config())], ids=["ring", "grid"])
def test_metric_applies_only_with_timing(dataset):
    x = dataset.sample(100, torch.Generator().manual_seed(0))
    metric = Throughput(Throughput.Config())
    assert not metric.applies(Evaluation(x, x, dataset, seed=0))
    evaluation = Evaluation(x, x, dataset, seed=0, timing=TIMING)
    assert metric.applies(evaluation)
    values = metric.compute(evaluation)
    assert set(values) == {o.name for o in Throughput.outputs}
    assert all(type(v) is float for v in values.values())  # FLOPs counted: a number
