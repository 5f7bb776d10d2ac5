"""The GAN objectives of Goodfellow et al. (2014): the minimax game with the saturating
generator loss, and the non-saturating variant. Same critic, same fixed point.

Every log-probability comes from logits: log D = -softplus(-l), log(1 - D) = -softplus(l).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from benchbench import Critic, CriticConfig, Objective, Output, hookimpl

LOG4 = math.log(4.0)


def gan_value(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))] per member: logits ``[M, B, 1]`` -> ``[M]``."""
    return -F.softplus(-real_logits).flatten(1).mean(1) - F.softplus(fake_logits).flatten(1).mean(1)


def saturating_loss(fake_logits: Tensor) -> Tensor:
    """E_z[log(1 - D(G(z)))], which the minimax generator descends. Its gradient with respect to
    a logit is -D(G(z)): it vanishes where the critic confidently rejects a sample."""
    return -F.softplus(fake_logits).flatten(1).mean(1)


def non_saturating_loss(fake_logits: Tensor) -> Tensor:
    """-E_z[log D(G(z))]. Its gradient with respect to a logit is -(1 - D(G(z))): strongest where
    the critic rejects a sample."""
    return F.softplus(-fake_logits).flatten(1).mean(1)


class GAN(Objective):
    """A critic D = sigmoid(logit) ascending V(D, G); subclasses choose the generator loss."""

    Config = CriticConfig
    diagnostics = (
        Output("critic_value", "theory", "none", "V(D,G) of the trained critic on held-out samples"),
        Output("jsd_lower_bound", "theory", "none", "(V + log 4) / 2: any critic lower-bounds JSD(p_data, p_g)"),
    )

    def critic_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        return -gan_value(critic(real), critic(fake))

    def diagnose(self, critic: Critic, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        value = gan_value(critic(real), critic(fake))
        return {"critic_value": value, "jsd_lower_bound": (value + LOG4) / 2}


class Minimax(GAN):
    """Algorithm 1 as published: the generator descends E[log(1 - D(G(z)))] (saturating)."""

    name = "minimax"

    def generator_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        return saturating_loss(critic(fake))


class NonSaturating(GAN):
    """The generator descends -E[log D(G(z))] (the paper's practical recommendation)."""

    name = "nonsaturating"

    def generator_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        return non_saturating_loss(critic(fake))


@hookimpl
def benchbench_objectives():
    return [Minimax, NonSaturating]
