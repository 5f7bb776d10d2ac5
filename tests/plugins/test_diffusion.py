"""DDPM: the schedule, the forward marginal, the ancestral step and the sampler against closed forms."""

import math

import pytest
import torch

from benchbench import Nets
from benchbench_plugins.objectives.diffusion import (
    DDPM,
    DDPMConfig,
    alpha_bars,
    denoising_loss,
    linear_betas,
    posterior_step,
    q_sample,
    respaced,
    step_coefficients,
)


def test_the_linear_schedule_is_the_papers_at_1000_steps_and_scaled_for_fewer():
    betas = linear_betas(1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    short = linear_betas(100)
    assert short[0].item() == pytest.approx(1e-3) and short[-1].item() == pytest.approx(0.2)
    assert torch.allclose(short[1:] - short[:-1], torch.full((99,), (0.2 - 1e-3) / 99, dtype=torch.float64))
    with pytest.raises(ValueError, match="timesteps: .* reaches beta_T = 2 >= 1; use at least 21 steps"):
        linear_betas(10)


@pytest.mark.parametrize("settings,message", [
    ({"timesteps": 20}, "timesteps: .*use at least 21 steps"),
    ({"beta_start": 0.1, "beta_end": 0.01}, "beta_end: must be >= beta_start"),
    ({"variance": "fixed"}, "variance: got 'fixed'"),
    ({"sampling_steps": -1}, "sampling_steps: must be >= 0")])
def test_impossible_settings_are_one_line_config_errors(settings, message):
    from benchbench import ConfigError
    from benchbench.api.params import build
    with pytest.raises(ConfigError, match=message):
        build(DDPMConfig, settings, "objectives.ddpm")


def test_alpha_bar_is_the_product_of_one_minus_beta_and_ends_near_zero():
    betas = linear_betas(100)
    abar = alpha_bars(betas)
    product = 1.0
    for t in range(100):
        product *= 1 - betas[t].item()
        assert abar[t].item() == pytest.approx(product, rel=1e-12)
    assert abar[-1].item() < 1e-4 and alpha_bars(linear_betas(1000))[-1].item() < 1e-4


def test_q_sample_has_the_forward_marginal_moments():
    g = torch.Generator().manual_seed(0)
    n = 200_000
    x0 = torch.tensor([1.5, -0.5]).expand(1, n, 2)
    abar = torch.full((1, n), 0.3)
    x_t = q_sample(x0, abar, torch.randn(1, n, 2, generator=g))
    mean, var = x_t.mean((0, 1)), x_t.var((0, 1))
    se = math.sqrt(0.7 / n)
    assert torch.allclose(mean, math.sqrt(0.3) * torch.tensor([1.5, -0.5]), atol=5 * se)
    assert torch.allclose(var, torch.full((2,), 0.7), rtol=0.01)
    # one abar per sample, broadcast over an image's coordinates
    images = q_sample(torch.ones(2, 3, 1, 4, 4), torch.tensor([[1.0, 0.25, 0.0]] * 2), torch.zeros(2, 3, 1, 4, 4))
    assert torch.allclose(images[:, :, 0, 0, 0], torch.tensor([[1.0, 0.5, 0.0]] * 2))


def test_the_ancestral_step_with_the_true_noise_is_the_posterior_mean():
    abar = alpha_bars(linear_betas(100)).double()
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(3, 5, 2, generator=g, dtype=torch.float64), torch.randn(3, 5, 2, generator=g,
                                                                                 dtype=torch.float64)
    for t in (1, 2, 50, 100):
        a, a_prev = abar[t - 1].item(), (abar[t - 2].item() if t > 1 else 1.0)
        alpha, beta = a / a_prev, 1 - a / a_prev
        x_t = q_sample(x0, torch.full((3, 5), a, dtype=torch.float64), eps)
        # q(x_{t-1} | x_t, x_0) has mean
        # sqrt(abar_{t-1}) beta / (1 - abar) x0 + sqrt(alpha) (1 - abar_{t-1}) / (1 - abar) x_t
        posterior = math.sqrt(a_prev) * beta / (1 - a) * x0 + math.sqrt(alpha) * (1 - a_prev) / (1 - a) * x_t
        assert torch.allclose(posterior_step(x_t, eps, a, a_prev, None), posterior, atol=1e-10), t
        z = torch.ones_like(x0)
        for variance, var in (("beta", beta), ("posterior", beta * (1 - a_prev) / (1 - a))):
            stepped = posterior_step(x_t, eps, a, a_prev, z, variance)
            assert torch.allclose(stepped - posterior, torch.full_like(x0, math.sqrt(var)), atol=1e-10)


def test_clipping_the_predicted_x0_changes_nothing_inside_the_range_and_bounds_the_last_step():
    abar = alpha_bars(linear_betas(100)).double()
    g = torch.Generator().manual_seed(2)
    x, eps, z = (torch.randn(2, 6, 3, generator=g, dtype=torch.float64) for _ in range(3))
    wide = (torch.full((3,), -1e9, dtype=torch.float64), torch.full((3,), 1e9, dtype=torch.float64))
    for t in (1, 30, 100):
        a, a_prev = abar[t - 1].item(), (abar[t - 2].item() if t > 1 else 1.0)
        assert torch.allclose(posterior_step(x, eps, a, a_prev, z, "posterior", wide),
                              posterior_step(x, eps, a, a_prev, z, "posterior"), atol=1e-9)
    narrow = (torch.tensor([-0.5, 0.0, 0.0], dtype=torch.float64), torch.tensor([0.5, 1.0, 0.0], dtype=torch.float64))
    last = posterior_step(x, eps, abar[0].item(), 1.0, None, "beta", narrow)  # the last step's mean is x_0 itself
    x0 = (x - math.sqrt(1 - abar[0].item()) * eps) / math.sqrt(abar[0].item())
    assert torch.equal(last, torch.clamp(x0, *narrow))


def test_respacing_keeps_the_schedule_and_visits_t_and_one():
    assert torch.equal(respaced(0, 100), torch.arange(1, 101)) and torch.equal(respaced(500, 100), torch.arange(1, 101))
    taus = respaced(10, 100)
    assert len(taus) == 10 and taus[0] == 1 and taus[-1] == 100 and bool((taus[1:] > taus[:-1]).all())
    betas = linear_betas(100)
    abar = alpha_bars(betas)
    current, previous = step_coefficients(abar, respaced(0, 100))
    assert torch.allclose(1 - current / previous, betas, rtol=1e-12)  # all steps: the original betas
    current, previous = step_coefficients(abar, taus)
    assert previous[0] == 1 and torch.equal(previous[1:], current[:-1])


def test_the_denoising_loss_is_a_mean_square_per_member():
    eps, pred = torch.zeros(2, 3, 1, 2, 2), torch.ones(2, 3, 1, 2, 2)
    pred[1] *= 3
    assert torch.equal(denoising_loss(eps, pred), torch.tensor([1.0, 9.0]))


# ---- the objective with hand-made noise networks ---------------------------------------------------------

def gaussian_denoiser(std, timesteps):
    """The exact E[eps | x_t] for data N(0, std^2 I): sqrt(1 - abar) x_t / (abar std^2 + 1 - abar)."""
    abar = alpha_bars(linear_betas(timesteps))

    def noise(x, t):
        a = abar[(t * timesteps).round().long() - 1].to(x).unsqueeze(-1)
        return (1 - a).sqrt() * x / (a * std**2 + 1 - a)
    return noise


def ddpm(data, **settings):
    return DDPM(DDPMConfig(**settings), data)


def streams(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def chain_variance(std, timesteps, steps, variance):
    """Var(x_0) of the sampler driven by the exact denoiser of N(0, std^2): every step is linear,
    x_{t-1} = a x_t + sigma z, so the variance follows v <- a^2 v + sigma^2 from v = 1."""
    current, previous = step_coefficients(alpha_bars(linear_betas(timesteps)), respaced(steps, timesteps))
    v = 1.0
    for i in reversed(range(len(current))):
        a, a_prev = current[i].item(), previous[i].item()
        k = math.sqrt(1 - a) / (a * std**2 + 1 - a)  # eps_hat = k x_t
        beta = 1 - a / a_prev
        gain = (1 - beta / math.sqrt(1 - a) * k) / math.sqrt(a / a_prev)
        noise = 0.0 if i == 0 else (beta if variance == "beta" else beta * (1 - a_prev) / (1 - a))
        v = gain**2 * v + noise
    return v


@pytest.mark.parametrize("steps,variance", [(0, "beta"), (0, "posterior"), (20, "beta"), (20, "posterior")])
@pytest.mark.parametrize("std", [1.0, 0.3])
def test_the_sampler_with_the_exact_denoiser_of_gaussian_data_has_the_chains_variance(steps, variance, std):
    objective = ddpm(torch.zeros(8, 2), standardize=False, sampling_steps=steps, variance=variance)
    objective.rng = streams(0)
    with torch.no_grad():
        x = objective.sample(Nets({"noise": gaussian_denoiser(std, 100)}), 20_000)
    assert x.shape == (1, 20_000, 2)
    assert x.mean().abs().item() < 0.03 and x.var().item() == pytest.approx(chain_variance(std, 100, steps, variance),
                                                                            rel=0.03)
    if steps == 0:  # all T steps of an exact denoiser land near the data's law
        assert x.std().item() == pytest.approx(std, rel=0.05 if std == 1 else 0.1)


def test_the_loss_draws_t_uniformly_over_1_to_T_and_feeds_t_over_T():
    seen = []

    def noise(x, t):
        seen.append(t)
        return torch.zeros_like(x)
    objective = ddpm(torch.randn(64, 2), timesteps=25)
    objective.rng = streams(0, 1)
    loss = objective.loss(Nets({"noise": noise}), torch.randn(2, 4000, 2))
    t = seen[0] * 25
    assert t.shape == (2, 4000) and torch.allclose(t, t.round())
    assert set(t.round().long().unique().tolist()) == set(range(1, 26))
    assert loss.shape == (2,) and torch.allclose(loss, torch.ones(2), atol=0.05)  # E eps^2 = 1 against a zero network


def test_sampler_shapes_nfe_and_member_streams():
    images = torch.rand(16, 1, 4, 4)
    objective = ddpm(images, timesteps=50, sampling_steps=7)
    assert objective.nfe() == 7 and ddpm(images, timesteps=50).nfe() == 50
    calls = []

    def noise(x, t):  # a network that treats every member alike
        calls.append(x.shape)
        return 0.1 * x
    nets = Nets({"noise": noise}, bounds=(0.0, 1.0))
    objective.rng = streams(3, 4)
    both = objective.sample(nets, 5)
    assert both.shape == (2, 5, 1, 4, 4) and len(calls) == 7 and float(both.min()) >= 0 and float(both.max()) <= 1
    objective.rng = streams(4)
    alone = objective.sample(nets, 5)
    assert torch.equal(alone[0], both[1]) and not torch.equal(both[0], both[1])
