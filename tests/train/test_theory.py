"""The optimal-critic theory of Goodfellow et al. (2014), checked numerically: for fixed densities
p (data) and q (generator), a trained critic approaches D* = p / (p + q), and V(D*, G) approaches
-log 4 + 2 JSD(p || q), computed here by quadrature."""

import math

import torch

from benchbench.nets.models import StackedMLP
from benchbench.plan.cells import stream
from benchbench_plugins.objectives.gan import NonSaturating, gan_value


def normal_log_pdf(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)


def test_trained_critic_approaches_optimal_critic_and_value_bound():
    torch.manual_seed(0)
    p_mean, q_mean, std = 0.0, 1.5, 1.0
    critic = StackedMLP([1, 32, 32, 1], [stream(0, "init")])
    objective = NonSaturating(NonSaturating.Config(), torch.zeros(1, 1))
    optimizer = torch.optim.Adam(critic.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for step in range(1500):
        real = (p_mean + std * torch.randn(1, 512, 1, generator=g))
        fake = (q_mean + std * torch.randn(1, 512, 1, generator=g))
        loss = objective.critic_loss(critic, real, fake).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    x = torch.linspace(-6, 7.5, 2001)
    log_p, log_q = normal_log_pdf(x, p_mean, std), normal_log_pdf(x, q_mean, std)
    optimal = torch.sigmoid(log_p - log_q)  # p / (p + q)
    with torch.no_grad():
        learned = torch.sigmoid(critic(x.reshape(1, -1, 1))).reshape(-1)
    weight = 0.5 * (log_p.exp() + log_q.exp())  # where the samples are
    error = torch.trapezoid(weight * (learned - optimal).abs(), x).item()
    assert error < 0.02, f"mean |D - D*| = {error:.3f}"

    log_m = torch.logaddexp(log_p, log_q) - math.log(2)
    jsd = 0.5 * torch.trapezoid(log_p.exp() * (log_p - log_m), x) + 0.5 * torch.trapezoid(log_q.exp() * (log_q - log_m), x)
    with torch.no_grad():
        real = p_mean + std * torch.randn(1, 200_000, 1, generator=g)
        fake = q_mean + std * torch.randn(1, 200_000, 1, generator=g)
        value = gan_value(critic(real), critic(fake)).item()
    bound = -math.log(4) + 2 * jsd.item()
    assert value <= bound + 0.01  # no critic beats the optimal one (up to sampling error)
    assert abs(value - bound) < 0.02, f"V = {value:.4f}, -log 4 + 2 JSD = {bound:.4f}"
