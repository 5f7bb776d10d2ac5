"""The settings of objectives, by family: what every objective has (:class:`ObjectiveConfig`), a
generator fed noise (:class:`GeneratorConfig`: the GANs, GMMN), and a critic beside it
(:class:`CriticConfig`). An objective's ``Config`` derives from the narrowest that fits and
declares the rest itself (flow matching declares its velocity network's widths, a VAE its
latent size), so that ``benchbench plugins --params`` lists only settings the objective uses.

Before issue 29 :class:`ObjectiveConfig` held the generator's settings too. A plugin written then
keeps working: an objective that trains the default generator with a config deriving from
:class:`ObjectiveConfig` gets them added, with a ``FutureWarning`` naming the one-line fix
(:func:`with_generator`); reading one of them from a config that lacks it warns and gives the
old default (:meth:`ObjectiveConfig.__getattr__`).
"""

from __future__ import annotations

import dataclasses
import typing
import warnings
from typing import Any, Literal

from .params import param

Architecture = Literal["mlp", "dcgan"]

ADAM_BETAS = (0.9, 0.999)  # Adam's own defaults (Kingma & Ba 2015)
GAN_BETAS = (0.5, 0.999)  # DCGAN's (Radford et al. 2016): the usual for a generator trained against a critic


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
    """Settings every objective has: its batch, its optimizer and the training recipe the core applies."""

    batch_size: int = param(128, "data samples per update (a GAN or GMMN generates as many: m in Algorithm 1)",
                            gt=1)
    optimizer: Literal["adam", "sgd", "rmsprop"] = param("adam", "optimizer of every update")
    lr: float = param(1e-3, "learning rate of every update that names no other setting (a critic's uses "
                            "critic_lr)", gt=0)
    betas: tuple[float, float] = param(ADAM_BETAS, "Adam betas (beta1, beta2) of every update", ge=0, le=0.9999)
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
    warmup: int = param(0, "training steps of linear learning-rate warmup, from lr / warmup to lr (shorter than "
                           "the budget)", ge=0, le=10**9)
    grad_clip: float | None = param(None, "clip the gradient of each network to this global norm, per member; "
                                          "null: no clipping", gt=0)

    @property
    def budget_dependent(self) -> bool:
        """Whether training depends on the total budget (a decaying learning rate): then a model trained for one
        budget is not the same as one stopped early on a longer budget."""
        return self.lr_schedule != "constant"

    def __getattr__(self, name: str) -> Any:
        """A generator setting read from a config without it (a plugin written before GeneratorConfig):
        its old default, with a warning naming the fix."""
        field = GENERATOR_FIELDS.get(name)
        if field is None:
            raise AttributeError(f"{type(self).__name__!r} has no setting {name!r}")
        warnings.warn(f"{type(self).__name__} has no setting {name!r}: ObjectiveConfig holds only what every "
                      f"objective has since benchbench's issue 29; the generator's settings are in GeneratorConfig. "
                      f"Derive {type(self).__name__} from benchbench.GeneratorConfig, or declare {name!r} in it. "
                      f"Using the old default {field.default!r}", FutureWarning, stacklevel=2)
        return field.default


@dataclasses.dataclass(frozen=True)
class GeneratorConfig(ObjectiveConfig):
    """Settings of objectives that train a generator from noise, ``generator(z)``: the GANs, GMMN."""

    betas: tuple[float, float] = param(GAN_BETAS, "Adam betas (beta1, beta2) of every update; (0.5, 0.999): "
                                                  "DCGAN's, for a generator trained against a critic or kernel",
                                       ge=0, le=0.9999)
    noise_dim: int = param(2, "dimension of the noise z fed to the generator", gt=0)
    noise: Literal["normal", "uniform"] = param("normal", "prior on z: N(0, I) or U[-1, 1]^d")
    architecture: Architecture = param(
        "mlp", "networks: ReLU MLPs, or DCGAN-style convolutions sized from the data's shape (images)")
    hidden: tuple[int, ...] = param((128, 128), "generator hidden widths (mlp)", gt=0)
    channels: int = param(64, "dcgan: channels of the widest-resolution layer (doubling per halving)", gt=0, le=4096)


@dataclasses.dataclass(frozen=True)
class CriticConfig(GeneratorConfig):
    """Settings of objectives that train a critic (discriminator) beside the generator."""

    critic_steps: int = param(1, "k: critic updates per generator update (Algorithm 1)", ge=1)
    critic_hidden: tuple[int, ...] = param((128, 128), "critic hidden widths (mlp)", gt=0)
    critic_lr: float = param(1e-3, "critic learning rate", gt=0)


GENERATOR_FIELDS = {f.name: f for f in dataclasses.fields(GeneratorConfig)
                    if f.name not in {g.name for g in dataclasses.fields(ObjectiveConfig)}}
"""The settings :class:`GeneratorConfig` adds to :class:`ObjectiveConfig`, by name."""


def with_generator(config: type, owner: type) -> type:
    """``config`` (deriving from :class:`ObjectiveConfig`, not :class:`GeneratorConfig`) with the generator's
    settings and the GANs' betas added where it does not declare them: the config of a plugin written before
    :class:`GeneratorConfig` existed, whose objective trains the default generator. Warns (FutureWarning) with
    the one-line migration. The class is reachable as ``owner.Config`` (pickled by that name)."""
    warnings.warn(f"{owner.__qualname__}.Config ({config.__name__}) derives from ObjectiveConfig, but "
                  f"{owner.__qualname__} trains the default generator from noise, whose settings (noise_dim, noise, "
                  f"architecture, hidden, channels; betas (0.5, 0.999)) are in GeneratorConfig since benchbench's "
                  f"issue 29: derive {config.__name__} from benchbench.GeneratorConfig (or CriticConfig). Adding them "
                  f"for now", FutureWarning, stacklevel=3)
    base = {f.name: f for f in dataclasses.fields(ObjectiveConfig)}
    own = {f.name for f in dataclasses.fields(config) if base.get(f.name) is not f}  # declared below ObjectiveConfig
    hints = typing.get_type_hints(GeneratorConfig)
    added = [(f.name, hints[f.name], dataclasses.field(default=f.default, metadata=f.metadata))
             for f in dataclasses.fields(GeneratorConfig)
             if f.name not in own and (f.name in GENERATOR_FIELDS or f.name == "betas")]
    namespace = {"__module__": owner.__module__, "__qualname__": f"{owner.__qualname__}.Config",
                 "__doc__": config.__doc__}
    upgraded = dataclasses.make_dataclass(config.__name__, added, bases=(config, GeneratorConfig), frozen=True,
                                          namespace=namespace)
    upgraded.__module__ = owner.__module__  # Python 3.12's make_dataclass sets its caller's module
    return upgraded
