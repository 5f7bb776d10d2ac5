"""Statistics of equal samples computed once (plugins/metrics/memo.py), bit for bit what a fresh
computation gives."""

import torch

from benchbench import Evaluation, default_registry
from benchbench_plugins.metrics import memo


def test_equal_values_reuse_the_result_and_any_change_recomputes():
    calls = []

    def compute(x):
        calls.append(1)
        return x.sum()

    x = torch.arange(6.0).reshape(3, 2)
    assert memo.memoised("sum", (x,), lambda: compute(x)) == 15
    assert memo.memoised("sum", (x.clone(),), lambda: compute(x)) == 15 and len(calls) == 1  # a copy: reused
    assert memo.memoised("other", (x,), lambda: compute(x)) == 15 and len(calls) == 2  # another statistic
    y = x.clone()
    y[0, 0] = 1e-30
    memo.memoised("sum", (y,), lambda: compute(y))
    memo.memoised("sum", (x.double(),), lambda: compute(x))  # another dtype
    memo.memoised("sum", (x.reshape(2, 3),), lambda: compute(x))  # another shape
    assert len(calls) == 5


def test_only_the_last_entries_are_kept():
    for i in range(memo.ENTRIES + 1):
        memo.memoised("i", (torch.tensor([float(i)]),), lambda: i)
    assert memo.memoised("i", (torch.tensor([0.0]),), lambda: "recomputed") == "recomputed"
    assert memo.memoised("i", (torch.tensor([float(memo.ENTRIES)]),), lambda: "recomputed") == memo.ENTRIES


def test_tensors_beyond_the_byte_limit_push_out_the_oldest(monkeypatch):
    monkeypatch.setattr(memo, "MAX_BYTES", 1000)
    memo.memoised("a", (torch.zeros(1),), lambda: torch.zeros(100))  # 400 bytes
    memo.memoised("b", (torch.zeros(1),), lambda: [torch.zeros(100), torch.zeros(100)])  # 800: "a" goes
    assert memo.memoised("a", (torch.zeros(1),), lambda: "recomputed") == "recomputed"


def test_metrics_score_a_cell_the_same_with_the_held_out_statistics_reused():
    """The held-out data's statistics kept from scoring one generator give, for another generator,
    exactly the values computed from nothing."""
    registry = default_registry()
    dataset = registry.get("dataset", "ring", "test").cls(registry.get("dataset", "ring", "test").cls.Config())
    g = torch.Generator().manual_seed(0)
    real = dataset.sample(300, g)
    fakes = [dataset.sample(300, g) * 1.1, dataset.sample(300, g) + 0.1]
    names = ("mmd", "manifold", "energy", "sliced-wasserstein", "kde-divergence")
    metrics = [registry.get("metric", name, "test").cls(registry.get("metric", name, "test").cls.Config())
               for name in names]

    def scores(fake):
        evaluation = Evaluation(real.clone(), fake, dataset, seed=3)
        return [metric.compute(evaluation) for metric in metrics]

    scores(fakes[0])
    assert len(memo._RESULTS) >= len(names)  # the held-out statistics kept
    reused = scores(fakes[1])
    memo.clear()
    assert reused == scores(fakes[1])  # exact equality
