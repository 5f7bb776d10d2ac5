"""What an objective declares (:meth:`benchbench.Objective.networks`, ``updates``, ``nfe``), checked
against itself: every mistake is one :class:`PluginError` naming the objective and what is wrong.

- :func:`declared_networks`, :func:`declared_updates`, :func:`declared_nfe`: the declarations,
  each checked (types, names, shapes, learning-rate settings that exist, updates naming declared
  networks, every network trained by some update, at least one network evaluation per sample).
- Before anything trains, each objective's blueprint (:mod:`.blueprints`) reads them, runs one
  training step and one sample on one member (a loss or sampler using a network it did not
  declare, a sample of the wrong shape, an ``nfe`` other than the network calls counted), and
  refuses the suite in one line (exit code 2). Other failures of a loss are left to the job,
  which names the plugin.
"""

from __future__ import annotations

import dataclasses
import keyword
import math
import typing
from collections.abc import Sequence

from torch import Tensor

from ..api.dataset import Dataset
from ..api.errors import PluginError
from ..api.objective import Activation, Declaration, FreeParameter, Nets, Network, Objective, Update

ARCHITECTURES = typing.get_args(typing.get_type_hints(Network)["architecture"])
ACTIVATIONS = typing.get_args(Activation)


def name_of(objective: Objective) -> str:
    return getattr(type(objective), "name", type(objective).__name__)


def declared_networks(objective: Objective, dataset: Dataset) -> tuple[Declaration, ...]:
    """``objective.networks(dataset)``, checked: :class:`Network` (and :class:`FreeParameter`)
    instances with unique names (Python identifiers, so that ``nets.name`` works), shapes of
    positive whole numbers, an architecture and activation the core builds."""
    owner = name_of(objective)
    found = objective.networks(dataset)
    if not isinstance(found, (tuple, list)) or not found or not all(isinstance(n, (Network, FreeParameter))
                                                                    for n in found):
        raise PluginError(owner, f"networks() returned {_short(found)}; expected a non-empty tuple of "
                                 f"benchbench.Network (and benchbench.FreeParameter)")
    names = [n.name for n in found]
    for spec in found:
        where = f"networks(): {'free parameter' if isinstance(spec, FreeParameter) else 'network'} {spec.name!r}"
        if not (isinstance(spec.name, str) and spec.name.isidentifier() and not keyword.iskeyword(spec.name)
                and not hasattr(Nets, spec.name)):
            raise PluginError(owner, f"networks(): network name {spec.name!r} must be a Python identifier that is "
                                     f"not a method or attribute of Nets (prior, bounds, get, items, keys, values)")
        if names.count(spec.name) > 1:
            raise PluginError(owner, f"networks(): two networks are named {spec.name!r}")
        if isinstance(spec, FreeParameter):
            _check_free_parameter(owner, where, spec)
            continue
        for field in ("input", "output", "hidden"):
            shape = getattr(spec, field)
            whole = isinstance(shape, tuple) and all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                                                     for s in shape)
            if not whole or (field != "hidden" and len(shape) not in (1, 3)):
                what = "a vector (d,) or an image (C, H, W)" if field != "hidden" else "a tuple of widths"
                raise PluginError(owner, f"{where}: {field} is {_short(shape)}; expected {what} of positive whole "
                                         f"numbers")
        if spec.architecture not in ARCHITECTURES:
            raise PluginError(owner, f"{where}: architecture {spec.architecture!r}; allowed: "
                                     f"{', '.join(ARCHITECTURES)}")
        if not (isinstance(spec.channels, int) and spec.channels > 0):
            raise PluginError(owner, f"{where}: channels is {_short(spec.channels)}; expected a positive whole number")
        if spec.activation is not None and (spec.activation not in ACTIVATIONS or spec.architecture != "mlp"):
            raise PluginError(owner, f"{where}: activation {spec.activation!r}; allowed for architecture mlp: "
                                     f"{', '.join(ACTIVATIONS)} (dcgan networks have DCGAN's own: leave it None)")
        if not isinstance(spec.zero_init, bool):
            raise PluginError(owner, f"{where}: zero_init is {_short(spec.zero_init)}; expected true or false")
    return tuple(found)


def _check_free_parameter(owner: str, where: str, spec: FreeParameter) -> None:
    shape = spec.shape
    if not (isinstance(shape, tuple) and all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                                             for s in shape)):
        raise PluginError(owner, f"{where}: shape is {_short(shape)}; expected a tuple of positive whole numbers "
                                 f"(() for one number per member)")
    if isinstance(spec.init, bool) or not isinstance(spec.init, (int, float)) or not math.isfinite(spec.init):
        raise PluginError(owner, f"{where}: init is {_short(spec.init)}; expected a finite number")


def declared_updates(objective: Objective, networks: Sequence[Network]) -> tuple[Update, ...]:
    """``objective.updates()``, checked against the declared ``networks``: :class:`Update`
    instances with unique names, each training declared networks with a callable loss,
    ``repeats`` >= 1 and a learning rate in an existing number setting; every network trained
    by some update."""
    owner = name_of(objective)
    found = objective.updates()
    if not isinstance(found, (tuple, list)) or not found or not all(isinstance(u, Update) for u in found):
        raise PluginError(owner, f"updates() returned {_short(found)}; expected a non-empty tuple of benchbench.Update")
    declared = [n.name for n in networks]
    names = [u.name for u in found]
    settings = {f.name: f for f in dataclasses.fields(objective.config)}
    for update in found:
        where = f"updates(): update {update.name!r}"
        if not (isinstance(update.name, str) and update.name.isidentifier()):
            raise PluginError(owner, f"updates(): update name {update.name!r} must be a Python identifier")
        if names.count(update.name) > 1:
            raise PluginError(owner, f"updates(): two updates are named {update.name!r}")
        if not isinstance(update.networks, tuple) or not update.networks:
            raise PluginError(owner, f"{where}: networks is {_short(update.networks)}; expected a non-empty tuple of "
                                     f"network names")
        for name in update.networks:
            if name not in declared:
                raise PluginError(owner, f"{where} trains network {name!r}, which networks() does not declare "
                                         f"(declared: {', '.join(declared)})")
        if not callable(update.loss):
            raise PluginError(owner, f"{where}: loss is {_short(update.loss)}; expected loss(nets, real) -> [M]")
        if not (isinstance(update.repeats, int) and not isinstance(update.repeats, bool) and update.repeats >= 1):
            raise PluginError(owner, f"{where}: repeats is {_short(update.repeats)}; expected a whole number >= 1")
        value = getattr(objective.config, update.lr_setting, None) if update.lr_setting in settings else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            numbers = [f for f, v in dataclasses.asdict(objective.config).items()
                       if isinstance(v, float) and f.endswith("lr")]
            raise PluginError(owner, f"{where}: lr_setting {update.lr_setting!r} is not a positive number setting of "
                                     f"{type(objective.config).__name__} (learning rates: {', '.join(numbers)})")
    trained = {name for u in found for name in u.networks}
    untrained = [name for name in declared if name not in trained]
    if untrained:
        raise PluginError(owner, f"network {untrained[0]!r} is trained by no update: name it in an Update's networks, "
                                 f"or do not declare it")
    return tuple(found)


def declared_nfe(objective: Objective) -> int:
    """``objective.nfe()``: a whole number >= 1."""
    nfe = objective.nfe()
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise PluginError(name_of(objective), f"nfe() returned {_short(nfe)}; expected the network evaluations per "
                                              f"sample, a whole number >= 1")
    return nfe


def check_sample(objective: Objective, fake: object, members: int, n: int, shape: Sequence[int]) -> Tensor:
    """What ``sample`` returned: a float tensor ``[M, n, *shape]``."""
    expected = (members, n, *shape)
    if not (isinstance(fake, Tensor) and fake.is_floating_point() and tuple(fake.shape) == expected):
        got = f"shape {tuple(fake.shape)} ({fake.dtype})" if isinstance(fake, Tensor) else type(fake).__name__
        raise PluginError(name_of(objective), f"sample(nets, {n}) returned {got}; expected floating-point samples of "
                                              f"shape {expected}: [members, n, *data shape]")
    return fake


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

