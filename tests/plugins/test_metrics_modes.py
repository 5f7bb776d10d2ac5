"""Mode coverage (VEEGAN / PacGAN protocol) on constructed samples with known answers."""

import math

import pytest
import torch

from benchbench import Dataset, Evaluation
from benchbench_plugins.datasets.mixtures import Grid, Ring
from benchbench_plugins.metrics.modes import ModeCoverage, assign_modes, kl_histogram, mode_statistics

RING = Ring(Ring.Config())  # 8 modes, radius 1, std 0.01
GRID = Grid(Grid.Config())  # 25 modes, std 0.05


def statistics(dataset, x):
    modes = dataset.modes()
    index, distance = assign_modes(x, modes.centers)
    return mode_statistics(index, distance, modes.stds, modes.weights)


def test_assign_modes_returns_nearest_centre_and_distance():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.tensor([[1.0, 1.0], [9.0, 0.5], [0.0, 7.0], [6.0, 0.0]])
    index, distance = assign_modes(x, centers)
    assert index.tolist() == [0, 1, 2, 1]
    torch.testing.assert_close(distance, torch.tensor([math.sqrt(2), math.sqrt(1.25), 3.0, 4.0]))


def test_all_samples_on_one_centre_capture_one_mode_with_kl_log_k():
    x = RING.modes().centers[2].repeat(100, 1)
    stats = statistics(RING, x)
    assert stats == {"modes_captured": 1.0, "high_quality_pct": 100.0, "mode_kl": pytest.approx(math.log(8))}


@pytest.mark.parametrize("dataset", [RING, GRID], ids=["ring", "grid"])
def test_samples_at_every_centre_in_equal_counts_capture_all_with_zero_kl(dataset):
    centers = dataset.modes().centers
    stats = statistics(dataset, centers.repeat(7, 1))
    assert stats == {"modes_captured": float(len(centers)), "high_quality_pct": 100.0,
                     "mode_kl": pytest.approx(0.0, abs=1e-6)}  # float32 weights


def test_high_quality_threshold_is_three_stds_of_the_nearest_component():
    centers, std = RING.modes().centers, 0.01
    outward = centers / centers.norm(dim=1, keepdim=True)  # unit radial direction of each centre
    near, far = centers + 2.9 * std * outward, centers + 4.0 * std * outward
    stats = statistics(RING, torch.cat([near, far]))
    assert stats["modes_captured"] == 8.0
    assert stats["high_quality_pct"] == pytest.approx(50.0)
    only_far = statistics(RING, far)
    assert only_far["modes_captured"] == 0.0 and only_far["high_quality_pct"] == 0.0
    assert only_far["mode_kl"] == pytest.approx(0.0, abs=1e-12)  # KL counts all samples, not only good ones


def test_mode_kl_against_non_uniform_weights():
    counts = torch.tensor([6, 3, 1, 0])
    weights = torch.tensor([0.4, 0.3, 0.2, 0.1])
    h = [0.6, 0.3, 0.1]
    expected = sum(hk * math.log(hk / wk) for hk, wk in zip(h, [0.4, 0.3, 0.2]))  # 0 log 0 = 0
    assert kl_histogram(counts, weights) == pytest.approx(expected, rel=1e-6)  # float32 weights
    index = torch.repeat_interleave(torch.arange(4), counts)
    stats = mode_statistics(index, torch.zeros(10), torch.ones(4), weights)
    assert stats["mode_kl"] == pytest.approx(expected) and stats["modes_captured"] == 3.0


def test_true_samples_capture_every_mode():
    stats = statistics(GRID, GRID.sample(2500, torch.Generator().manual_seed(0)))
    assert stats["modes_captured"] == 25.0
    # within 3 std in 2-D: 1 - exp(-9/2) = 98.9% of a Gaussian's mass
    assert stats["high_quality_pct"] == pytest.approx(100 * (1 - math.exp(-4.5)), abs=0.5)
    assert stats["mode_kl"] < 0.02


@pytest.mark.parametrize("dataset", [RING, GRID], ids=["ring", "grid"])
def test_metric_returns_exactly_its_declared_outputs(dataset):
    fake = dataset.sample(500, torch.Generator().manual_seed(1))
    evaluation = Evaluation(dataset.sample(500, torch.Generator().manual_seed(0)), fake, dataset, seed=0)
    metric = ModeCoverage(ModeCoverage.Config())
    assert metric.applies(evaluation)
    values = metric.compute(evaluation)
    assert set(values) == {o.name for o in ModeCoverage.outputs}
    assert all(type(v) is float for v in values.values())
    assert values["modes_captured"] == len(dataset.modes().centers)


def test_metric_does_not_apply_without_modes():
    class Blob(Dataset):
        name = "blob"
        shape = (2,)

    evaluation = Evaluation(torch.zeros(4, 2), torch.zeros(4, 2), Blob(None), seed=0)
    assert not ModeCoverage(ModeCoverage.Config()).applies(evaluation)
