"""The Gaussian MMD of plugins/kernels.py: kernels made by squaring, their accuracy against float64,
members independent of the stack, no denormals."""

import math

import pytest
import torch

from benchbench_plugins.kernels import (SQUARED_FLOOR, exponent_plan, kernel_terms, median_distance, mmd2_gaussian,
                                        squared_distances)
from benchbench_plugins.objectives.gmmn import GMMNConfig

GMMN_SCALES = GMMNConfig().scales


def rates_of(sigmas):
    return sorted(0.5 / (s * s) for s in sigmas)


def test_kernels_a_power_of_two_apart_come_from_one_exp_by_squaring():
    assert exponent_plan(rates_of(GMMN_SCALES)) == [None, 2, 2, 2, 2, 2]  # six kernels, one exp
    assert exponent_plan(rates_of(GMMN_SCALES), max_squarings=4) == [None, 2, 2, None, 2, 2]
    assert exponent_plan(rates_of((0.1, 0.3, 1.0))) == [None, None, None]  # the MMD metric's: no shortcut
    assert exponent_plan(rates_of((1.0, 1.0, 0.5))) == [None, 0, 2]  # a repeated bandwidth: the same kernel


def test_squared_kernels_equal_the_exponential_and_never_go_denormal():
    d2 = torch.linspace(0, 30, 20001)  # exponents from 0 to -30 * 4^5 r: through float32's denormal range
    rates = rates_of(GMMN_SCALES)
    for rate, term in kernel_terms(d2, rates):
        exact = torch.exp(-rate * d2.double())
        assert ((term == 0) | (term >= 2.0 ** -126)).all()  # normal floats only
        big = exact > 1e-30
        torch.testing.assert_close(term[big].double(), exact[big], rtol=1e-4, atol=0)
        assert (term[~big] <= 1e-30).all() and (term >= SQUARED_FLOOR * (1 - 1e-6)).all()


def ring_batches(members, n, generator, spread):
    angles = torch.randint(0, 8, (members, n), generator=generator) * (2 * math.pi / 8)
    real = 2 * torch.stack([angles.cos(), angles.sin()], -1) + 0.02 * torch.randn(members, n, 2, generator=generator)
    fake = real[:, torch.randperm(n, generator=generator)] + spread * torch.randn(members, n, 2, generator=generator)
    return real, fake


@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("spread", [0.02, 3.0])  # a generator near the data, and one far from it
def test_float32_loss_and_gradient_within_1e4_of_float64_at_the_gmmn_bandwidths(unbiased, spread):
    """The tolerance of the squared kernels: on ring batches (5 members, 128 + 128 points) the
    float32 MMD^2 and its gradient within 1e-4 relative of the same formula in float64 (measured
    ~1.4e-5; the code before the squared kernels: ~5e-7 and ~4e-6)."""
    real, fake = ring_batches(5, 128, torch.Generator().manual_seed(1), spread)
    sigmas = [s * median_distance(real[0]) for s in GMMN_SCALES]
    results = []
    for dtype in (torch.float32, torch.float64):
        y = fake.detach().to(dtype).requires_grad_()
        loss = mmd2_gaussian(real.to(dtype), y, sigmas, unbiased)
        loss.sum().backward()
        results.append((loss.detach().double(), y.grad.double()))
    (loss32, grad32), (loss64, grad64) = results
    assert ((loss32 - loss64).abs() / loss64.abs()).max() < 1e-4
    assert ((grad32 - grad64).norm(dim=(-1, -2)) / grad64.norm(dim=(-1, -2))).max() < 1e-4


@pytest.mark.parametrize("unbiased", [False, True])
def test_a_member_gets_the_same_bits_alone_or_stacked(unbiased):
    real, fake = ring_batches(5, 64, torch.Generator().manual_seed(2), 0.1)
    sigmas = [s * median_distance(real[0]) for s in GMMN_SCALES]
    y = fake.clone().requires_grad_()
    stacked = mmd2_gaussian(real, y, sigmas, unbiased)
    stacked.sum().backward()
    for i in range(5):
        alone_y = fake[i:i + 1].clone().requires_grad_()
        alone = mmd2_gaussian(real[i:i + 1], alone_y, sigmas, unbiased)
        alone.sum().backward()
        assert torch.equal(alone[0], stacked[i]) and torch.equal(alone_y.grad[0], y.grad[i])


def test_without_a_graph_the_value_is_the_same_bits():
    real, fake = ring_batches(3, 50, torch.Generator().manual_seed(3), 0.1)
    y = fake.clone().requires_grad_()
    with torch.no_grad():
        plain = mmd2_gaussian(real, fake, (0.1, 0.4), unbiased=True)
    assert torch.equal(mmd2_gaussian(real, y, (0.1, 0.4), unbiased=True).detach(), plain)


def test_unequal_sample_sizes_and_no_leading_dimension():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(30, 3, generator=g, dtype=torch.float64), torch.randn(7, 3, generator=g, dtype=torch.float64)
    k = lambda a, b: torch.exp(-squared_distances(a, b) / 2)  # noqa: E731  one kernel, sigma 1
    kxx, kyy = k(x, x), k(y, y)
    unbiased = ((kxx.sum() - 30) / (30 * 29) + (kyy.sum() - 7) / (7 * 6) - 2 * k(x, y).mean())
    torch.testing.assert_close(mmd2_gaussian(x, y, (1.0,)), unbiased)
    torch.testing.assert_close(mmd2_gaussian(y, x, (1.0,), unbiased=False),
                               kxx.mean() + kyy.mean() - 2 * k(x, y).mean())
