"""The contract of a training objective. Plugins subclass :class:`Objective`.

The core builds the networks and runs the loop (:mod:`benchbench.train.trainer`); an objective says
whether it needs a critic and turns samples into losses. Seeds are trained together as one
stacked model: every tensor carries a leading member dimension ``M`` and every loss returns one
value per member, shape ``[M]`` (the core sums them, which keeps members independent under Adam).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor

from .outputs import Output
from .params import param

Critic = Callable[[Tensor], Tensor]
"""``critic(x)`` maps samples ``[M, B, *shape]`` to logits ``[M, B, 1]``."""


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
    """Settings every objective has: the generator, its noise and its optimizer."""

    batch_size: int = param(128, "real and generated samples per step (m in Algorithm 1)", gt=1)
    noise_dim: int = param(2, "dimension of the noise z fed to the generator", gt=0)
    noise: Literal["normal", "uniform"] = param("normal", "prior on z: N(0, I) or U[-1, 1]^d")
    architecture: Literal["mlp", "dcgan"] = param(
        "mlp", "networks: ReLU MLPs, or DCGAN-style convolutions sized from the data's shape (images)")
    hidden: tuple[int, ...] = param((128, 128), "generator hidden widths (mlp)", gt=0)
    channels: int = param(64, "dcgan: channels of the widest-resolution layer (doubling per halving)", gt=0, le=4096)
    optimizer: Literal["adam", "sgd", "rmsprop"] = param("adam", "optimizer of every network")
    lr: float = param(1e-3, "generator learning rate", gt=0)
    betas: tuple[float, float] = param((0.5, 0.999), "Adam betas", ge=0, le=0.9999)
    momentum: float = param(0.0, "SGD / RMSprop momentum", ge=0, le=0.9999)


@dataclasses.dataclass(frozen=True)
class CriticConfig(ObjectiveConfig):
    """Settings of objectives that train a critic (discriminator) beside the generator."""

    critic_steps: int = param(1, "k: critic updates per generator update (Algorithm 1)", ge=1)
    critic_hidden: tuple[int, ...] = param((128, 128), "critic hidden widths (mlp)", gt=0)
    critic_lr: float = param(1e-3, "critic learning rate", gt=0)


class Objective:
    """A generator training objective.

    Subclasses set ``name`` and ``Config`` (a dataclass deriving from :class:`ObjectiveConfig`,
    or from :class:`CriticConfig` to get a critic), and implement :meth:`generator_loss` (and
    :meth:`critic_loss` when they use a critic).
    """

    name: ClassVar[str]
    Config: ClassVar[type[ObjectiveConfig]] = ObjectiveConfig
    diagnostics: ClassVar[tuple[Output, ...]] = ()
    """Outputs of :meth:`diagnose`, recorded beside the metrics."""
    stackable: ClassVar[bool] = True
    """Whether the losses treat the members of a stack independently (the core then trains the
    seeds of a cell as one stacked model). Set False when a loss mixes members, e.g. through
    statistics over the whole ``[M, B]`` batch; the seeds are then trained one at a time."""

    rng: Sequence[torch.Generator] = ()
    """One random generator per stacked member, in member order, for randomness inside the losses
    (e.g. a gradient penalty's interpolation weights). The trainer sets it during each training
    step to the members' own "loss" streams, fixed by their seeds alone, and empties it after (it
    is not for :meth:`diagnose`); draw with :meth:`uniform` and :meth:`normal`, never from the
    global random state. Outside a run (a unit test), set it
    yourself: ``objective.rng = [torch.Generator().manual_seed(s) for s in range(M)]``."""

    members: tuple[ObjectiveConfig, ...] | None = None
    """One config per member when the members of a stack may differ in settings (the trials of a
    search, :mod:`benchbench.config.search`); None when every member uses :attr:`config`. The members differ
    only in optimizer settings and in settings declared ``param(..., per_member=True)``: an objective
    that declares such a setting reads member ``i``'s value from ``members[i]``."""

    def __init__(self, config: ObjectiveConfig, data: Tensor):
        """``data`` is a batch of real samples ``[n, *shape]`` for settings scaled to the data."""
        self.config = config

    def uniform(self, *shape: int) -> Tensor:
        """U[0, 1) samples ``[M, *shape]``, member ``i``'s drawn from ``rng[i]`` alone: they depend
        on the member's seed only, not on the stack it trains in nor on the global random state."""
        return torch.stack([torch.rand(shape, generator=g, device=g.device) for g in self._streams()])

    def normal(self, *shape: int) -> Tensor:
        """N(0, 1) samples ``[M, *shape]``, member ``i``'s drawn from ``rng[i]`` alone."""
        return torch.stack([torch.randn(shape, generator=g, device=g.device) for g in self._streams()])

    def _streams(self) -> Sequence[torch.Generator]:
        if not self.rng:
            raise RuntimeError(f"objective {getattr(self, 'name', type(self).__name__)!r} draws randomness but has no "
                               f"per-member generators: the trainer sets objective.rng for the losses during a training "
                               f"step only (diagnose must not draw); in a unit test set it yourself "
                               f"(objective.rng = [torch.Generator().manual_seed(s) for s in range(M)])")
        return self.rng

    @classmethod
    def uses_critic(cls) -> bool:
        return issubclass(cls.Config, CriticConfig)

    def critic_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Loss the critic descends, shape ``[M]``. ``fake`` is detached from the generator."""
        raise NotImplementedError(f"{type(self).__name__} has no critic")

    def generator_loss(self, critic: Critic | None, real: Tensor, fake: Tensor) -> Tensor:
        """Loss the generator descends, shape ``[M]``; ``critic`` is None without a critic."""
        raise NotImplementedError

    def diagnose(self, critic: Critic | None, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """Numbers about the trained model on held-out samples, each of shape ``[M]``,
        keyed by the names in :attr:`diagnostics`. Called under ``torch.no_grad()``."""
        return {}
