"""Generative moment-matching networks (Li, Swersky & Zemel 2015; Dziugaite et al. 2015): no
critic; the generator minimises MMD between a data batch and a generated batch under a sum of
Gaussian kernels."""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import Tensor

from benchbench import GeneratorConfig, Objective, hookimpl, param
from benchbench_plugins.kernels import median_distance, mmd2_gaussian


@dataclasses.dataclass(frozen=True)
class GMMNConfig(GeneratorConfig):
    bandwidths: tuple[float, ...] = param((), "kernel sigmas; empty: `scales` times the median pairwise "
                                              "distance of the data", gt=0, per_member=True)
    scales: tuple[float, ...] = param((0.03125, 0.0625, 0.125, 0.25, 0.5, 1.0),
                                      "sigmas relative to the data's median distance when `bandwidths` is empty",
                                      gt=0, per_member=True)
    loss: Literal["sqrt", "mmd2"] = param("sqrt", "minimise sqrt(MMD^2) (Li et al.'s code) or MMD^2")
    unbiased: bool = param(False, "unbiased MMD^2 estimate (can be negative; clamped before sqrt)")


class GMMN(Objective):
    name = "gmmn"
    Config = GMMNConfig

    def __init__(self, config: GMMNConfig, data: Tensor):
        super().__init__(config, data)
        self.scale = None if config.bandwidths else median_distance(data.flatten(1)[:1000])
        self.sigmas = self.sigmas_of(config)

    def sigmas_of(self, config: GMMNConfig) -> tuple[float, ...]:
        return config.bandwidths or tuple(s * self.scale for s in config.scales)

    def generator_loss(self, critic: None, real: Tensor, fake: Tensor) -> Tensor:
        if self.members is None:
            return self.loss(real, fake, self.sigmas)
        # The trials of a search, stacked: members with the same sigmas share one computation.
        groups: dict[tuple[float, ...], list[int]] = {}
        for i, config in enumerate(self.members):
            groups.setdefault(self.sigmas_of(config), []).append(i)
        if len(groups) == 1:
            return self.loss(real, fake, next(iter(groups)))
        order = torch.tensor([i for members in groups.values() for i in members], device=real.device)
        losses = torch.cat([self.loss(real[members], fake[members], sigmas) for sigmas, members in groups.items()])
        return losses[torch.argsort(order)]

    def loss(self, real: Tensor, fake: Tensor, sigmas: tuple[float, ...]) -> Tensor:
        mmd2 = mmd2_gaussian(real.flatten(2), fake.flatten(2), sigmas, self.config.unbiased)
        if self.config.loss == "mmd2":
            return mmd2
        return torch.sqrt(mmd2.clamp_min(1e-12))


@hookimpl
def benchbench_objectives():
    return [GMMN]
