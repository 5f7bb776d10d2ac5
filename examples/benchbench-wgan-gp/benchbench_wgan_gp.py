"""WGAN-GP (Gulrajani et al. 2017) as a benchbench objective: a Wasserstein critic kept close to
1-Lipschitz by a gradient penalty.

    critic:    E_z[D(G(z))] - E_x[D(x)] + lambda E_x_hat[(||grad D(x_hat)||_2 - 1)^2]
    generator: -E_z[D(G(z))]

with x_hat = e x + (1 - e) G(z), e ~ U[0, 1] per sample. The penalty differentiates the critic
with respect to its input inside the loss (``torch.autograd.grad(..., create_graph=True)``, so
that the critic's update sees the penalty's own gradient), and draws ``e`` from the members' own
random streams (``self.uniform``): a member's result depends on its seed alone, not on the stack
it trains in nor on the global random state. Every loss keeps one value per member: ``[M]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor

from benchbench import Critic, CriticConfig, Objective, Output, hookimpl, param


@dataclasses.dataclass(frozen=True)
class WGANGPConfig(CriticConfig):
    # Inherited settings with the paper's defaults: redeclare the field with a new default.
    critic_steps: int = param(5, "k: critic updates per generator update (5 in the paper)", ge=1)
    lr: float = param(1e-4, "generator learning rate (Adam, 1e-4 in the paper)", gt=0)
    critic_lr: float = param(1e-4, "critic learning rate (Adam, 1e-4 in the paper)", gt=0)
    betas: tuple[float, float] = param((0.5, 0.9), "Adam betas ((0.5, 0.9) in the paper)", ge=0, le=0.9999)
    penalty: float = param(10.0, "lambda: weight of the gradient penalty", ge=0)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, e: Tensor) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] per member, x_hat = e real + (1 - e) fake: samples
    ``[M, B, *shape]``, weights ``e`` ``[M, B]`` -> ``[M]``. Differentiable with respect to the
    critic's parameters (``create_graph=True``)."""
    e = e.reshape(*e.shape, *[1] * (real.ndim - 2))
    x_hat = (e * real + (1 - e) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)  # each output sees its own x_hat
    return ((grad.flatten(2).norm(dim=2) - 1) ** 2).mean(1)


def critic_gap(critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
    """E[D(x)] - E[D(G(z))] per member: the critic's estimate of the Wasserstein-1 distance."""
    return critic(real).flatten(1).mean(1) - critic(fake).flatten(1).mean(1)


class WGANGP(Objective):
    """The Wasserstein GAN with gradient penalty."""

    name = "wgan-gp"
    Config = WGANGPConfig
    diagnostics = (Output("wasserstein_estimate", "theory", "none",
                          "E[D(x)] - E[D(G(z))] of the trained critic on held-out samples (a W1 estimate "
                          "when the critic is 1-Lipschitz)"),)

    def critic_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        e = self.uniform(real.shape[1])  # [M, B], member by member from its own stream
        return -critic_gap(critic, real, fake) + self.config.penalty * gradient_penalty(critic, real, fake, e)

    def generator_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        return -critic(fake).flatten(1).mean(1)

    def diagnose(self, critic: Critic, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        return {"wasserstein_estimate": critic_gap(critic, real, fake)}


@hookimpl
def benchbench_objectives():
    return [WGANGP]
