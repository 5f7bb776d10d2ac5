"""The contract of a training objective. Plugins subclass :class:`Objective`.

An objective declares the networks it needs (:meth:`Objective.networks`, each a :class:`Network`),
the updates of one training step (:meth:`Objective.updates`, each an :class:`Update`: a loss and
the networks its optimizer trains) and how it draws samples (:meth:`Objective.sample`, with
:meth:`Objective.nfe` network evaluations per sample). The core builds the networks, owns the
optimizers and the loop (:mod:`benchbench.train.trainer`), and scores what ``sample`` returns.

The defaults are the GAN shape of Algorithm 1 (Goodfellow et al. 2014): a ``generator`` and, when
``Config`` derives from :class:`CriticConfig`, a ``critic``; ``critic_steps`` critic updates, then
one generator update; samples ``generator(noise)``. A GAN-shaped objective only implements
:meth:`Objective.generator_loss` (and :meth:`Objective.critic_loss`).

Seeds are trained together as one stacked model: every tensor carries a leading member dimension
``M`` and every loss returns one value per member, shape ``[M]`` (the core sums them, which keeps
members independent under Adam).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from torch import Tensor

from .outputs import Output
from .params import param

if TYPE_CHECKING:
    from .dataset import Dataset

Critic = Callable[[Tensor], Tensor]
"""``critic(x)`` maps samples ``[M, B, *shape]`` to logits ``[M, B, 1]``."""

Architecture = Literal["mlp", "dcgan"]


@dataclasses.dataclass(frozen=True)
class Network:
    """A network an objective asks the core to build, stacked over the members of a job.

    The built network maps inputs ``[M, B, *input]`` (and, with ``time``, times ``t`` ``[M, B]``
    in [0, 1]: ``net(x, t)``) to outputs ``[M, B, *output]``. Shapes are per sample: a vector
    ``(d,)`` or an image ``(C, H, W)``.

    - ``architecture="mlp"``: a ReLU MLP with widths ``hidden`` on the flattened input (the time,
      if any, as one more input feature).
    - ``architecture="dcgan"``: convolutional networks sized from the image shape (``channels`` at
      full resolution, doubling per halving): vector -> image (the DCGAN generator), image ->
      vector of any size (the DCGAN critic's body with a linear head), image -> image of the
      same shape (a small time-conditioned encoder-decoder with skip connections, for velocity
      fields and denoisers; see :mod:`benchbench.nets.convnets`).
    - ``squash``: outputs mapped into the data's ``bounds`` with a scaled tanh (when the data has
      bounds; nothing otherwise).
    """

    name: str
    input: tuple[int, ...]
    output: tuple[int, ...]
    hidden: tuple[int, ...] = (128, 128)
    architecture: Architecture = "mlp"
    channels: int = 64
    time: bool = False
    squash: bool = False


class MissingNetwork(AttributeError, KeyError):
    """A loss or sampler asked for a network its objective does not declare."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Nets(Mapping[str, Callable[..., Tensor]]):
    """The built networks of a job, by name, as losses and samplers see them: ``nets["critic"]``
    or ``nets.critic``. ``prior(n)`` draws generator noise ``[M, n, noise_dim]`` from the members'
    own streams (the "train" streams during training, fresh sampling streams during evaluation),
    following the config's ``noise`` and ``noise_dim``."""

    def __init__(self, networks: Mapping[str, Callable[..., Tensor]], prior: Callable[[int], Tensor] | None = None):
        self._networks = dict(networks)
        self._prior = prior

    def __getitem__(self, name: str) -> Callable[..., Tensor]:
        try:
            return self._networks[name]
        except KeyError:
            raise MissingNetwork(f"uses network {name!r}, which networks() does not declare (declared: "
                                 f"{', '.join(self._networks) or 'none'})") from None

    def __getattr__(self, name: str) -> Callable[..., Tensor]:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._networks)

    def __len__(self) -> int:
        return len(self._networks)

    def prior(self, n: int) -> Tensor:
        """Noise ``[M, n, noise_dim]``, member ``i``'s from its own stream."""
        if self._prior is None:
            raise RuntimeError("these networks have no prior stream (set by the core during training and sampling)")
        return self._prior(n)


@dataclasses.dataclass(frozen=True)
class Update:
    """One optimizer update of a training step: descend ``loss(nets, real)`` (shape ``[M]``) with
    respect to the parameters of ``networks``, ``repeats`` times per step, each on a fresh data
    batch ``real`` ``[M, batch_size, *shape]`` from the members' "train" streams. The optimizer is
    the config's (``optimizer``, ``betas``, ``momentum``) with the learning rate in the config field
    ``lr_setting``. While it runs, only ``networks`` have ``requires_grad``. Its mean loss is
    recorded in the training curves as ``<name>_loss``."""

    name: str
    networks: tuple[str, ...]
    loss: Callable[[Nets, Tensor], Tensor]
    repeats: int = 1
    lr_setting: str = "lr"


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
    """Settings every objective has: the generator, its noise, its optimizer and the training recipe."""

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
    # ---- training recipes, applied by the core to every declared network (benchbench.train: ema, lr_schedule,
    # grad_clip); members of a stack stay independent
    ema: float = param(0.0, "decay d of an exponential moving average of every network's weights, warmed up as "
                            "min(d, (1 + t) / (10 + t)) at update t; 0: none. With d > 0 the objective's row scores "
                            "the average and a `<label>.raw` row scores the raw weights of the same training",
                       ge=0, lt=1)
    weights: Literal["ema", "raw"] = param("ema", "the weights scored when ema > 0: the moving average, or the raw "
                                                  "weights of the same training", sampling=True)
    lr_schedule: Literal["constant", "linear", "cosine"] = param(
        "constant", "learning rate after the warmup: constant, or a linear or cosine decay to lr_floor x lr at the "
                    "end of the budget (a decay depends on the budget: a ladder retrains it per rung)")
    lr_floor: float = param(0.0, "where a decay ends, as a fraction of each learning rate", ge=0, le=1)
    warmup: int = param(0, "steps of linear learning-rate warmup, from lr / warmup to lr (shorter than the budget)",
                        ge=0, le=10**9)
    grad_clip: float | None = param(None, "clip the gradient of each network to this global norm, per member; "
                                          "null: no clipping", gt=0)

    @property
    def budget_dependent(self) -> bool:
        """Whether training depends on the total budget (a decaying learning rate): then a model trained for one
        budget is not the same as one stopped early on a longer budget."""
        return self.lr_schedule != "constant"


@dataclasses.dataclass(frozen=True)
class CriticConfig(ObjectiveConfig):
    """Settings of objectives that train a critic (discriminator) beside the generator."""

    critic_steps: int = param(1, "k: critic updates per generator update (Algorithm 1)", ge=1)
    critic_hidden: tuple[int, ...] = param((128, 128), "critic hidden widths (mlp)", gt=0)
    critic_lr: float = param(1e-3, "critic learning rate", gt=0)


class Objective:
    """A generative model's training objective.

    Subclasses set ``name`` and ``Config`` (a dataclass deriving from :class:`ObjectiveConfig`,
    or from :class:`CriticConfig` to get a critic). A GAN-shaped objective implements
    :meth:`generator_loss` (and :meth:`critic_loss` when it uses a critic); any other objective
    overrides :meth:`networks`, :meth:`updates`, :meth:`sample` (and :meth:`nfe` when a sample
    takes more than one network evaluation).
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
    (e.g. a gradient penalty's interpolation weights) and samplers. The core sets it during each
    training step to the members' own "loss" streams, during :meth:`sample` to their sampling
    streams and during :meth:`diagnose_networks` to their "diagnose" streams, each fixed by the
    member's seed alone, and empties it after; draw with :meth:`uniform` and :meth:`normal`, never
    from the global random state. Outside a run (a unit test), set it
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
                               f"per-member generators: the core sets objective.rng during training steps, sampling "
                               f"and diagnose_networks only; in a unit test set it yourself "
                               f"(objective.rng = [torch.Generator().manual_seed(s) for s in range(M)])")
        return self.rng

    # ---- the general contract: networks, updates, sampling --------------------------------------

    def networks(self, dataset: Dataset) -> tuple[Network, ...]:
        """The networks to build, in order (members are initialised from their "init" streams in
        this order). Default: ``generator`` (``noise_dim`` -> the data's shape, squashed into its
        bounds) and, with a :class:`CriticConfig`, ``critic`` (the data's shape -> one logit)."""
        cfg, shape = self.config, tuple(dataset.shape)
        found = [Network("generator", (cfg.noise_dim,), shape, tuple(cfg.hidden), cfg.architecture, cfg.channels,
                         squash=True)]
        if isinstance(cfg, CriticConfig):
            found.append(Network("critic", shape, (1,), tuple(cfg.critic_hidden), cfg.architecture, cfg.channels))
        return tuple(found)

    def updates(self) -> tuple[Update, ...]:
        """The updates of one training step, in the order they run. Default: Algorithm 1,
        ``critic_steps`` critic updates (learning rate ``critic_lr``), then one generator update
        (``lr``), each on fresh real samples and fresh noise."""
        cfg = self.config
        steps = [Update("generator", ("generator",), self._generator_update)]
        if isinstance(cfg, CriticConfig):
            steps.insert(0, Update("critic", ("critic",), self._critic_update, cfg.critic_steps, "critic_lr"))
        return tuple(steps)

    def sample(self, nets: Nets, n: int) -> Tensor:
        """``n`` samples per member, ``[M, n, *shape]``, drawn under ``torch.no_grad()`` with
        :attr:`rng` set to the members' sampling streams. Default: ``generator(prior)``."""
        return nets.generator(nets.prior(n))

    def nfe(self) -> int:
        """Network evaluations per sample of :meth:`sample` (at least 1). Default: 1."""
        return 1

    def diagnose_networks(self, nets: Nets, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """The :attr:`diagnostics` of the trained networks on held-out ``real`` and sampled
        ``fake`` ``[M, n, *shape]``, each of shape ``[M]``. Called under ``torch.no_grad()`` with
        :attr:`rng` set to the members' "diagnose" streams. Default: :meth:`diagnose` with the
        critic (None without one)."""
        return self.diagnose(nets.get("critic"), real, fake)

    def _critic_update(self, nets: Nets, real: Tensor) -> Tensor:
        with torch.no_grad():
            fake = nets.generator(nets.prior(real.shape[1]))
        return self.critic_loss(nets.critic, real, fake)

    def _generator_update(self, nets: Nets, real: Tensor) -> Tensor:
        fake = nets.generator(nets.prior(real.shape[1]))
        return self.generator_loss(nets.get("critic"), real, fake)

    # ---- the GAN shape ---------------------------------------------------------------------------

    def critic_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Loss the critic descends, shape ``[M]``. ``fake`` is detached from the generator."""
        raise NotImplementedError(f"{type(self).__name__} has no critic")

    def generator_loss(self, critic: Critic | None, real: Tensor, fake: Tensor) -> Tensor:
        """Loss the generator descends, shape ``[M]``; ``critic`` is None without a critic."""
        raise NotImplementedError

    def diagnose(self, critic: Critic | None, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """Numbers about the trained model on held-out samples, each of shape ``[M]``,
        keyed by the names in :attr:`diagnostics`. Called under ``torch.no_grad()`` (through
        :meth:`diagnose_networks`, which objectives with their own networks override instead)."""
        return {}
