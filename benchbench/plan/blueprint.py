"""What one (dataset, objective) of a suite builds and costs: its blueprint, made once when the suite
is checked (:func:`benchbench.train.blueprints.make_blueprint`), before anything trains.

A blueprint holds the objective built with its data, the networks it declares with their parameter
counts (built as one-member models on the meta device: nothing allocated), its updates and ``nfe``
(declared, and counted in one real ``sample``), and what one training step of one member costs: its
FLOPs, and the bytes autograd saves for the backward passes as a function of the batch size ``B``,
measured on a one-member model at a few small batches and fitted exactly by ``a + b B + c B^2`` (a
loss comparing the samples of a batch pairwise, like moment matching, is quadratic in ``B``).

It is the one input of member sizing (:mod:`.sizing`), the memory check (:mod:`.preflight`), the
budget check (:mod:`benchbench.train.step_cost`) and the expected work of a job (the runner's job order):
none of them builds a network from config fields. Blueprints made for a suite are remembered
(:func:`remember`, :func:`recall`), so that planning reads the ones the check made.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from ..api.objective import Network, Objective, Update
from ..config import search
from ..config.suite import ComponentSpec
from ..registry.components import Registry

FLOAT_BYTES = 4
OPTIMIZER_COPIES = 4  # parameter, gradient and two Adam moments
ACTIVATION_COPIES = 2  # what autograd saves, and the gradients flowing back through it
REMEMBERED = 512  # blueprints kept for planning (the oldest forgotten first)


@dataclasses.dataclass(frozen=True)
class NetworkSize:
    """A declared network as built: its declaration and its parameters for one member."""

    spec: Network
    parameters: int

    @property
    def name(self) -> str:
        return self.spec.name


@dataclasses.dataclass(frozen=True)
class Fit:
    """``a + b B + c B^2``: a cost of one training step by batch size ``B``, through three measured points."""

    a: float
    b: float
    c: float

    @classmethod
    def through(cls, xs: Sequence[float], ys: Sequence[float]) -> Fit:
        """The quadratic through three points (Newton's divided differences: exact for integer costs)."""
        (x0, x1, x2), (y0, y1, y2) = xs, ys
        d01, d12 = (y1 - y0) / (x1 - x0), (y2 - y1) / (x2 - x1)
        c = (d12 - d01) / (x2 - x0)
        b = d01 - c * (x0 + x1)
        return cls(y0 - b * x0 - c * x0 * x0, b, c)

    def __call__(self, batch: float) -> float:
        return max(0.0, self.a + self.b * batch + self.c * batch * batch)


@dataclasses.dataclass
class Blueprint:
    """One (dataset, objective) of a suite, as it will train and sample (see the module's docstring)."""

    dataset: str  # label
    objective: str  # label
    instance: Objective  # built with its data, as the jobs build it (their copy is their own)
    networks: tuple[NetworkSize, ...]
    updates: tuple[Update, ...]
    nfe: int  # declared, and equal to the count when counted
    batch_size: int
    data_floats: int  # floats of one data sample
    saved: Fit | None  # bytes autograd saves in one training step of one member (None: not measured)
    step_flops: float | None  # FLOPs of one training step of one member at batch_size (None: not counted)
    sample_flops: float | None = None  # FLOPs per sample drawn
    sample_floats: float | None = None  # per sample: floats in and out of the largest network call while sampling
    counted_nfe: int | None = None  # network calls counted in one sample (None: not counted)
    note: str = ""  # why something was not measured
    spec: ComponentSpec | None = None  # the objective as the suite (or a search trial) configures it

    @property
    def parameters(self) -> int:
        """Parameters of one member, all networks."""
        return sum(n.parameters for n in self.networks)

    @property
    def updates_per_step(self) -> int:
        """Optimizer updates in one training step (a GAN's ``critic_steps + 1``)."""
        return sum(u.repeats for u in self.updates)

    def saved_bytes(self, batch: int | None = None) -> float | None:
        """Bytes autograd saves in one training step of one member (at ``batch``, default the objective's)."""
        return None if self.saved is None else self.saved(self.batch_size if batch is None else batch)

    def activation_bytes_per_sample(self) -> float | None:
        """Bytes saved for backward per sample of the batch, at the objective's batch size."""
        saved = self.saved_bytes()
        return None if saved is None else (saved - self.saved.a) / self.batch_size

    def parameter_bytes(self) -> int:
        """The parameters of one member with their gradients and optimizer state."""
        return FLOAT_BYTES * OPTIMIZER_COPIES * self.parameters

    def train_bytes(self) -> int:
        """Estimated training memory of one member: :meth:`parameter_bytes` and the activations of a step."""
        return self.parameter_bytes() + int(ACTIVATION_COPIES * (self.saved_bytes() or 0))

    def eval_bytes(self, n: int) -> int:
        """Estimated memory of one member drawing ``n`` samples at once (no gradients), with the real
        samples they are compared with."""
        return int(FLOAT_BYTES * n * ((self.sample_floats or 0) + 2 * self.data_floats))


_made: dict[tuple, Blueprint] = {}


def key(registry: Registry, dataset: ComponentSpec, objective: ComponentSpec) -> tuple:
    """What a blueprint depends on: the component classes and their settings (a search's per-member
    settings aside: its trials share one blueprint per stack)."""
    shared = {k: v for k, v in objective.resolved().items() if k not in search.per_member_settings(objective.config)}
    return (registry.get("dataset", dataset.type, dataset.label).cls, _text(dataset.resolved()),
            registry.get("objective", objective.type, objective.label).cls, _text(shared))


def remember(registry: Registry, dataset: ComponentSpec, objective: ComponentSpec, blueprint: Blueprint) -> None:
    if len(_made) >= REMEMBERED:
        del _made[next(iter(_made))]
    _made[key(registry, dataset, objective)] = blueprint


def recall(registry: Registry, dataset: ComponentSpec, objective: ComponentSpec) -> Blueprint | None:
    """The blueprint made for ``objective`` on ``dataset`` (by the suite's check), or None."""
    try:
        return _made.get(key(registry, dataset, objective))
    except Exception:  # noqa: BLE001 - an unknown component: nothing was made for it
        return None


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
