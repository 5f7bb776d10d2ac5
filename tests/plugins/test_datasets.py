import math

import torch
from scipy import stats

from benchbench_plugins.datasets.mixtures import Gaussian1d, Grid, Mixture1d, Ring


def test_ring_has_eight_distinct_equally_spaced_modes():
    ring = Ring(Ring.Config())
    centers = ring.modes().centers
    assert len(torch.unique(centers.round(decimals=4), dim=0)) == 8  # not linspace(0, 2 pi, 8)
    assert torch.allclose(centers.norm(dim=1), torch.ones(8))
    assert torch.allclose(centers[1], torch.tensor([math.cos(math.pi / 4), math.sin(math.pi / 4)]))


def test_grid_centres():
    grid = Grid(Grid.Config())
    values = sorted(set(grid.modes().centers[:, 0].tolist()))
    assert values == [-4, -2, 0, 2, 4] and len(grid.modes().centers) == 25


def test_log_prob_matches_scipy_and_integrates_to_one():
    ring = Ring(Ring.Config(std=0.1))
    x = ring.sample(50, torch.Generator().manual_seed(0))
    expected = torch.tensor([math.log(sum(stats.multivariate_normal(c.tolist(), 0.01).pdf(p.tolist()) / 8
                                          for c in ring.modes().centers)) for p in x])
    assert torch.allclose(ring.log_prob(x), expected.float(), atol=1e-4)
    axis = torch.linspace(-1.6, 1.6, 401)
    grid = torch.cartesian_prod(axis, axis)
    mass = ring.log_prob(grid).exp().sum() * (axis[1] - axis[0]) ** 2
    assert abs(mass.item() - 1) < 1e-3
    mixture = Mixture1d(Mixture1d.Config(weights=(1.0, 3.0)))
    line = torch.linspace(-6, 6, 4001)[:, None]
    assert abs(torch.trapezoid(mixture.log_prob(line).exp(), line[:, 0]).item() - 1) < 1e-4


def test_sampling_follows_weights_and_stds():
    mixture = Mixture1d(Mixture1d.Config(weights=(1.0, 3.0)))
    x = mixture.sample(40000, torch.Generator().manual_seed(1))[:, 0]
    assert abs((x > 0).float().mean().item() - 0.75) < 0.01
    gaussian = Gaussian1d(Gaussian1d.Config())
    y = gaussian.sample(40000, torch.Generator().manual_seed(2))
    assert y.shape == (40000, 1) and y.dtype == torch.float32
    assert abs(y.mean().item() - 4.0) < 0.01 and abs(y.std().item() - 0.5) < 0.01


def test_same_generator_state_same_samples():
    ring = Ring(Ring.Config())
    a = ring.sample(10, torch.Generator().manual_seed(3))
    b = ring.sample(10, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
