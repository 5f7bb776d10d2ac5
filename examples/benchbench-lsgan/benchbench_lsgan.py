"""Least-squares GAN (Mao et al. 2017) as a benchbench objective.

The critic's raw output D(x) (no sigmoid) regresses onto targets: ``b`` for real samples, ``a``
for generated ones, and the generator pulls D(G(z)) towards ``c``:

    critic:    1/2 E_x[(D(x) - b)^2] + 1/2 E_z[(D(G(z)) - a)^2]
    generator: 1/2 E_z[(D(G(z)) - c)^2]

With the defaults a = 0, b = c = 1 (the paper's 0-1 coding) the optimal critic for a fixed
generator is D*(x) = p_data(x) / (p_data(x) + p_g(x)), the same as the GAN's D*.
Every loss keeps one value per stacked member: shape ``[M]``.
"""

from __future__ import annotations

import dataclasses

from torch import Tensor

from benchbench import Critic, CriticConfig, Objective, Output, hookimpl, param


@dataclasses.dataclass(frozen=True)
class LSGANConfig(CriticConfig):
    fake_target: float = param(0.0, "a: the critic's target for generated samples")
    real_target: float = param(1.0, "b: the critic's target for real samples")
    generator_target: float = param(1.0, "c: the value the generator wants the critic to give its samples")


def squared_error(output: Tensor, target: float) -> Tensor:
    """1/2 E[(output - target)^2] per member: critic outputs ``[M, B, 1]`` -> ``[M]``."""
    return 0.5 * ((output - target) ** 2).flatten(1).mean(1)


class LeastSquares(Objective):
    """The least-squares GAN: a critic with a regression loss instead of a classifier's."""

    name = "lsgan"
    Config = LSGANConfig
    diagnostics = (Output("lsgan_critic_gap", "theory", "none",
                          "E[D(x)] - E[D(G(z))] of the trained critic on held-out samples"),)

    def critic_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        cfg = self.config
        return squared_error(critic(real), cfg.real_target) + squared_error(critic(fake), cfg.fake_target)

    def generator_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        return squared_error(critic(fake), self.config.generator_target)

    def diagnose(self, critic: Critic, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        gap = critic(real).flatten(1).mean(1) - critic(fake).flatten(1).mean(1)
        return {"lsgan_critic_gap": gap}


@hookimpl
def benchbench_objectives():
    return [LeastSquares]
