"""Exact-density metrics: quadrature divergences against closed forms, the KDE pieces against
direct formulas, and the KDE divergence estimates on distributions with known answers."""

import math

import pytest
import scipy.integrate
import scipy.stats
import torch
from benchbench_plugins.datasets.mixtures import Gaussian1d, Grid, Ring
from benchbench_plugins.metrics.density import (
    KDEDivergence,
    LogLikelihood,
    bandwidth_grid,
    divergences_from_log_densities,
    jsd_quadrature,
    kde_log_density,
    kl_quadrature,
    leave_one_out_scores,
    log_kernel_sums,
    select_bandwidth,
)

from benchbench import Dataset, Evaluation

LOG2 = math.log(2)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def normal(mean, std):
    return Gaussian1d(Gaussian1d.Config(means=(mean,), stds=(std,)))


def normal_log_density(mean, std):
    return lambda x: torch.distributions.Normal(mean, std).log_prob(x)


def kl_gaussians(m1, s1, m2, s2):
    """KL(N(m1, s1^2) || N(m2, s2^2))."""
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


GRID_1D = torch.linspace(-30, 30, 60_001, dtype=torch.float64)


# ---- quadrature ---------------------------------------------------------------------------

@pytest.mark.parametrize("m1, s1, m2, s2", [(0, 1, 1, 1), (0, 1, 0, 2), (-1, 0.5, 2, 1.5), (3, 2, 3, 0.7)])
def test_kl_quadrature_matches_the_gaussian_closed_form(m1, s1, m2, s2):
    expected = kl_gaussians(m1, s1, m2, s2)
    assert kl_quadrature(normal_log_density(m1, s1), normal_log_density(m2, s2), GRID_1D) == pytest.approx(
        expected, rel=1e-6, abs=1e-9)


def test_quadrature_accepts_dataset_log_prob_and_flat_callables_alike():
    p, q = normal(0.0, 1.0), normal(1.0, 1.0)
    assert kl_quadrature(p.log_prob, q.log_prob, GRID_1D) == pytest.approx(0.5, rel=1e-6)
    assert jsd_quadrature(p.log_prob, q.log_prob, GRID_1D) == pytest.approx(
        jsd_quadrature(normal_log_density(0, 1), normal_log_density(1, 1), GRID_1D), rel=1e-6)


def test_jsd_quadrature_matches_scipy_quad_and_is_symmetric_and_bounded():
    lp, lq = normal_log_density(0, 1), normal_log_density(1.5, 0.6)
    p, q = scipy.stats.norm(0, 1).pdf, scipy.stats.norm(1.5, 0.6).pdf

    def integrand(x):
        m = (p(x) + q(x)) / 2
        left = p(x) * math.log(p(x) / m) if p(x) > 0 else 0.0
        right = q(x) * math.log(q(x) / m) if q(x) > 0 else 0.0
        return 0.5 * (left + right)

    expected = scipy.integrate.quad(integrand, -20, 20, points=[0, 1.5], limit=200)[0]
    jsd = jsd_quadrature(lp, lq, GRID_1D)
    assert jsd == pytest.approx(expected, rel=1e-6)
    assert jsd == pytest.approx(jsd_quadrature(lq, lp, GRID_1D), rel=1e-12)
    assert 0 < jsd < LOG2


def test_jsd_quadrature_extremes():
    same = normal_log_density(0.3, 1.2)
    assert jsd_quadrature(same, same, GRID_1D) == pytest.approx(0, abs=1e-12)
    disjoint = jsd_quadrature(normal_log_density(-15, 1), normal_log_density(15, 1), GRID_1D)
    assert disjoint == pytest.approx(LOG2, rel=1e-6) and disjoint <= LOG2 + 1e-9
    assert kl_quadrature(same, same, GRID_1D) == pytest.approx(0, abs=1e-12)


# ---- kernel density estimate --------------------------------------------------------------

def kde_reference(points, centers, h):
    """log 1/m sum_j N(points_i; centers_j, h^2 I) written out with torch.distributions."""
    normal = torch.distributions.Normal(centers[None], h)  # [1, m, d]
    log_kernels = normal.log_prob(points[:, None]).sum(-1)  # [n, m]
    return torch.logsumexp(log_kernels, dim=1) - math.log(len(centers))


@pytest.mark.parametrize("d", [1, 2, 30])
def test_kde_log_density_matches_the_direct_formula(d):
    points = torch.randn(40, d, generator=gen(0), dtype=torch.float64)
    centers = torch.randn(25, d, generator=gen(1), dtype=torch.float64)
    h = 0.7
    torch.testing.assert_close(kde_log_density(points, centers, h), kde_reference(points, centers, h))


def test_leave_one_out_kde_drops_each_points_own_kernel():
    y = torch.randn(30, 2, generator=gen(0), dtype=torch.float64)
    loo = kde_log_density(y, y, 0.4, leave_one_out=True)
    expected = torch.stack([kde_reference(y[i:i + 1], torch.cat([y[:i], y[i + 1:]]), 0.4)[0] for i in range(30)])
    torch.testing.assert_close(loo, expected)
    rows = torch.tensor([3, 17, 29])
    scores = leave_one_out_scores(y, torch.tensor([0.4], dtype=torch.float64), rows)
    assert float(scores[0]) == pytest.approx(float(expected[rows].mean()), rel=1e-12)


def test_log_kernel_sums_stay_finite_for_tiny_bandwidths():
    d2 = torch.tensor([[1.0, 4.0, math.inf], [9.0, 16.0, 25.0]], dtype=torch.float64)
    sums = log_kernel_sums(d2, torch.tensor([1e-3, 1.0], dtype=torch.float64))
    # the nearest centre dominates: log sum ~ -d2_min / (2 h^2)
    torch.testing.assert_close(sums[0], torch.tensor([-0.5e6, -4.5e6], dtype=torch.float64))
    expected = torch.log(torch.exp(-d2 / 2).sum(1))
    torch.testing.assert_close(sums[1], expected)


def test_leave_one_out_bandwidth_is_near_silverman_for_a_gaussian():
    x = torch.randn(2000, 1, generator=gen(0), dtype=torch.float64)
    h, scores = select_bandwidth(x, bandwidth_grid(1.0, 1e-3, 1.0, 24))
    assert scores.shape == (24,)
    silverman = 1.06 * 2000 ** -0.2  # 0.232; observed h = 0.223
    assert silverman / 1.5 < h < silverman * 1.5


def test_collapsed_samples_select_a_small_bandwidth():
    collapsed = torch.randn(5, 2, generator=gen(0)).repeat(100, 1) + 1e-4 * torch.randn(500, 2, generator=gen(1))
    spread = torch.randn(500, 2, generator=gen(2))
    h_collapsed, _ = select_bandwidth(collapsed, bandwidth_grid(1.0, 1e-3, 1.0, 24))
    h_spread, _ = select_bandwidth(spread, bandwidth_grid(1.0, 1e-3, 1.0, 24))
    assert h_collapsed < 1e-2 < h_spread


def test_divergences_with_exact_log_densities_match_closed_forms():
    # q-hat replaced by the exact q: the estimators are plain Monte Carlo averages
    p, q = torch.distributions.Normal(0.0, 1.0), torch.distributions.Normal(1.0, 1.0)
    x = torch.randn(40_000, generator=gen(0), dtype=torch.float64)
    y = torch.randn(40_000, generator=gen(1), dtype=torch.float64) + 1
    out = divergences_from_log_densities(p.log_prob(x), q.log_prob(x), p.log_prob(y), q.log_prob(y))
    assert out["kl_data_model"] == pytest.approx(0.5, abs=0.02)
    assert out["kl_model_data"] == pytest.approx(0.5, abs=0.02)
    exact_jsd = jsd_quadrature(normal_log_density(0, 1), normal_log_density(1, 1), GRID_1D)  # 0.1114
    assert out["jsd"] == pytest.approx(exact_jsd, abs=0.01)


# ---- the metrics --------------------------------------------------------------------------

def kde_divergence(dataset, real, fake, seed=0):
    return KDEDivergence(KDEDivergence.Config()).compute(Evaluation(real, fake, dataset, seed))


def test_kde_divergence_near_zero_for_fresh_samples_of_the_same_mixture():
    # fake = fresh data: the KDE smooths p_g, so the estimates are slightly biased (negative for
    # JSD and KL(g||p)): observed on the ring at n = 2500: jsd -0.007..-0.010, KL(p||g) 0.03..0.04,
    # KL(g||p) -0.035..-0.044.
    ring = Ring(Ring.Config())
    out = kde_divergence(ring, ring.sample(2500, gen(1)), ring.sample(2500, gen(2)))
    assert abs(out["jsd"]) < 0.02
    assert abs(out["kl_data_model"]) < 0.08 and abs(out["kl_model_data"]) < 0.08


def test_kde_divergence_of_shifted_gaussians_matches_closed_forms():
    # KL(N(0,1) || N(1,1)) = KL(N(1,1) || N(0,1)) = 0.5; JSD by quadrature = 0.1114.
    # Observed over seeds: KL(g||p) 0.48..0.51; KL(p||g) 0.43..0.69 (data in the tails of the KDE);
    # JSD 0.107..0.116.
    dataset = normal(0.0, 1.0)
    out = kde_divergence(dataset, dataset.sample(2500, gen(10)), torch.randn(2500, 1, generator=gen(100)) + 1)
    assert out["kl_model_data"] == pytest.approx(0.5, abs=0.05)
    assert out["kl_data_model"] == pytest.approx(0.5, abs=0.25)
    assert out["jsd"] == pytest.approx(0.1114, abs=0.02)


def test_kde_divergence_of_disjoint_distributions_is_log_2():
    dataset = normal(0.0, 1.0)
    out = kde_divergence(dataset, dataset.sample(1000, gen(0)), torch.randn(1000, 1, generator=gen(1)) + 20)
    assert out["jsd"] == pytest.approx(LOG2, abs=1e-6)
    assert out["kl_data_model"] > 100 and out["kl_model_data"] > 100


@pytest.mark.parametrize("dataset", [Ring(Ring.Config()), Grid(Grid.Config())], ids=["ring", "grid"])
@pytest.mark.parametrize("metric_cls", [KDEDivergence, LogLikelihood])
def test_metric_returns_exactly_its_declared_outputs(metric_cls, dataset):
    evaluation = Evaluation(dataset.sample(500, gen(0)), dataset.sample(500, gen(1)), dataset, seed=4)
    metric = metric_cls(metric_cls.Config())
    assert metric.applies(evaluation)
    values = metric.compute(evaluation)
    assert set(values) == {o.name for o in metric_cls.outputs}
    assert all(type(v) is float and math.isfinite(v) for v in values.values())
    assert metric.compute(evaluation) == values  # seeded


def test_log_likelihood_at_the_ring_centres_is_the_peak_density():
    ring = Ring(Ring.Config())
    centers = ring.modes().centers.repeat(3, 1)
    values = LogLikelihood(LogLikelihood.Config()).compute(Evaluation(centers, centers, ring, seed=0))
    # other components are ~ exp(-0.58 / 2e-4) away: log p = log(1/8) - log(2 pi 0.01^2)
    assert values["log_likelihood"] == pytest.approx(-math.log(8) - math.log(2 * math.pi * 1e-4), rel=1e-6)


def test_metrics_do_not_apply_without_a_density():
    class Blob(Dataset):
        name = "blob"
        shape = (2,)

    evaluation = Evaluation(torch.zeros(4, 2), torch.zeros(4, 2), Blob(None), seed=0)
    assert not KDEDivergence(KDEDivergence.Config()).applies(evaluation)
    assert not LogLikelihood(LogLikelihood.Config()).applies(evaluation)
