"""Frechet distance: closed forms for Gaussians, a scipy.linalg.sqrtm reference, edge cases."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from benchbench import Evaluation
from benchbench_plugins.datasets.mixtures import Grid, Ring
from benchbench_plugins.metrics.frechet import (
    Frechet,
    frechet_distance,
    frechet_from_samples,
    mean_and_covariance,
    sqrt_psd,
    trace_sqrt_product,
)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def random_spd(d, seed):
    a = torch.randn(d, d, generator=gen(seed), dtype=torch.float64)
    return a @ a.T + 0.1 * torch.eye(d, dtype=torch.float64)


def sqrtm_reference(mu1, s1, mu2, s2):
    """The formula with scipy.linalg.sqrtm, as in the original FID code."""
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    return float(((mu1 - mu2) ** 2).sum()) + float(np.trace(s1.numpy() + s2.numpy() - 2 * covmean))


def test_sqrt_psd_squares_back():
    s = random_spd(6, 0)
    r = sqrt_psd(s)
    torch.testing.assert_close(r @ r, s)
    torch.testing.assert_close(r, r.T)


@pytest.mark.parametrize("d, seed", [(2, 0), (5, 1), (20, 2)])
def test_frechet_distance_matches_the_sqrtm_reference(d, seed):
    mu1 = torch.randn(d, generator=gen(seed), dtype=torch.float64)
    mu2 = torch.randn(d, generator=gen(seed + 10), dtype=torch.float64)
    s1, s2 = random_spd(d, seed + 20), random_spd(d, seed + 30)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(sqrtm_reference(mu1, s1, mu2, s2), rel=1e-8)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-10)


def test_commuting_covariances_give_the_closed_form():
    # diagonal covariances: FD = |mu1 - mu2|^2 + sum_i (sigma1_i - sigma2_i)^2
    f64 = torch.float64
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0], dtype=f64), torch.tensor([1.0, 1.0, 0.0], dtype=f64)
    sd1, sd2 = torch.tensor([1.0, 2.0, 0.5], dtype=f64), torch.tensor([3.0, 2.0, 0.1], dtype=f64)
    expected = 1 + 4 + (2**2 + 0 + 0.4**2)
    assert frechet_distance(mu1, torch.diag(sd1**2), mu2, torch.diag(sd2**2)) == pytest.approx(expected, rel=1e-12)


def test_identical_moments_give_zero():
    mu, s = torch.randn(8, generator=gen(0), dtype=torch.float64), random_spd(8, 1)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0, abs=1e-9 * float(s.trace()))
    x = torch.randn(300, 8, generator=gen(2))
    assert frechet_from_samples(x, x) == pytest.approx(0, abs=1e-9)


def test_singular_covariances_are_handled():
    s = torch.diag(torch.tensor([1.0, 0.0, 4.0], dtype=torch.float64))
    assert float(trace_sqrt_product(s, s)) == pytest.approx(5.0)  # Tr (S S)^{1/2} = Tr S
    assert float(trace_sqrt_product(s, torch.eye(3, dtype=torch.float64))) == pytest.approx(3.0)
    assert frechet_distance(torch.zeros(3), s, torch.zeros(3), s) == pytest.approx(0, abs=1e-12)


def test_samples_of_two_gaussians_match_the_closed_form():
    # N(0, I) vs N(mu, diag(4, 0.25)) in 2-D: |mu|^2 + (1 - 2)^2 + (1 - 0.5)^2
    x = torch.randn(20_000, 2, generator=gen(0))
    mu, sd = torch.tensor([1.0, -0.5]), torch.tensor([2.0, 0.5])
    y = torch.randn(20_000, 2, generator=gen(1)) * sd + mu
    assert frechet_from_samples(x, y) == pytest.approx(1.25 + 1 + 0.25, abs=0.05)


def test_one_dimension_uses_n_minus_1_moments():
    x = torch.randn(50, 1, generator=gen(0), dtype=torch.float64)
    y = torch.randn(70, 1, generator=gen(1), dtype=torch.float64) * 3 + 1
    mu, cov = mean_and_covariance(x)
    assert cov.shape == (1, 1) and float(cov) == pytest.approx(float(x.var()), rel=1e-12)  # torch.var: N - 1
    expected = float((x.mean() - y.mean()) ** 2 + (x.std() - y.std()) ** 2)
    assert frechet_from_samples(x, y) == pytest.approx(expected, rel=1e-10)


def test_images_are_flattened():
    x = torch.randn(100, 1, 2, 2, generator=gen(0))
    assert frechet_from_samples(x, x + 1) == pytest.approx(4.0, rel=1e-5)


@pytest.mark.parametrize("dataset", [Ring(Ring.Config()), Grid(Grid.Config())], ids=["ring", "grid"])
def test_metric_returns_exactly_its_declared_outputs(dataset):
    evaluation = Evaluation(dataset.sample(500, gen(0)), dataset.sample(500, gen(1)), dataset, seed=0)
    values = Frechet(Frechet.Config()).compute(evaluation)
    assert set(values) == {o.name for o in Frechet.outputs}
    assert type(values["frechet_distance"]) is float and math.isfinite(values["frechet_distance"])
