"""Parzen-window log-likelihood: the Gaussian closed forms (one centre; many centres from a Gaussian,
whose expected window density is the Gaussian widened by the window), log-sum-exp for tiny windows,
sigma chosen on validation, row blocks equal to one pass, and the metric on the digits' splits with
and without rescaling to [0, 1]."""

import math

import numpy as np
import pytest
import torch

from benchbench import Evaluation, Unavailable
from benchbench_plugins.datasets.images import Digits
from benchbench_plugins.datasets.mixtures import Ring
from benchbench_plugins.metrics import distances
from benchbench_plugins.metrics.parzen import (
    LL,
    SE,
    SIGMA,
    Parzen,
    parzen_log_densities,
    parzen_log_likelihood,
    select_sigma,
    subset,
)

DIGITS = Digits(Digits.Config())


def gen(seed):
    return torch.Generator().manual_seed(seed)


def gaussian_log_density(x, mean, variance):
    """log N(x; mean, variance I) of the rows of ``x``, float64."""
    d = x.shape[1]
    return -0.5 * ((x - mean) ** 2).sum(1) / variance - 0.5 * d * math.log(2 * math.pi * variance)


def direct_log_densities(points, samples, sigmas):
    """The window's definition on the full [n, m] matrix, float64: log mean_j N(x_i; y_j, s^2 I)."""
    d2 = torch.cdist(points.double().flatten(1), samples.double().flatten(1)) ** 2
    d = points.flatten(1).shape[1]
    return torch.stack([torch.logsumexp(-d2 / (2 * s * s), 1) - math.log(len(samples))
                        - 0.5 * d * math.log(2 * math.pi * s * s) for s in sigmas.tolist()])


SIGMAS = torch.tensor([0.05, 0.3, 1.0, 2.5], dtype=torch.float64)


def test_one_centre_gives_the_gaussian_log_density():
    points = torch.randn(50, 5, generator=gen(0), dtype=torch.float64)
    centre = torch.randn(1, 5, generator=gen(1), dtype=torch.float64)
    log_q = parzen_log_densities(points, centre, SIGMAS)
    assert log_q.shape == (4, 50) and log_q.dtype == torch.float64
    for s, row in zip(SIGMAS.tolist(), log_q):
        expected = torch.distributions.Normal(centre[0], s).log_prob(points).sum(1)
        torch.testing.assert_close(row, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sigma", [0.2, 0.5])
def test_many_gaussian_centres_give_the_widened_gaussian(sigma):
    # centres y_j ~ N(0, I): E q(x) = N(x; 0, (1 + sigma^2) I), and for test points x ~ N(0, I)
    # E log N(x; 0, (1 + sigma^2) I) = -d/2 log(2 pi (1 + sigma^2)) - d / (2 (1 + sigma^2))
    d = 2
    samples = torch.randn(20_000, d, generator=gen(0), dtype=torch.float64)
    test = torch.randn(2_000, d, generator=gen(1), dtype=torch.float64)
    log_q = parzen_log_densities(test, samples, torch.tensor([sigma], dtype=torch.float64))[0]
    widened = 1 + sigma * sigma
    at_the_points = gaussian_log_density(test, 0.0, widened)
    assert abs(float((log_q - at_the_points).mean())) < 0.01  # observed: -0.0026 (sigma 0.2), -0.0022 (0.5)
    mean, se = parzen_log_likelihood(test, samples, sigma)
    assert mean == pytest.approx(float(log_q.mean()))
    expected = -0.5 * d * math.log(2 * math.pi * widened) - 0.5 * d / widened
    assert abs(mean - expected) < 3 * se  # observed: 1.4 se
    # as sigma -> 0 it approaches -H(N(0, I)), within the widening d/2 log(1 + sigma^2)
    entropy = 0.5 * d * math.log(2 * math.pi * math.e)
    assert abs(mean + entropy) < 0.5 * d * math.log(widened) + 3 * se


def test_tiny_windows_stay_finite_by_log_sum_exp():
    # 784-d points far from every centre: each kernel underflows, the log-sum-exp does not
    points = torch.rand(20, 784, generator=gen(0), dtype=torch.float64)
    samples = torch.rand(50, 784, generator=gen(1), dtype=torch.float64)
    sigmas = torch.tensor([1e-3, 1e-2], dtype=torch.float64)
    d2 = torch.cdist(points, samples) ** 2
    assert torch.exp(-d2 / (2 * 1e-3**2)).sum(1).log().isneginf().all()  # the naive sum
    log_q = parzen_log_densities(points, samples, sigmas)
    assert torch.isfinite(log_q).all()
    torch.testing.assert_close(log_q, direct_log_densities(points, samples, sigmas), rtol=1e-10, atol=0)
    # at sigma = 1e-3 the nearest centre is all there is
    nearest = -d2.amin(1) / 2e-6 - math.log(50) - 392 * math.log(2 * math.pi * 1e-6)
    torch.testing.assert_close(log_q[0], nearest, rtol=1e-10, atol=0)


def test_row_blocks_equal_one_pass_and_the_direct_formula(monkeypatch):
    points = torch.randn(300, 10, generator=gen(0))
    samples = torch.randn(200, 10, generator=gen(1)) * 0.8
    monkeypatch.setattr(distances, "BLOCK_ENTRIES", 1 << 30)
    whole = parzen_log_densities(points, samples, SIGMAS)
    monkeypatch.setattr(distances, "BLOCK_ENTRIES", 600)  # blocks of 3 points
    assert len(distances.row_blocks(300, 200)) == 100
    torch.testing.assert_close(parzen_log_densities(points, samples, SIGMAS), whole, rtol=1e-12, atol=0)
    torch.testing.assert_close(whole, direct_log_densities(points, samples, SIGMAS), rtol=1e-5, atol=1e-5)


def test_select_sigma_picks_the_best_validation_score_of_the_grid():
    validation = torch.randn(300, 4, generator=gen(0))
    samples = torch.randn(400, 4, generator=gen(1))
    grid = torch.logspace(-1, 0.5, 12, dtype=torch.float64)
    sigma, scores = select_sigma(validation, samples, grid)
    one_by_one = torch.tensor([parzen_log_likelihood(validation, samples, s)[0] for s in grid.tolist()],
                              dtype=torch.float64)
    torch.testing.assert_close(scores, one_by_one)
    assert sigma == float(grid[one_by_one.argmax()])
    assert 0 < int(one_by_one.argmax()) < len(grid) - 1  # an interior optimum on this grid


def test_select_sigma_extremes():
    grid = torch.logspace(-2, 0, 5, dtype=torch.float64)
    validation = torch.randn(100, 3, generator=gen(0))
    copies = validation + 1e-4 * torch.randn(100, 3, generator=gen(1))  # the samples sit on the points
    assert select_sigma(validation, copies, grid)[0] == float(grid[0])
    few = torch.zeros(2, 3)  # two centres for a broad cloud: the widest window
    assert select_sigma(validation, few, grid)[0] == float(grid[-1])


def test_standard_error_is_the_std_over_root_n():
    test, samples = torch.randn(40, 3, generator=gen(0)), torch.randn(60, 3, generator=gen(1))
    log_q = parzen_log_densities(test, samples, torch.tensor([0.5], dtype=torch.float64))[0]
    mean, se = parzen_log_likelihood(test, samples, 0.5)
    assert (mean, se) == pytest.approx((float(log_q.mean()), float(log_q.std(correction=1)) / math.sqrt(40)))
    assert math.isnan(parzen_log_likelihood(test[:1], samples, 0.5)[1])


def test_subset_is_fixed_and_distinct():
    x = torch.arange(100.0)[:, None]
    assert subset(x, None) is x and subset(x, 100) is x and subset(x, 500) is x
    a = subset(x, 30)
    assert a.shape == (30, 1) and len(set(a[:, 0].tolist())) == 30 and torch.equal(a, subset(x, 30))


def test_default_grid_is_the_gan_codes_logspace():
    np.testing.assert_allclose(Parzen.Config().sigmas, np.logspace(-1, 0, 10), rtol=1e-12)


# ---- the metric -------------------------------------------------------------------------------

def digits_evaluation(n_fake=300):
    fake = DIGITS.split("train").x[torch.randperm(1257, generator=gen(0))[:n_fake]]
    return Evaluation(DIGITS.split("test").x[:100], fake, DIGITS, seed=0)


def test_metric_is_the_pure_functions_on_the_splits_in_unit_range():
    ev = digits_evaluation()
    config = Parzen.Config(validation_points=150)
    values = Parzen(config).compute(ev)
    assert set(values) == {o.name for o in Parzen.outputs} and all(type(v) is float for v in values.values())
    unit = (lambda t: (t + 1) / 2)
    grid = torch.tensor(config.sigmas, dtype=torch.float64)
    sigma, _ = select_sigma(unit(subset(DIGITS.split("validation").x, 150)), unit(ev.fake), grid)
    mean, se = parzen_log_likelihood(unit(DIGITS.split("test").x), unit(ev.fake), sigma)
    assert values == {LL: pytest.approx(mean), SE: pytest.approx(se), SIGMA: sigma}


def test_unit_range_is_a_change_of_variables():
    # x' = (x + 1) / 2 halves distances: q'(x') = 2^d q(x) with sigma' = sigma / 2
    ev = digits_evaluation()
    sigmas = (0.1, 0.2, 0.4, 0.8)
    unit = Parzen(Parzen.Config(sigmas=sigmas)).compute(ev)
    raw = Parzen(Parzen.Config(sigmas=tuple(2 * s for s in sigmas), unit_range=False)).compute(ev)
    assert unit[SIGMA] == pytest.approx(raw[SIGMA] / 2)
    assert unit[LL] == pytest.approx(raw[LL] + 64 * math.log(2), rel=1e-9)
    assert unit[SE] == pytest.approx(raw[SE], rel=1e-9)


def test_metric_applies_only_with_validation_and_test_splits():
    ring = Ring(Ring.Config())
    metric = Parzen(Parzen.Config())
    assert not metric.applies(Evaluation(ring.sample(10, gen(0)), ring.sample(10, gen(1)), ring, seed=0))
    assert metric.applies(digits_evaluation())


def test_a_single_test_image_has_no_standard_error():
    values = Parzen(Parzen.Config(test_points=1)).compute(digits_evaluation(50))
    assert isinstance(values[SE], Unavailable) and math.isfinite(values[LL])
