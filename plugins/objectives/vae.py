"""The Gaussian variational autoencoder (Kingma & Welling 2014).

An encoder maps x to q(z | x) = N(mu(x), diag exp(logvar(x))) over a latent of ``latent_dim``; a
decoder maps z to the mean of p(x | z) = N(decoder(z), sigma^2 I), sigma fixed (a setting) or
learned (one scalar per member); the prior is p(z) = N(0, I). One update trains both on the
negative ELBO, estimated with one reparameterised z = mu + exp(logvar / 2) eps per sample:

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))  (nats per sample, summed over coordinates)

Samples are decoder means of z ~ N(0, I) (one network evaluation), squashed into the data's
bounds when the data has bounds (images).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
from torch import Tensor

from benchbench import Nets, Network, Objective, ObjectiveConfig, Output, Update, hookimpl, param

LOG_2PI = math.log(2 * math.pi)


# ---- the math: pure tensor functions ---------------------------------------------------------------

def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) = 1/2 sum (mu^2 + exp(logvar) - 1 - logvar), summed over
    the last dimension."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)


def gaussian_log_likelihood(x: Tensor, mean: Tensor, log_std: Tensor | float, dims: int) -> Tensor:
    """log N(x; mean, sigma^2 I), sigma = exp(log_std) (broadcast), summed over the last ``dims``
    dimensions (a sample's coordinates)."""
    log_std = torch.as_tensor(log_std, dtype=x.dtype, device=x.device)
    per = -0.5 * ((x - mean) * torch.exp(-log_std)).pow(2) - log_std - 0.5 * LOG_2PI
    return per.flatten(-dims).sum(-1)


def reparameterise(mu: Tensor, logvar: Tensor, eps: Tensor) -> Tensor:
    """z = mu + exp(logvar / 2) eps."""
    return mu + (0.5 * logvar).exp() * eps


def elbo(x: Tensor, mean: Tensor, log_std: Tensor | float, mu: Tensor, logvar: Tensor,
         dims: int) -> tuple[Tensor, Tensor]:
    """One-sample ELBO estimate log p(x | z) - KL(q(z | x) || p(z)) per sample, and its KL term."""
    kl = gaussian_kl(mu, logvar)
    return gaussian_log_likelihood(x, mean, log_std, dims) - kl, kl


# ---- the objective -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class VAEConfig(ObjectiveConfig):
    """The prior is N(0, I) of ``latent_dim`` dimensions (the ELBO's); Adam's betas are Adam's own (0.9, 0.999)."""

    architecture: Literal["mlp", "dcgan"] = param(
        "mlp", "encoder and decoder: ReLU MLPs, or (images) DCGAN-style convolutions sized from the data's shape")
    hidden: tuple[int, ...] = param((128, 128), "decoder hidden widths (mlp)", gt=0)
    channels: int = param(64, "dcgan: channels of the widest-resolution layer (doubling per halving)", gt=0, le=4096)
    latent_dim: int = param(2, "dimension of the latent z", gt=0, le=100_000)
    encoder_hidden: tuple[int, ...] = param((128, 128), "encoder hidden widths (mlp)", gt=0)
    lr: float = param(1e-3, "learning rate of the encoder, decoder and observation sigma", gt=0)
    observation_std: Literal["fixed", "learned"] = param(
        "learned", "sigma of p(x | z) = N(decoder(z), sigma^2 I): fixed at `std`, or learned (one per member, "
                   "starting at `std` times exp(u), u ~ U(-1, 1) from the member's init stream)")
    std: float = param(0.1, "the observation sigma (fixed), or its scale at initialisation (learned)", gt=0)


class VAE(Objective):
    """An encoder and a decoder trained together on the negative ELBO; samples are decoder means."""

    name = "vae"
    Config = VAEConfig
    diagnostics = (
        Output("elbo", "theory", "higher", "ELBO on held-out data (nats per sample; one z per sample)"),
        Output("elbo_kl", "theory", "none", "the ELBO's KL(q(z|x) || N(0, I)) on held-out data (nats per sample)"),
    )

    def __init__(self, config: VAEConfig, data: Tensor):
        super().__init__(config, data)
        self.shape = tuple(data.shape[1:])

    def networks(self, dataset) -> tuple[Network, ...]:
        cfg, latent = self.config, self.config.latent_dim
        found = [Network("encoder", self.shape, (2 * latent,), tuple(cfg.encoder_hidden), cfg.architecture,
                         cfg.channels),
                 Network("decoder", (latent,), self.shape, tuple(cfg.hidden), cfg.architecture, cfg.channels,
                         squash=True)]
        if cfg.observation_std == "learned":  # one number per member: a 1 -> 1 linear map of a zero input
            found.append(Network("log_std", (1,), (1,), ()))
        return tuple(found)

    def updates(self) -> tuple[Update, ...]:
        learned = ("log_std",) if self.config.observation_std == "learned" else ()
        return (Update("model", ("encoder", "decoder", *learned), self.loss),)

    def log_std(self, nets: Nets, real: Tensor) -> Tensor | float:
        """log sigma: ``[M, 1, 1...]`` per member (learned) or a float (fixed)."""
        if self.config.observation_std == "fixed":
            return math.log(self.config.std)
        zero = torch.zeros(real.shape[0], 1, 1, dtype=real.dtype, device=real.device)
        return math.log(self.config.std) + nets.log_std(zero).reshape(real.shape[0], 1, *([1] * len(self.shape)))

    def evaluate(self, nets: Nets, real: Tensor) -> tuple[Tensor, Tensor]:
        """(ELBO, KL) per member, means over the batch ``real`` ``[M, B, *shape]``; eps from the members' streams."""
        latent = self.config.latent_dim
        mu, logvar = nets.encoder(real).split(latent, -1)
        z = reparameterise(mu, logvar, self.normal(real.shape[1], latent).to(real))
        value, kl = elbo(real, nets.decoder(z), self.log_std(nets, real), mu, logvar, len(self.shape))
        return value.mean(1), kl.mean(1)

    def loss(self, nets: Nets, real: Tensor) -> Tensor:
        return -self.evaluate(nets, real)[0]

    def sample(self, nets: Nets, n: int) -> Tensor:
        return nets.decoder(self.normal(n, self.config.latent_dim))

    def diagnose_networks(self, nets: Nets, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        value, kl = self.evaluate(nets, real)
        return {"elbo": value, "elbo_kl": kl}


@hookimpl
def benchbench_objectives():
    return [VAE]
