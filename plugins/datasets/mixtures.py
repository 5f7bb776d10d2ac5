"""Gaussian-mixture datasets with exact densities: the 2-D ring and grid of the mode-collapse
literature (VEEGAN, PacGAN) and 1-D mixtures for exact divergences."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from benchbench import Dataset, Modes, hookimpl, param


class GaussianMixture(Dataset):
    """Isotropic Gaussian components ``N(centers[k], stds[k]^2 I)`` with probabilities ``weights``."""

    def __init__(self, config, centers: Tensor, stds: Tensor, weights: Tensor):
        super().__init__(config)
        assert centers.ndim == 2 and stds.shape == weights.shape == centers.shape[:1]
        self.centers = centers.to(torch.float32)
        self.stds = stds.to(torch.float32)
        self.weights = (weights / weights.sum()).to(torch.float32)
        self.shape = (centers.shape[1],)
        self._on_device: dict[torch.device, tuple[Tensor, Tensor, Tensor]] = {}

    def _tensors(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        if device not in self._on_device:
            self._on_device[device] = (self.centers.to(device), self.stds.to(device), self.weights.to(device))
        return self._on_device[device]

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.sample_members(n, [generator])[0]

    def sample_members(self, n: int, generators: list[torch.Generator]) -> Tensor:
        """Each member draws its components and noise from its own generator; the arithmetic is
        done once for the whole stack (the same numbers as member by member, faster)."""
        device = generators[0].device
        centers, stds, weights = self._tensors(device)
        k = torch.stack([torch.multinomial(weights, n, replacement=True, generator=g) for g in generators])
        noise = torch.stack([torch.randn(n, self.shape[0], generator=g, device=device) for g in generators])
        return centers[k] + stds[k, None] * noise

    def log_prob(self, x: Tensor) -> Tensor:
        centers, stds, weights = self._tensors(x.device)
        d = self.shape[0]
        d2 = ((x[:, None, :] - centers[None]) ** 2).sum(-1)  # [n, K]
        log_components = -0.5 * d2 / stds**2 - d * torch.log(stds) - 0.5 * d * math.log(2 * math.pi)
        return torch.logsumexp(log_components + torch.log(weights), dim=1)

    def modes(self) -> Modes:
        return Modes(self.centers, self.stds, self.weights)


@dataclasses.dataclass(frozen=True)
class RingConfig:
    modes: int = param(8, "number of Gaussians, equally spaced on the circle", ge=1, le=10_000)
    radius: float = param(1.0, "radius of the circle (PacGAN: 1)", gt=0)
    std: float = param(0.01, "standard deviation of each Gaussian (PacGAN: 0.01)", gt=0)


class Ring(GaussianMixture):
    """Gaussians at angles 2 pi k / modes, k = 0..modes-1 (not linspace(0, 2 pi, modes): that
    repeats the first mode)."""

    name = "ring"
    Config = RingConfig

    def __init__(self, config: RingConfig):
        angles = 2 * math.pi * torch.arange(config.modes, dtype=torch.float64) / config.modes
        centers = config.radius * torch.stack([angles.cos(), angles.sin()], dim=1)
        ones = torch.ones(config.modes)
        super().__init__(config, centers, ones * config.std, ones)


@dataclasses.dataclass(frozen=True)
class GridConfig:
    side: int = param(5, "Gaussians per side of the square grid", ge=1, le=100)
    spacing: float = param(2.0, "distance between neighbouring centres", gt=0)
    std: float = param(0.05, "standard deviation of each Gaussian", gt=0)


class Grid(GaussianMixture):
    """side x side Gaussians centred on the origin: {-4, -2, 0, 2, 4}^2 by default."""

    name = "grid"
    Config = GridConfig

    def __init__(self, config: GridConfig):
        axis = (torch.arange(config.side, dtype=torch.float64) - (config.side - 1) / 2) * config.spacing
        centers = torch.cartesian_prod(axis, axis)
        ones = torch.ones(len(centers))
        super().__init__(config, centers, ones * config.std, ones)


def _mixture_1d(config) -> tuple[Tensor, Tensor, Tensor]:
    k = len(config.means)
    stds = config.stds * k if len(config.stds) == 1 else config.stds
    weights = config.weights or (1.0,) * k
    return (torch.tensor(config.means, dtype=torch.float64)[:, None], torch.tensor(stds),
            torch.tensor(weights, dtype=torch.float64))


def _check_1d(config) -> None:
    k = len(config.means)
    if k == 0:
        raise ValueError("means: give at least one mean")
    if len(config.stds) not in (1, k):
        raise ValueError(f"stds: give one std or one per mean ({k}), got {len(config.stds)}")
    if config.weights and len(config.weights) != k:
        raise ValueError(f"weights: give one weight per mean ({k}), got {len(config.weights)}")


@dataclasses.dataclass(frozen=True)
class Gaussian1dConfig:
    means: tuple[float, ...] = param((4.0,), "component means")
    stds: tuple[float, ...] = param((0.5,), "component standard deviations (one, or one per mean)", gt=0)
    weights: tuple[float, ...] = param((), "component probabilities (empty: equal)", gt=0)

    def __post_init__(self):
        _check_1d(self)


@dataclasses.dataclass(frozen=True)
class Mixture1dConfig(Gaussian1dConfig):
    means: tuple[float, ...] = param((-2.0, 2.0), "component means")


class Gaussian1d(GaussianMixture):
    """The textbook example of the GAN paper's Figure 1: a 1-D Gaussian, N(4, 0.5^2) by default,
    far from where the generator starts; any 1-D mixture with means/stds/weights."""

    name = "gaussian-1d"
    Config = Gaussian1dConfig

    def __init__(self, config):
        super().__init__(config, *_mixture_1d(config))


class Mixture1d(Gaussian1d):
    """Two well-separated 1-D Gaussians (means -2 and 2, std 0.5): mode dropping in one dimension."""

    name = "mixture-1d"
    Config = Mixture1dConfig


@hookimpl
def benchbench_datasets():
    return [Ring, Grid, Gaussian1d, Mixture1d]
