"""The metrics of the synthetic suites on one cell's final evaluation: 2,500 generated against
2,500 held-out samples of the 25-Gaussian grid (suites/mixture.yaml's size), one intra-op thread
(as each of benchbench's worker processes has).

Every metric of a suite runs once per seed and cell, so their cost is part of every run's wall
time (``eval_time_s`` in the throughput table). The generated samples are the data shifted and
blurred: a realistic, imperfect generator, so that no metric takes a shortcut on identical sets.
"""

import pytest
import torch

from benchbench import Evaluation, default_registry, parse_suite
from benchbench.plan.build import build

SAMPLES = 2500
SMOKE_SAMPLES = 200  # plain test runs (--benchmark-disable) only check that each metric works
METRICS = ("modes", "kde-divergence", "log-likelihood", "mmd", "sliced-wasserstein", "energy", "manifold",
           "frechet")


def evaluation(n):
    registry = default_registry()
    suite = parse_suite({"seeds": 1, "datasets": {"grid": {}}, "objectives": {"gmmn": {}}}, registry,
                        source="benchmark")
    dataset = build(registry, suite.datasets[0])
    g = torch.Generator().manual_seed(0)
    real = dataset.heldout(n, g)
    fake = dataset.sample(n, g) * 1.02 + 0.05 * torch.randn(n, 2, generator=g)
    return Evaluation(real, fake, dataset, seed=0)


@pytest.mark.parametrize("name", METRICS)
def test_metric(benchmark, name):
    torch.set_num_threads(1)
    registry = default_registry()
    entry = registry.get("metric", name, "benchmark")
    metric = entry.cls(entry.cls.Config())
    n = SMOKE_SAMPLES if benchmark.disabled else SAMPLES
    benchmark.group = f"metrics on {n} grid samples"
    benchmark.extra_info.update(samples=n, threads=1)
    data = evaluation(n)
    assert metric.applies(data)
    values = benchmark.pedantic(metric.compute, args=(data,), rounds=5, iterations=1, warmup_rounds=1)
    assert set(values) == {o.name for o in metric.outputs}
