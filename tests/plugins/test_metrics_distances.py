"""MMD^2, sliced Wasserstein-2 and energy distance: pure functions against closed forms and
reference implementations, and the metric classes through compute(Evaluation)."""

import math

import pytest
import scipy.stats
import torch

import benchbench as bb
from benchbench import Evaluation
from benchbench_plugins.datasets.mixtures import Grid, Ring
from benchbench_plugins.kernels import mmd2_gaussian, squared_distances
from benchbench_plugins.metrics.distances import (
    MMD,
    Energy,
    SlicedWasserstein,
    distance_blocks,
    energy_distance2,
    mean_distance,
    mmd2,
    quantiles,
    random_directions,
    row_blocks,
    sliced_wasserstein2,
)

MY_PLUGINS = {"modes", "density", "distances", "manifold", "frechet", "throughput"}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def ring_samples(n, seed):
    return Ring(Ring.Config()).sample(n, gen(seed))


# ---- distances ------------------------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 2, 5, 40])
def test_pairwise_squared_distances_match_direct_differences(d):
    x = torch.randn(30, d, generator=gen(0), dtype=torch.float64)
    y = torch.randn(20, d, generator=gen(1), dtype=torch.float64) + 3
    expected = ((x[:, None] - y[None]) ** 2).sum(-1)
    torch.testing.assert_close(squared_distances(x, y), expected, rtol=1e-10, atol=1e-10)


def test_pairwise_squared_distances_keep_float32_digits_on_the_ring():
    # close points far from the origin: the |x|^2 + |y|^2 - 2x.y expansion loses digits, we must not
    x = ring_samples(200, 0)
    exact = ((x.double()[:, None] - x.double()[None]) ** 2).sum(-1)
    ours = squared_distances(x, x).double()
    assert ((ours - exact).abs() <= 1e-6 * exact + 1e-12).all()


def test_distance_blocks_cover_the_matrix_with_zero_self_distances():
    x = torch.randn(1000, 3, generator=gen(0))
    blocks = list(distance_blocks(x))
    assert len(blocks) > 1 and [r.start for r, _ in blocks] == [r.start for r in row_blocks(1000, 1000)]
    full = torch.cat([d2 for _, d2 in blocks])
    assert (full.diagonal() == 0).all()
    torch.testing.assert_close(full, squared_distances(x, x).fill_diagonal_(0))


# ---- MMD ------------------------------------------------------------------------------------

def mmd2_double_loop(x, y, sigmas, unbiased):
    def k(a, b):
        d2 = float(((a - b) ** 2).sum())
        return sum(math.exp(-d2 / (2 * s * s)) for s in sigmas)
    n, m = len(x), len(y)
    pairs = [(i, j) for i in range(n) for j in range(n) if not unbiased or i != j]
    xx = sum(k(x[i], x[j]) for i, j in pairs) / len(pairs)
    pairs = [(i, j) for i in range(m) for j in range(m) if not unbiased or i != j]
    yy = sum(k(y[i], y[j]) for i, j in pairs) / len(pairs)
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd2_matches_an_explicit_double_loop(unbiased):
    x = torch.randn(6, 2, generator=gen(0), dtype=torch.float64)
    y = torch.randn(5, 2, generator=gen(1), dtype=torch.float64) + 0.5
    sigmas = (0.3, 1.0, 2.5)
    assert mmd2(x, y, sigmas, unbiased) == pytest.approx(mmd2_double_loop(x, y, sigmas, unbiased), rel=1e-12)


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd2_matches_the_shared_kernel_module(unbiased):
    x = torch.randn(700, 3, generator=gen(2), dtype=torch.float64)
    y = torch.randn(600, 3, generator=gen(3), dtype=torch.float64) * 1.2
    sigmas = (0.2, 1.0)
    expected = float(mmd2_gaussian(x, y, sigmas, unbiased))
    assert mmd2(x, y, sigmas, unbiased) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_mmd2_identical_samples_unbiased_slightly_negative_biased_zero():
    x = ring_samples(400, 0)
    assert -1e-2 < mmd2(x, x, (0.1, 1.0)) < 0
    assert mmd2(x, x, (0.1, 1.0), unbiased=False) == pytest.approx(0, abs=1e-6)


def test_mmd2_biased_is_nonnegative_and_far_clusters_give_twice_the_kernel_count():
    x = torch.randn(200, 2, generator=gen(0)) * 0.01
    assert mmd2(x, x + 100, (1.0,), unbiased=False) >= 0
    # all within-pairs have k ~ 1 per bandwidth, all cross-pairs ~ 0 (far below exp(-80)):
    assert mmd2(x, x + 100, (0.5, 1.0)) == pytest.approx(4.0, rel=1e-3)


def test_mmd2_same_distribution_small_shifted_large():
    a, b = ring_samples(1000, 0), ring_samples(1000, 9)
    sigmas = (0.12, 0.36, 1.2)  # 0.1, 0.3, 1 x the ring's median distance
    assert abs(mmd2(a, b, sigmas)) < 5e-3  # observed 1e-4 .. 2e-3
    assert mmd2(a, b + 0.05, sigmas) > 0.02  # observed 0.032 .. 0.035


# ---- sliced Wasserstein ---------------------------------------------------------------------

def test_random_directions_are_unit_and_seeded():
    u = random_directions(3, 50, gen(0))
    torch.testing.assert_close(u.norm(dim=0), torch.ones(50, dtype=torch.float64))
    assert torch.equal(u, random_directions(3, 50, gen(0)))


def test_quantiles_interpolate_order_statistics_at_midpoint_levels():
    values = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
    levels = (torch.arange(8, dtype=torch.float64) + 0.5) / 8
    expected = torch.tensor([0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3], dtype=torch.float64)
    torch.testing.assert_close(quantiles(values, levels)[:, 0], expected)
    same = (torch.arange(4, dtype=torch.float64) + 0.5) / 4  # n levels: exactly the sorted values
    torch.testing.assert_close(quantiles(values, same), values)


def test_sliced_w2_of_a_shift_is_the_rms_projected_shift():
    # y = x + v: every projection is shifted by v.u, so the 1-D W2^2 is (v.u)^2 exactly, and
    # sliced_w2^2 = mean_u (v.u)^2 -> |v|^2 / d for u uniform on the sphere (E[u u^T] = I/d).
    d = 3
    x = torch.randn(500, d, generator=gen(0), dtype=torch.float64)
    v = torch.tensor([0.3, -0.4, 1.2], dtype=torch.float64)
    u = random_directions(d, 4000, gen(1))
    sw = sliced_wasserstein2(x, x + v, u)
    assert sw**2 == pytest.approx(float((v @ u).square().mean()), rel=1e-9)
    assert sw == pytest.approx(float(v.norm()) / math.sqrt(d), rel=0.03)


def test_sliced_w2_identical_is_zero_and_unequal_sizes_use_quantiles():
    x = torch.randn(600, 2, generator=gen(0), dtype=torch.float64)
    u = random_directions(2, 256, gen(1))
    assert sliced_wasserstein2(x, x, u) == 0
    y = torch.randn(1500, 2, generator=gen(2), dtype=torch.float64)
    v = torch.tensor([1.0, 1.0], dtype=torch.float64)
    assert sliced_wasserstein2(x, y, u) < 0.1
    assert sliced_wasserstein2(x, y + v, u) == pytest.approx(1.0, rel=0.1)  # |v| / sqrt(2) = 1


# ---- energy distance ------------------------------------------------------------------------

@pytest.mark.parametrize("n, m", [(50, 50), (40, 70)])
def test_energy_v_statistic_equals_scipy_squared(n, m):
    x = torch.randn(n, 1, generator=gen(0), dtype=torch.float64)
    y = torch.randn(m, 1, generator=gen(1), dtype=torch.float64) * 2 + 0.5
    expected = scipy.stats.energy_distance(x[:, 0].numpy(), y[:, 0].numpy()) ** 2
    assert energy_distance2(x, y, unbiased=False) == pytest.approx(expected, rel=1e-10)


def test_energy_u_statistic_is_v_statistic_without_the_zero_diagonal():
    x = torch.randn(30, 2, generator=gen(0), dtype=torch.float64)
    y = torch.randn(20, 2, generator=gen(1), dtype=torch.float64)
    n, m = 30, 20
    v_xx, v_yy = mean_distance(x, unbiased=False), mean_distance(y, unbiased=False)
    expected = 2 * mean_distance(x, y) - v_xx * n / (n - 1) - v_yy * m / (m - 1)
    assert energy_distance2(x, y) == pytest.approx(expected, rel=1e-12)
    assert energy_distance2(x, x, unbiased=False) == pytest.approx(0, abs=1e-12)
    assert energy_distance2(x, x) < 0


def test_energy_u_statistic_matches_the_gaussian_closed_form():
    # X ~ N(0,1), Y ~ N(mu,1): X - Y ~ N(-mu, 2), so with s = sqrt(2)
    # E|X-Y| = s sqrt(2/pi) exp(-mu^2 / (2 s^2)) + mu (1 - 2 Phi(-mu/s)) and E|X-X'| = 2/sqrt(pi).
    mu, s, n = 1.0, math.sqrt(2), 3000
    exy = s * math.sqrt(2 / math.pi) * math.exp(-mu**2 / (2 * s * s)) + mu * (1 - 2 * scipy.stats.norm.cdf(-mu / s))
    expected = 2 * exy - 2 * (2 / math.sqrt(math.pi))
    # stratified samples (normal quantiles at (i + 1/2)/n): error O(1/n) instead of O(1/sqrt(n))
    x = torch.tensor(scipy.stats.norm.ppf((torch.arange(n, dtype=torch.float64) + 0.5) / n))[:, None]
    assert energy_distance2(x, x + mu) == pytest.approx(expected, abs=2e-3)
    assert mean_distance(x) == pytest.approx(2 / math.sqrt(math.pi), abs=2e-3)


# ---- metric classes -------------------------------------------------------------------------

@pytest.mark.parametrize("metric_cls", [MMD, SlicedWasserstein, Energy])
@pytest.mark.parametrize("dataset", [Ring(Ring.Config()), Grid(Grid.Config())], ids=["ring", "grid"])
def test_metric_returns_exactly_its_declared_outputs(metric_cls, dataset):
    real, fake = dataset.sample(500, gen(0)), dataset.sample(500, gen(1))
    evaluation = Evaluation(real, fake, dataset, seed=3)
    metric = metric_cls(metric_cls.Config())
    assert metric.applies(evaluation)
    values = metric.compute(evaluation)
    assert set(values) == {o.name for o in metric_cls.outputs}
    assert all(type(v) is float and math.isfinite(v) for v in values.values())
    shifted = metric.compute(Evaluation(real, fake + 0.5, dataset, seed=3))
    assert all(shifted[k] > values[k] for k in values)
    assert metric.compute(evaluation) == values  # seeded


def test_builtin_metrics_are_registered_without_failures():
    registry = bb.default_registry()
    expected = {"modes", "kde-divergence", "log-likelihood", "mmd", "sliced-wasserstein", "energy", "manifold",
                "frechet", "throughput"}
    assert expected <= set(registry.entries["metric"])
    assert not [f for f in registry.failures if f.plugin in MY_PLUGINS]
    outputs = [o.name for name in expected for o in registry.entries["metric"][name].cls.outputs]
    assert len(outputs) == len(set(outputs))
