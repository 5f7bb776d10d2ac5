"""Conditional flow matching with straight paths: rectified flow (Lipman et al. 2023, "Flow Matching
for Generative Modeling"; Liu et al. 2022, "Flow Straight and Fast").

A velocity field v(x, t) is regressed onto the velocity of straight paths from noise to data:

    x0 ~ N(0, I),  x1 ~ p_data,  t ~ U[0, 1],  x_t = (1 - t) x0 + t x1
    loss = E || v(x_t, t) - (x1 - x0) ||^2        (mean squared error per member)

whose minimiser is the marginal field v*(x, t) = E[x1 - x0 | x_t = x]; integrating dx/dt = v*(x, t)
from t = 0 (a draw of N(0, I)) to t = 1 gives a sample of p_data. Samples integrate the learned
field with ``sampling_steps`` Euler or midpoint steps (``solver``): ``sampling_steps`` or twice as
many network evaluations per sample. Both are sampling settings (``param(..., sampling=True)``):
they change how a trained model is sampled, not how it trains.

The velocity network takes the time as an input: an MLP (the time one more input feature) for
vectors, or the core's time-conditioned image-to-image convolutional network
(``architecture: dcgan``) for images. Its output is not squashed: a velocity is unbounded.
The noise x0 has the data's shape (no generator settings); Adam's betas are ObjectiveConfig's,
Adam's own (0.9, 0.999), not the GANs' (0.5, 0.999).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import Tensor

from benchbench import Nets, Network, Objective, ObjectiveConfig, Output, Update, hookimpl, param


@dataclasses.dataclass(frozen=True)
class FlowConfig(ObjectiveConfig):
    architecture: Literal["mlp", "dcgan"] = param(
        "mlp", "velocity network: a ReLU MLP with the time as one more input, or (images) a time-conditioned "
               "convolutional encoder-decoder sized from the data's shape")
    hidden: tuple[int, ...] = param((256, 256), "velocity network hidden widths (mlp)", gt=0)
    channels: int = param(64, "dcgan: channels of the widest-resolution layer (doubling per halving)", gt=0, le=4096)
    lr: float = param(1e-3, "velocity network learning rate", gt=0)
    solver: Literal["euler", "midpoint"] = param("euler", "ODE solver of the sampler (midpoint: 2 network "
                                                          "evaluations per step)", sampling=True)
    sampling_steps: int = param(50, "solver steps from t=0 (noise) to t=1 (data)", ge=1, le=100_000, sampling=True)


def interpolate(x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
    """x_t = (1 - t) x0 + t x1: samples ``[M, B, *shape]``, times ``t`` ``[M, B]``."""
    t = t.reshape(*t.shape, *[1] * (x1.ndim - 2))
    return (1 - t) * x0 + t * x1


def flow_matching_loss(velocity, x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
    """E || v(x_t, t) - (x1 - x0) ||^2 / dim per member: ``[M, B, *shape]`` -> ``[M]``."""
    error = velocity(interpolate(x0, x1, t), t) - (x1 - x0)
    return (error ** 2).flatten(1).mean(1)


def integrate(velocity, x: Tensor, steps: int, solver: str) -> Tensor:
    """Solve dx/dt = v(x, t) from t = 0 to 1 in ``steps`` equal steps, from ``x`` ``[M, n, *shape]``."""
    members, n = x.shape[:2]
    dt = 1.0 / steps
    for k in range(steps):
        t = torch.full((members, n), k * dt, dtype=x.dtype, device=x.device)
        if solver == "euler":
            x = x + dt * velocity(x, t)
        else:  # midpoint: the velocity at the half step, reached with an Euler half step
            half = x + (dt / 2) * velocity(x, t)
            x = x + dt * velocity(half, t + dt / 2)
    return x


class FlowMatching(Objective):
    """Rectified flow: a velocity field trained by flow matching, sampled with an ODE solver."""

    name = "flow"
    Config = FlowConfig
    diagnostics = (Output("flow_matching_loss", "theory", "lower",
                          "the flow-matching loss E||v(x_t, t) - (x1 - x0)||^2 per dimension on held-out data"),)

    def __init__(self, config: FlowConfig, data: Tensor):
        super().__init__(config, data)
        self.shape = tuple(data.shape[1:])

    def networks(self, dataset) -> tuple[Network, ...]:
        cfg, shape = self.config, tuple(dataset.shape)
        return (Network("velocity", shape, shape, tuple(cfg.hidden), cfg.architecture, cfg.channels, time=True),)

    def updates(self) -> tuple[Update, ...]:
        return (Update("model", ("velocity",), self.loss),)

    def loss(self, nets: Nets, real: Tensor) -> Tensor:
        """The flow-matching loss on data ``real`` ``[M, B, *shape]``: noise and times from the members' streams."""
        batch = real.shape[1]
        x0 = self.normal(batch, *self.shape).to(real.dtype)
        t = self.uniform(batch).to(real.dtype)
        return flow_matching_loss(nets.velocity, x0, real, t)

    def sample(self, nets: Nets, n: int) -> Tensor:
        x = self.normal(n, *self.shape)
        return integrate(nets.velocity, x, self.config.sampling_steps, self.config.solver)

    def nfe(self) -> int:
        return self.config.sampling_steps * (2 if self.config.solver == "midpoint" else 1)

    def diagnose_networks(self, nets: Nets, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        return {"flow_matching_loss": self.loss(nets, real)}


@hookimpl
def benchbench_objectives():
    return [FlowMatching]
