"""The Gaussian VAE: its KL term, likelihood and ELBO against torch.distributions and an exact linear-Gaussian model."""

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from benchbench import Nets
from benchbench_plugins.objectives.vae import VAE, VAEConfig, elbo, gaussian_kl, gaussian_log_likelihood, reparameterise


def test_the_kl_term_is_the_kl_of_two_diagonal_gaussians():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(3, 7, 4, generator=g, dtype=torch.float64), torch.randn(3, 7, 4, generator=g,
                                                                                    dtype=torch.float64)
    q = Independent(Normal(mu, (0.5 * logvar).exp()), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    assert torch.allclose(gaussian_kl(mu, logvar), kl_divergence(q, p), rtol=1e-12)
    assert torch.equal(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_the_likelihood_is_a_gaussians_log_density_summed_over_a_samples_coordinates():
    g = torch.Generator().manual_seed(1)
    x, mean = torch.randn(2, 5, 1, 3, 3, generator=g, dtype=torch.float64), torch.randn(2, 5, 1, 3, 3, generator=g,
                                                                                        dtype=torch.float64)
    log_std = torch.tensor([-1.0, 0.5], dtype=torch.float64).reshape(2, 1, 1, 1, 1)  # one sigma per member
    expected = Independent(Normal(mean, log_std.exp().expand_as(mean)), 3).log_prob(x)
    assert torch.allclose(gaussian_log_likelihood(x, mean, log_std, 3), expected, rtol=1e-12)
    assert torch.allclose(gaussian_log_likelihood(x[0], mean[0], -1.0, 3), expected[0], rtol=1e-12)


def linear_gaussian(d=3, latent=2, sigma=0.4, seed=2):
    """x = W z + b + sigma e with orthogonal columns of W: the exact posterior is diagonal,
    q(z|x) = N(S W^T (x - b) / sigma^2, S), S = (I + W^T W / sigma^2)^-1."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, latent, generator=g, dtype=torch.float64))
    w = q * torch.tensor([1.5, 0.7], dtype=torch.float64)[:latent]
    b = torch.randn(d, generator=g, dtype=torch.float64)
    posterior_var = 1 / (1 + (w * w).sum(0) / sigma**2)  # [latent]
    marginal = MultivariateNormal(b, w @ w.T + sigma**2 * torch.eye(d, dtype=torch.float64))
    return w, b, sigma, posterior_var, marginal


def sigma_points(latent):
    """eps in {+-sqrt(L) e_i}, equal weights: the exact expectation of a quadratic function of eps ~ N(0, I)."""
    eye = torch.eye(latent, dtype=torch.float64) * math.sqrt(latent)
    return torch.cat([eye, -eye])


def test_the_elbo_of_the_exact_posterior_is_the_log_likelihood():
    w, b, sigma, posterior_var, marginal = linear_gaussian()
    x = marginal.sample((2, 50))  # [M, B, d]
    mu = ((x - b) @ w) * posterior_var / sigma**2
    logvar = posterior_var.log().expand_as(mu)

    def expected_elbo(mu, logvar):  # E_q over z, exact: log p(x|z) is quadratic in eps
        values = [elbo(x, reparameterise(mu, logvar, eps) @ w.T + b, math.log(sigma), mu, logvar, 1)
                  for eps in sigma_points(2)]
        return torch.stack([v for v, _ in values]).mean(0), values[0][1]
    value, kl = expected_elbo(mu, logvar)
    assert torch.allclose(value, marginal.log_prob(x), rtol=1e-10)  # the bound is tight at the true posterior
    assert torch.allclose(kl, gaussian_kl(mu, logvar))
    worse, _ = expected_elbo(mu + 0.3, logvar)  # any other q: strictly below, by KL(q || posterior)
    gap = gaussian_kl(0.3 / posterior_var.sqrt().expand_as(mu), torch.zeros_like(mu))  # KL of a shifted Gaussian
    assert torch.allclose(marginal.log_prob(x) - worse, gap, rtol=1e-8)


def test_the_objective_wires_encoder_decoder_and_sigma_into_the_elbo():
    w, b, sigma, posterior_var, marginal = linear_gaussian()
    w, b, posterior_var = w.float(), b.float(), posterior_var.float()
    x = marginal.sample((2, 400)).float()

    def encoder(x):
        mu = ((x - b) @ w) * posterior_var / sigma**2
        return torch.cat([mu, posterior_var.log().expand_as(mu)], -1)
    nets = Nets({"encoder": encoder, "decoder": lambda z: z @ w.T + b})
    objective = VAE(VAEConfig(latent_dim=2, observation_std="fixed", std=sigma), x[0])
    objective.rng = [torch.Generator().manual_seed(s) for s in (0, 1)]
    loss = objective.loss(nets, x)
    # the same estimate by hand: eps replayed from each member's stream
    mu, logvar = encoder(x).split(2, -1)
    eps = torch.stack([torch.randn(400, 2, generator=torch.Generator().manual_seed(s)) for s in (0, 1)])
    by_hand = elbo(x, nets.decoder(reparameterise(mu, logvar, eps)), math.log(sigma), mu, logvar, 1)[0].mean(1)
    assert loss.shape == (2,) and torch.allclose(-loss, by_hand, rtol=1e-6)
    assert torch.allclose(-loss, marginal.log_prob(x.double()).mean(1).float(), atol=0.1)  # tight in expectation
    objective.rng = [torch.Generator().manual_seed(s) for s in (0, 1)]
    found = objective.diagnose_networks(nets, x, x)
    assert torch.allclose(found["elbo"], -loss, rtol=1e-4)
    assert torch.allclose(found["elbo_kl"], gaussian_kl(encoder(x)[..., :2], encoder(x)[..., 2:]).mean(1))


def test_a_learned_sigma_is_one_number_per_member_from_the_log_std_network():
    objective = VAE(VAEConfig(latent_dim=2, observation_std="learned", std=0.5), torch.zeros(8, 1, 2, 2))
    assert {n.name for n in objective.networks(type("D", (), {"bounds": (0.0, 1.0)})())} == {"encoder", "decoder",
                                                                                          "log_std"}
    assert objective.updates()[0].networks == ("encoder", "decoder", "log_std")
    nets = Nets({"log_std": lambda zero: zero + torch.tensor([0.0, 1.0]).reshape(2, 1, 1)})
    log_std = objective.log_std(nets, torch.zeros(2, 3, 1, 2, 2))
    assert log_std.shape == (2, 1, 1, 1, 1)
    assert torch.allclose(log_std.flatten(), torch.tensor([math.log(0.5), math.log(0.5) + 1]))


def test_samples_are_decoder_means_of_prior_draws_from_the_member_streams():
    objective = VAE(VAEConfig(latent_dim=3), torch.zeros(8, 2))
    assert objective.nfe() == 1
    nets = Nets({"decoder": lambda z: z[..., :2] * 2})
    objective.rng = [torch.Generator().manual_seed(s) for s in (5, 6)]
    both = objective.sample(nets, 4)
    objective.rng = [torch.Generator().manual_seed(6)]
    alone = objective.sample(nets, 4)
    assert both.shape == (2, 4, 2) and torch.equal(alone[0], both[1])
    assert torch.equal(both[1], 2 * torch.randn(4, 3, generator=torch.Generator().manual_seed(6))[:, :2])


@pytest.mark.parametrize("key,value", [("latent_dim", 0), ("std", 0.0), ("observation_std", "free")])
def test_bad_settings_are_config_errors(key, value):
    from benchbench import ConfigError
    from benchbench.api.params import build
    with pytest.raises(ConfigError, match=key):
        build(VAEConfig, {key: value}, "objectives.vae")
