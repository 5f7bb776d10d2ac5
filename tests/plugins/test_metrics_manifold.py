"""k-NN precision / recall / density / coverage against a brute-force reference and known cases."""

import math

import pytest
import torch

from benchbench import Evaluation
from benchbench_plugins.datasets.mixtures import Grid, Ring
from benchbench_plugins.metrics.manifold import Manifold, knn_radii2, manifold_scores

RING = Ring(Ring.Config())


def gen(seed):
    return torch.Generator().manual_seed(seed)


def brute_force(real, fake, k_pr, k_dc):
    """The definitions written out on full distance matrices, sorting each row."""
    def radius(x, k):
        d = torch.cdist(x, x)
        return d.sort(dim=1).values[:, k]  # column 0 is the point itself
    d = torch.cdist(real, fake)  # [N, M]
    r_pr, r_dc, r_fake = radius(real, k_pr), radius(real, k_dc), radius(fake, k_pr)
    precision = (d <= r_pr[:, None]).any(0).double().mean()
    recall = (d <= r_fake[None, :]).any(1).double().mean()
    density = (d <= r_dc[:, None]).double().sum() / (k_dc * fake.shape[0])
    coverage = (d <= r_dc[:, None]).any(1).double().mean()
    return {"precision": float(precision), "recall": float(recall), "density": float(density),
            "coverage": float(coverage)}


def test_knn_radii_exclude_the_point_itself():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    r1, r2 = knn_radii2(x, (1, 2))
    torch.testing.assert_close(r1, torch.tensor([1.0, 1.0, 4.0, 16.0], dtype=torch.float64))
    torch.testing.assert_close(r2, torch.tensor([9.0, 4.0, 9.0, 36.0], dtype=torch.float64))


@pytest.mark.parametrize("k_pr, k_dc", [(3, 5), (1, 2)])
def test_scores_match_a_brute_force_reference(k_pr, k_dc):
    real = torch.randn(600, 3, generator=gen(0), dtype=torch.float64)
    fake = torch.randn(450, 3, generator=gen(1), dtype=torch.float64) * 1.3 + 0.4
    assert manifold_scores(real, fake, k_pr, k_dc) == pytest.approx(brute_force(real, fake, k_pr, k_dc), abs=1e-12)


def test_identical_sets_score_one_with_non_strict_membership():
    x = RING.sample(500, gen(0))
    scores = manifold_scores(x, x)
    assert scores["precision"] == scores["recall"] == scores["coverage"] == 1.0
    # each real ball holds its centre and its k = 5 neighbours (no ties): density = (k + 1) / k
    assert scores["density"] == pytest.approx(6 / 5)


def test_duplicated_points_have_zero_radii_but_still_count():
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]).repeat(6, 1)  # 6 copies each
    scores = manifold_scores(points, points)  # every radius is 0: only <= keeps them members
    assert scores["precision"] == scores["recall"] == scores["coverage"] == 1.0


def test_disjoint_sets_score_zero():
    real = torch.randn(300, 2, generator=gen(0))
    scores = manifold_scores(real, torch.randn(300, 2, generator=gen(1)) + 100)
    assert scores == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_fakes_on_half_of_the_modes_have_full_precision_and_half_recall():
    real = RING.sample(2500, gen(0))
    candidates = RING.sample(5000, gen(50))
    mode = torch.round(torch.atan2(candidates[:, 1], candidates[:, 0]) / (2 * math.pi / 8)).long() % 8
    fake = candidates[mode < 4][:2500]
    scores = manifold_scores(real, fake)  # observed: precision 0.97-0.98, recall 0.48-0.50
    assert scores["precision"] > 0.95
    assert scores["recall"] == pytest.approx(0.5, abs=0.05)
    assert scores["coverage"] == pytest.approx(0.5, abs=0.05)


def test_same_distribution_density_near_one_and_coverage_closed_form():
    # Naeem et al.: for identical distributions E[coverage] = 1 - prod_{i=1..k} (N - i) / (N + M - i)
    real, fake = RING.sample(2000, gen(0)), RING.sample(2000, gen(1))
    scores = manifold_scores(real, fake)  # observed density 0.98-1.01, coverage 0.966-0.975
    expected = 1 - math.prod((2000 - i) / (4000 - i) for i in range(1, 6))  # 0.969
    assert scores["coverage"] == pytest.approx(expected, abs=0.02)
    assert scores["density"] == pytest.approx(1.0, abs=0.05)
    assert scores["precision"] > 0.95 and scores["recall"] > 0.95


def test_precision_and_recall_are_not_swapped():
    real = torch.randn(1000, 2, generator=gen(0))
    fake = torch.randn(1000, 2, generator=gen(1)) * 0.2  # fakes all inside the real support
    scores = manifold_scores(real, fake)
    assert scores["precision"] > 0.95 and scores["recall"] < 0.5


@pytest.mark.parametrize("dataset", [RING, Grid(Grid.Config())], ids=["ring", "grid"])
def test_metric_returns_exactly_its_declared_outputs(dataset):
    evaluation = Evaluation(dataset.sample(500, gen(0)), dataset.sample(500, gen(1)), dataset, seed=0)
    metric = Manifold(Manifold.Config())
    assert metric.applies(evaluation)
    values = metric.compute(evaluation)
    assert set(values) == {o.name for o in Manifold.outputs}
    assert all(type(v) is float and 0 <= v for v in values.values())
