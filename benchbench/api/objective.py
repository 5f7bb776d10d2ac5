"""The contract of a training objective. Plugins subclass :class:`Objective`.

An objective declares the networks it needs (:meth:`Objective.networks`, each a :class:`Network`,
and any tensors it trains directly, each a :class:`FreeParameter`), the updates of one training
step (:meth:`Objective.updates`, each an :class:`Update`: a loss and the networks its optimizer
trains) and how it draws samples (:meth:`Objective.sample`, with
:meth:`Objective.nfe` network evaluations per sample). The core builds the networks, owns the
optimizers and the loop (:mod:`benchbench.train.trainer`), and scores what ``sample`` returns.

The defaults are the GAN shape of Algorithm 1 (Goodfellow et al. 2014): a ``generator`` and, when
``Config`` derives from :class:`CriticConfig`, a ``critic``; ``critic_steps`` critic updates, then
one generator update; samples ``generator(noise)``. A GAN-shaped objective only implements
:meth:`Objective.generator_loss` (and :meth:`Objective.critic_loss`).

Its settings derive from :class:`ObjectiveConfig` (what every objective has), :class:`GeneratorConfig`
(a generator fed noise) or :class:`CriticConfig` (and a critic): :mod:`benchbench.api.objective_config`.
Randomness inside losses and samplers comes from per-member streams the core hands over with
:meth:`Objective.random_streams`.

Seeds are trained together as one stacked model: every tensor carries a leading member dimension
``M`` and every loss returns one value per member, shape ``[M]`` (the core sums them, which keeps
members independent under Adam).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal, Union

import torch
from torch import Tensor

from .objective_config import Architecture, CriticConfig, GeneratorConfig, ObjectiveConfig, with_generator
from .outputs import Output

if TYPE_CHECKING:
    from .dataset import Dataset

Critic = Callable[[Tensor], Tensor]
"""``critic(x)`` maps samples ``[M, B, *shape]`` to logits ``[M, B, 1]``."""

Activation = Literal["relu", "leaky_relu", "elu", "gelu", "silu", "softplus", "tanh"]
"""Activations an MLP :class:`Network` may choose (``leaky_relu``: slope 0.01, PyTorch's default)."""


@dataclasses.dataclass(frozen=True)
class Network:
    """A network an objective asks the core to build, stacked over the members of a job.

    The built network maps inputs ``[M, B, *input]`` (and, with ``time``, times ``t`` ``[M, B]``
    in [0, 1]: ``net(x, t)``) to outputs ``[M, B, *output]``. Shapes are per sample: a vector
    ``(d,)`` or an image ``(C, H, W)``.

    - ``architecture="mlp"``: an MLP with widths ``hidden`` on the flattened input (the time,
      if any, as one more input feature), ``activation`` between its layers (ReLU by default).
    - ``architecture="dcgan"``: convolutional networks sized from the image shape (``channels`` at
      full resolution, doubling per halving), with DCGAN's own activations: vector -> image (the
      DCGAN generator), image -> vector of any size (the DCGAN critic's body with a linear head),
      image -> image of the same shape (a small time-conditioned encoder-decoder with skip
      connections, for velocity fields and denoisers; see :mod:`benchbench.nets.convnets`).
    - ``zero_init``: the last layer's weights and biases start at zero, so the network starts as the
      zero map (a residual coupling layer starting as the identity, a velocity field at rest). Its
      initial values are still drawn from the members' streams first, so the other networks'
      initialisation does not change.
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
    activation: Activation | None = None  # None: the architecture's own (ReLU for mlp)
    zero_init: bool = False


@dataclasses.dataclass(frozen=True)
class FreeParameter:
    """A tensor an objective trains directly, one per member (a learned prior scale, a learned
    observation noise): declared by :meth:`Objective.networks` beside the networks, named by the
    :class:`Update` that optimises it, and read in losses and samplers as ``nets[name]``, a tensor
    ``[M, *shape]`` (member ``i``'s in row ``i``). Every member starts at ``init``. The core stacks,
    optimises, clips, averages (``ema``) and checkpoints it like a network's weights, and counts it
    in the parameters of the job."""

    name: str
    shape: tuple[int, ...] = ()
    init: float = 0.0


Declaration = Union[Network, FreeParameter]
"""What :meth:`Objective.networks` returns: networks and free parameters."""


class MissingNetwork(AttributeError, KeyError):
    """A loss or sampler asked for a network its objective does not declare."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Nets(Mapping[str, Union[Callable[..., Tensor], Tensor]]):
    """The built networks of a job, by declared name, as losses and samplers see them:
    ``nets["critic"]`` or ``nets.critic``; a :class:`FreeParameter` is its tensor ``[M, *shape]``.
    Indexing by name serves networks declared in a loop: ``nets[f"coupling{i}"]``.

    ``prior(n)`` draws a generator's noise ``[M, n, noise_dim]`` from the members' own streams (the
    "train" streams during training, fresh sampling streams during evaluation), following the
    config's ``noise`` and ``noise_dim`` (:class:`GeneratorConfig`). ``bounds``: the data's
    ``(low, high)``, or None when it has none (a sampler clips into them)."""

    bounds: tuple[float, float] | None = None

    def __init__(self, networks: Mapping[str, Callable[..., Tensor] | Tensor],
                 prior: Callable[[int], Tensor] | None = None, bounds: tuple[float, float] | None = None):
        self._networks = dict(networks)
        self._prior = prior
        self.bounds = bounds

    def __getitem__(self, name: str) -> Callable[..., Tensor] | Tensor:
        try:
            return self._networks[name]
        except KeyError:
            raise MissingNetwork(f"uses network {name!r}, which networks() does not declare (declared: "
                                 f"{', '.join(self._networks) or 'none'})") from None

    def __getattr__(self, name: str) -> Callable[..., Tensor] | Tensor:
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


class Objective:
    """A generative model's training objective.

    Subclasses set ``name`` and ``Config``: a dataclass deriving from :class:`ObjectiveConfig`
    (what every objective has), from :class:`GeneratorConfig` for a generator fed noise, or from
    :class:`CriticConfig` for a generator and a critic. A GAN-shaped objective implements
    :meth:`generator_loss` (and :meth:`critic_loss` when it uses a critic); any other objective
    overrides :meth:`networks`, :meth:`updates`, :meth:`sample` (and :meth:`nfe` when a sample
    takes more than one network evaluation).
    """

    name: ClassVar[str]
    Config: ClassVar[type[ObjectiveConfig]] = GeneratorConfig
    diagnostics: ClassVar[tuple[Output, ...]] = ()
    """Outputs of :meth:`diagnose`, recorded beside the metrics."""
    stackable: ClassVar[bool] = True
    """Whether the losses treat the members of a stack independently (the core then trains the
    seeds of a cell as one stacked model). Set False when a loss mixes members, e.g. through
    statistics over the whole ``[M, B]`` batch; the seeds are then trained one at a time."""

    rng: Sequence[torch.Generator] = ()
    """One random generator per stacked member, in member order, for randomness inside the losses
    (e.g. a gradient penalty's interpolation weights) and samplers; draw with :meth:`uniform` and
    :meth:`normal`, never from the global random state. The core sets it, through
    :meth:`random_streams` only, during each training step to the members' own "loss" streams,
    during :meth:`sample` to their sampling streams and during :meth:`diagnose_networks` to their
    "diagnose" streams, each fixed by the member's seed alone. Outside a run (a unit test), use
    the same: ``with objective.random_streams([torch.Generator().manual_seed(s) for s in range(M)]):``."""

    members: tuple[ObjectiveConfig, ...] | None = None
    """One config per member when the members of a stack may differ in settings (the trials of a
    search, :mod:`benchbench.config.search`); None when every member uses :attr:`config`. The members differ
    only in optimizer settings and in settings declared ``param(..., per_member=True)``: an objective
    that declares such a setting reads member ``i``'s value from ``members[i]``."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        config = cls.__dict__.get("Config")
        if (isinstance(config, type) and issubclass(config, ObjectiveConfig)
                and not issubclass(config, GeneratorConfig) and _trains_default_generator(cls)):
            cls.Config = with_generator(config, cls)  # a plugin written before GeneratorConfig: warns

    def __init__(self, config: ObjectiveConfig, data: Tensor):
        """``data`` is a batch of real samples ``[n, *shape]`` for settings scaled to the data."""
        self.config = config

    @contextlib.contextmanager
    def random_streams(self, rng: Sequence[torch.Generator]) -> Iterator[Objective]:
        """A block in which :attr:`rng` is ``rng`` (one generator per member) and :meth:`uniform`
        and :meth:`normal` draw from it; :attr:`rng` is what it was again after the block."""
        outer = self.rng
        self.rng = tuple(rng)
        try:
            yield self
        finally:
            self.rng = outer

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
                               f"per-member generators: the core sets them during training steps, sampling and "
                               f"diagnose_networks only; in a unit test use objective.random_streams("
                               f"[torch.Generator().manual_seed(s) for s in range(M)])")
        return self.rng

    # ---- the general contract: networks, updates, sampling --------------------------------------

    def networks(self, dataset: Dataset) -> tuple[Declaration, ...]:
        """The networks (and :class:`FreeParameter` tensors) to build, in order (members are
        initialised from their "init" streams in this order). Default: ``generator``
        (``noise_dim`` -> the data's shape, squashed into its bounds; :class:`GeneratorConfig`)
        and, with a :class:`CriticConfig`, ``critic`` (the data's shape -> one logit)."""
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


def _trains_default_generator(cls: type) -> bool:
    """Whether objective class ``cls`` keeps a default that trains or samples ``generator(noise)``."""
    return any(getattr(cls, name) is getattr(Objective, name) for name in ("networks", "updates", "sample"))
