"""Denoising diffusion probabilistic models (Ho, Jain & Abbeel 2020), epsilon prediction.

Forward process: q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), abar_t = prod_{s<=t} (1 - beta_s),
with the linear schedule beta_1 = 1e-4 .. beta_T = 0.02 of the paper for T = 1000, scaled by
1000 / T for fewer steps (Nichol & Dhariwal 2021's scaling: T = 100 runs 1e-3 .. 0.2), so that
abar_T stays near zero. Training descends the simple loss
E_{t, x_0, eps} ||eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t / T)||^2 (mean over the
coordinates) with t uniform over {1..T}. Sampling is ancestral:
x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_theta(x_t, t / T)) / sqrt(alpha_t) + sigma_t z, with
sigma_t^2 = beta_t or the posterior variance beta_t (1 - abar_{t-1}) / (1 - abar_t), and no noise at
the last step. Fewer sampling steps than T respace the chain over a subsequence tau of {1..T}
(Nichol & Dhariwal 2021): beta_i = 1 - abar_{tau_i} / abar_{tau_{i-1}}.

The model works on standardised data (:mod:`.datascale`); its samples are mapped back and, for
data with bounds (images), clipped into them; for such data each step's predicted x_0 is clipped
into the bounds too (``clip_denoised``, as in Ho et al.'s sampler).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
from torch import Tensor

from benchbench import Nets, Network, Objective, ObjectiveConfig, Output, Update, hookimpl, param
from benchbench_plugins.objectives.datascale import DataScale

REFERENCE_STEPS = 1000  # the T the paper's schedule (1e-4 .. 0.02) is written for


# ---- the math: pure tensor functions ---------------------------------------------------------------

def linear_betas(steps: int, start: float = 1e-4, end: float = 0.02) -> Tensor:
    """beta_1..beta_T (float64, ``[T]``): linear from ``start`` to ``end`` scaled by 1000 / T, which
    must keep beta_T below 1 (T > 1000 ``end``)."""
    scale = REFERENCE_STEPS / steps
    if end * scale >= 1:
        raise ValueError(f"timesteps: the schedule scaled by 1000 / T reaches beta_T = {end * scale:.3g} >= 1; "
                         f"use at least {math.floor(REFERENCE_STEPS * end) + 1} steps (or a smaller beta_end)")
    return torch.linspace(start * scale, end * scale, steps, dtype=torch.float64)


def alpha_bars(betas: Tensor) -> Tensor:
    """abar_t = prod_{s<=t} (1 - beta_s), ``[T]`` (index t - 1 holds abar_t)."""
    return torch.cumprod(1 - betas, 0)


def q_sample(x0: Tensor, abar: Tensor, eps: Tensor) -> Tensor:
    """x_t = sqrt(abar) x0 + sqrt(1 - abar) eps: ``abar`` ``[M, B]`` (one per sample) broadcast over
    the sample's coordinates ``x0`` ``[M, B, *shape]``."""
    abar = abar.reshape(*abar.shape, *([1] * (x0.dim() - abar.dim())))
    return abar.sqrt() * x0 + (1 - abar).sqrt() * eps


def respaced(steps: int, timesteps: int) -> Tensor:
    """The timesteps tau_1 < ... < tau_S of a sampler of ``steps`` steps (long, ``[S]``): evenly spaced
    over {1..T}, always ending at T; all of {1..T} when ``steps`` is 0 or at least T."""
    if steps <= 0 or steps >= timesteps:
        return torch.arange(1, timesteps + 1)
    return torch.linspace(1, timesteps, steps, dtype=torch.float64).round().long().unique()


def step_coefficients(abar: Tensor, taus: Tensor) -> tuple[Tensor, Tensor]:
    """(abar_{tau_i}, abar_{tau_{i-1}}) for each step i of a sampler over ``taus`` (abar_{tau_0} = 1)."""
    current = abar[taus - 1]
    previous = torch.cat([torch.ones(1, dtype=abar.dtype), current[:-1]])
    return current, previous


def posterior_step(x: Tensor, eps: Tensor, abar: float, abar_prev: float, z: Tensor | None,
                   variance: Literal["beta", "posterior"] = "beta",
                   x0_range: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """One ancestral step x_t -> x_{t-1} from the predicted noise ``eps``: the mean
    (x_t - beta / sqrt(1 - abar) eps) / sqrt(alpha), alpha = abar / abar_prev, beta = 1 - alpha, plus
    sigma z with sigma^2 = beta ("beta") or beta (1 - abar_prev) / (1 - abar) ("posterior");
    ``z`` None: the mean alone (the last step). ``x0_range`` (low, high): the mean is instead the
    posterior mean of q(x_{t-1} | x_t, x_0) at the predicted x_0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)
    clipped into the range (Ho et al.'s sampler for bounded data); the same mean when nothing is clipped."""
    alpha = abar / abar_prev
    beta = 1 - alpha
    if x0_range is None:
        mean = (x - beta / math.sqrt(1 - abar) * eps) / math.sqrt(alpha)
    else:
        x0 = torch.clamp((x - math.sqrt(1 - abar) * eps) / math.sqrt(abar), *x0_range)
        mean = math.sqrt(abar_prev) * beta / (1 - abar) * x0 + math.sqrt(alpha) * (1 - abar_prev) / (1 - abar) * x
    if z is None:
        return mean
    var = beta if variance == "beta" else beta * (1 - abar_prev) / (1 - abar)
    return mean + math.sqrt(var) * z


def denoising_loss(eps: Tensor, predicted: Tensor) -> Tensor:
    """||eps - eps_theta||^2 averaged over the samples and coordinates of each member: ``[M, B, ...]`` -> ``[M]``."""
    return (eps - predicted).pow(2).flatten(1).mean(1)


# ---- the objective -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DDPMConfig(ObjectiveConfig):
    """The chain starts from N(0, I) in the data's shape; Adam's betas are Adam's own (0.9, 0.999)."""

    architecture: Literal["mlp", "dcgan"] = param(
        "mlp", "noise network: a ReLU MLP with the time as one more input, or (images) a time-conditioned "
               "convolutional encoder-decoder sized from the data's shape")
    hidden: tuple[int, ...] = param((256, 256, 256), "noise network hidden widths (mlp)", gt=0)
    channels: int = param(64, "dcgan: channels of the widest-resolution layer (doubling per halving)", gt=0, le=4096)
    lr: float = param(1e-3, "learning rate of the noise network", gt=0)
    timesteps: int = param(100, "T: diffusion steps; the paper's linear schedule (T = 1000) scaled by 1000 / T",
                           gt=1, le=100_000)
    beta_start: float = param(1e-4, "beta_1 of the schedule written for T = 1000 (scaled by 1000 / T)", gt=0, le=1)
    beta_end: float = param(0.02, "beta_T of the schedule written for T = 1000 (scaled by 1000 / T)", gt=0, le=1)
    standardize: bool = param(True, "train on the data centred and divided by its scale (RMS over coordinates)")
    sampling_steps: int = param(0, "ancestral steps of the sampler, respaced over {1..T}; 0: all T", ge=0,
                                le=100_000, sampling=True)
    variance: Literal["beta", "posterior"] = param("beta", "sampler noise sigma_t^2: beta_t, or the posterior "
                                                           "variance beta_t (1 - abar_{t-1}) / (1 - abar_t)",
                                                   sampling=True)
    clip_denoised: bool = param(True, "data with bounds (images): clip each step's predicted x_0 into them",
                                sampling=True)

    def __post_init__(self):
        if self.beta_end < self.beta_start:
            raise ValueError(f"beta_end: must be >= beta_start ({self.beta_start}), got {self.beta_end}")
        linear_betas(self.timesteps, self.beta_start, self.beta_end)  # beta_T < 1, or a ValueError naming timesteps


class DDPM(Objective):
    """One noise network eps_theta(x_t, t / T), trained on the simple loss, sampled ancestrally."""

    name = "ddpm"
    Config = DDPMConfig
    diagnostics = (
        Output("denoising_loss", "theory", "lower", "the training loss ||eps - eps_theta||^2 (mean per coordinate) "
                                                    "on held-out data, t uniform over {1..T}"),
    )
    def __init__(self, config: DDPMConfig, data: Tensor):
        super().__init__(config, data)
        self.shape = tuple(data.shape[1:])
        self.scale = DataScale(data, config.standardize)
        self.abar = alpha_bars(linear_betas(config.timesteps, config.beta_start, config.beta_end))

    def networks(self, dataset) -> tuple[Network, ...]:
        cfg = self.config
        return (Network("noise", self.shape, self.shape, tuple(cfg.hidden), cfg.architecture, cfg.channels,
                        time=True),)

    def updates(self) -> tuple[Update, ...]:
        return (Update("model", ("noise",), self.loss),)

    def loss(self, nets: Nets, real: Tensor) -> Tensor:
        """The simple loss on ``real`` ``[M, B, *shape]``: t, then eps, from the members' streams."""
        x0 = self.scale.to_model(real)
        T, batch = self.config.timesteps, x0.shape[1]
        t = (self.uniform(batch) * T).long().clamp(max=T - 1) + 1  # [M, B], uniform over {1..T}
        eps = self.normal(batch, *self.shape).to(x0)
        x_t = q_sample(x0, self.abar.to(x0)[t - 1], eps)
        return denoising_loss(eps, nets.noise(x_t, t.to(x0.dtype) / T))

    def nfe(self) -> int:
        return len(respaced(self.config.sampling_steps, self.config.timesteps))

    def sample(self, nets: Nets, n: int) -> Tensor:
        cfg = self.config
        taus = respaced(cfg.sampling_steps, cfg.timesteps)
        abar, abar_prev = step_coefficients(self.abar, taus)
        x = self.normal(n, *self.shape)  # x_T ~ N(0, I)
        bounds, x0_range = nets.bounds, None  # the data's: samples are clipped into them
        if bounds is not None and cfg.clip_denoised:  # the data's bounds on the model's scale
            x0_range = tuple(self.scale.to_model(torch.full(self.shape, float(b))).to(x) for b in bounds)
        for i in reversed(range(len(taus))):
            t = torch.full(x.shape[:2], float(taus[i]) / cfg.timesteps, dtype=x.dtype, device=x.device)
            z = self.normal(n, *self.shape).to(x) if i > 0 else None
            x = posterior_step(x, nets.noise(x, t), float(abar[i]), float(abar_prev[i]), z, cfg.variance, x0_range)
        x = self.scale.to_data(x)
        return x.clamp(*bounds) if bounds is not None else x

    def diagnose_networks(self, nets: Nets, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        return {"denoising_loss": self.loss(nets, real)}


@hookimpl
def benchbench_objectives():
    return [DDPM]
