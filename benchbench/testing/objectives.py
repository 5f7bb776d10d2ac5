"""Conformance checks of an objective: its declarations, losses, sampler, training steps and a whole job."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..api.dataset import Dataset
from ..api.errors import PluginError
from ..api.metric import Evaluation, Metric, Timing
from ..api.objective import Nets, Objective, Update
from ..api.outputs import Output
from ..config.compute import Budget
from ..config.suite import ComponentSpec, EvalSettings, ExecutionSettings, Suite
from ..plan.build import setup_data
from ..plan.cells import Cell, make_job, stream
from ..train import divergence
from ..train.declarations import declared_networks, declared_nfe, declared_updates
from ..train.evaluation import NamedMetric, diagnose
from ..train.sampling import draw
from ..train.stack import Networks, build_networks, sample_noise, seen_by_losses
from ..train.trainer import stacked_data, train, training_step
from .kit import (
    CPU,
    JOB_STEPS,
    MEMBERS,
    ConformanceError,
    _call,
    _component,
    _config,
    _dataset,
    _fail,
    _label,
    _single_threaded,
)

__tracebackhide__ = True


@_single_threaded
def check_objective(objective: type[Objective] | str, settings: Mapping[str, Any] | None = None,
                    dataset: Dataset | type[Dataset] | str | None = None, members: int = MEMBERS) -> None:
    """Check an objective class (or the name of an installed one) against its contract.

    Registrable (the checks :func:`benchbench.registry.components.validate_component` applies when plugins
    load); ``Config`` buildable from ``{}`` (and from ``settings``, a suite's mapping); its declared
    networks and updates consistent (every update trains declared networks with a learning-rate
    setting that exists, every network is trained by some update) and ``nfe() >= 1``. On stacked
    networks of ``members`` seeds (one if the class declares ``stackable = False``), for every
    update as the trainer runs it: the loss is a float tensor of shape ``[M]``, finite,
    differentiable, reaching every parameter of the update's networks; the loss of member ``i``
    has zero gradient with respect to member ``j``'s parameters (unless ``stackable = False``);
    its gradient is its derivative (finite differences in float64: nothing cut from the graph,
    such as a gradient penalty without ``create_graph=True``); no loss draws from the global
    random state (randomness comes from the members' own streams, ``self.uniform`` /
    ``self.normal``). The sampler returns ``[M, n, *shape]`` finite samples, draws only from the
    members' streams (the same streams give the same samples; member ``i``'s samples do not
    depend on the other members); :meth:`~benchbench.Objective.diagnose_networks` returns exactly
    the declared ``diagnostics``, shape ``[M]``, finite; two steps of the real trainer run and
    move every network; and a job of two steps runs through the trainer's own ``train`` (FLOP
    counting of training and sampling, timing, curves, diagnostics, final evaluation) with finite
    losses and its FLOPs counted.
    """
    cls = _component("objective", objective)
    label = _label(cls)
    config = _config(cls, settings, label)
    data = _dataset(dataset)
    members = members if cls.stackable else 1
    setup = setup_data(data)
    instance = _call(label, "the constructor", cls, config, setup)
    networks = _declared(label, "networks()", declared_networks, instance, data)
    _declared(label, "updates()", declared_updates, instance, networks)
    _declared(label, "nfe()", declared_nfe, instance)
    nets = _call(label, "building its networks", build_networks, instance, data, range(members), CPU)
    rng = [stream(s, "kit") for s in range(members)]
    for update in nets.updates:
        _check_update(label, instance, nets, update, data, rng)
    _check_sampler(label, instance, nets, data, members)
    _check_diagnostics(label, instance, nets, data, rng)
    _check_training_steps(label, instance, data, members)
    _check_job(label, instance, data, members)


def _declared(label: str, what: str, check: Callable, *args: Any) -> Any:
    """A declaration checked by the core's own :mod:`benchbench.train.declarations`."""
    try:
        return check(*args)
    except PluginError as error:  # the core's own line: what is inconsistent
        _fail(label, error.message)
    except Exception as exc:  # noqa: BLE001 - whatever the plugin raised, named
        raise ConformanceError(f"{label}: {what} raised {type(exc).__name__}: {exc}") from exc


def _check_update(label: str, objective: Objective, nets: Networks, update: Update, data: Dataset,
                  rng: Sequence[torch.Generator]) -> None:
    """One update's loss as the trainer computes it: fresh data, only its networks trainable (for
    the independence check every network is, so that mixing members through any shows)."""
    what = f"{update.name}_loss"
    real = stacked_data(data, rng, objective.config.batch_size)
    noise = [stream(s, "kit-noise") for s in range(len(rng))]
    nets.train_only(list(nets.modules))
    with objective.random_streams(_loss_streams(len(rng))):
        loss = _loss_call(label, what, update.loss, nets.view(noise), real)
        _check_loss(label, what, loss, len(rng))
        for name in update.networks:
            _check_reaches(label, what, loss, nets.modules[name], name)
        if type(objective).stackable:
            for name, module in nets.modules.items():
                _check_independent(label, what, loss, module, name)
        _check_derivative(label, objective, nets, update, real, [stream(s, "kit-noise") for s in range(len(rng))])


def _check_sampler(label: str, objective: Objective, nets: Networks, data: Dataset, members: int) -> None:
    """``sample`` through the core (shape checked), finite, from the members' streams only: the
    same streams give the same samples, no global random state moves, and member 0's samples are
    the same in a stack as alone."""
    n = SAMPLE_COUNT
    before = _global_random_states()
    fake = _call(label, "sample", draw, nets, objective, data, range(members), n, "kit")
    if not _same_states(before, _global_random_states()):
        _fail(label, f"sample {GLOBAL_RANDOMNESS}")
    if not bool(torch.isfinite(fake).all()):
        _fail(label, "sample returned non-finite samples from the untrained networks")
    again = _call(label, "sample", draw, nets, objective, data, range(members), n, "kit")
    if not torch.equal(fake, again):
        _fail(label, "sample gave other samples from the same member streams: draw its randomness with "
                     "self.normal / self.uniform (objective.rng) or nets.prior, nothing else")
    if members > 1 and type(objective).stackable:
        alone = _call(label, "building its networks", build_networks, objective, data, [0], CPU)
        single = _call(label, "sample", draw, alone, objective, data, [0], n, "kit")
        if not torch.allclose(single[0], fake[0], rtol=1e-4, atol=1e-5):
            _fail(label, "sample of member 0 differs in a stack from alone: the sampler mixes the stacked members "
                         "(or draws for all members from one stream)")


SAMPLE_COUNT = 16  # samples per member the sampler checks draw


def _loss_streams(members: int) -> list[torch.Generator]:
    """The per-member generators the kit gives an objective's losses (``Objective.rng``)."""
    return [stream(s, "kit-loss") for s in range(members)]


def _global_random_states() -> tuple:
    """torch's, Python's and NumPy's global random states, to compare before and after a call."""
    import numpy
    return torch.get_rng_state(), random.getstate(), numpy.random.get_state()[1].copy()


def _same_states(a: tuple, b: tuple) -> bool:
    return torch.equal(a[0], b[0]) and a[1] == b[1] and bool((a[2] == b[2]).all())


GLOBAL_RANDOMNESS = ("draws from the global random state (torch.rand/randn without generator=, random, numpy.random): "
                     "runs are not reproducible and a member's result depends on its stack; draw with "
                     "self.uniform(...) / self.normal(...), the members' own streams in self.rng")


def _loss_call(label: str, what: str, loss: Callable, *args: Any) -> Any:
    """``loss(*args)`` as :func:`_call`, failing if it draws from a global random state."""
    before = _global_random_states()
    value = _call(label, what, loss, *args)
    if not _same_states(before, _global_random_states()):
        _fail(label, f"{what} {GLOBAL_RANDOMNESS}")
    return value


def _check_derivative(label: str, objective: Objective, nets: Networks, update: Update, real: Tensor,
                      noise: Sequence[torch.Generator]) -> None:
    """The autograd gradient of an update's loss with respect to its networks' parameters equals
    its derivative, estimated by central differences in float64 along random directions: nothing
    the loss depends on is cut from the graph. The classic cut: a gradient penalty whose
    ``torch.autograd.grad`` leaves out ``create_graph=True``, so that the critic never learns from
    it. The loss's random draws (its streams and the prior's) are replayed for every evaluation.
    Skipped for a loss that does not compute in float64 (it casts, or fails on float64 inputs)."""
    modules = {name: copy.deepcopy(m).double().requires_grad_(name in update.networks)
               for name, m in nets.modules.items()}
    params = [p for name in update.networks for p in modules[name].parameters()]
    real = real.double()
    streams = [g.get_state() for g in objective.rng]
    noise_states = [g.get_state() for g in noise]
    view = Nets(seen_by_losses(modules, nets.specs), lambda n: sample_noise(noise, n, objective.config).double(),
                nets.bounds)

    def loss() -> Tensor:
        for g, state in zip([*objective.rng, *noise], [*streams, *noise_states]):
            g.set_state(state)
        return update.loss(view, real).sum()

    try:
        value = loss()
    except Exception:  # noqa: BLE001 - a loss written for float32 only: nothing to compare in float64
        return
    if value.dtype != torch.float64 or not value.requires_grad:  # the loss casts: finite differences would be noise
        return
    grads = torch.autograd.grad(value, params, allow_unused=True)
    directions = torch.Generator().manual_seed(0)
    found = []
    for _ in range(2):  # a ReLU kink crossed by a step of 1e-9 is unlikely; twice in a row, vanishingly so
        direction = [torch.randn(p.shape, generator=directions, dtype=p.dtype) for p in params]
        autograd = float(sum((g * d).sum() for g, d in zip(grads, direction) if g is not None))
        original = [p.detach().clone() for p in params]
        values = []
        for h in (DERIVATIVE_STEP, -DERIVATIVE_STEP):
            with torch.no_grad():
                for p, p0, d in zip(params, original, direction):
                    p.copy_(p0 + h * d)
            values.append(loss().detach().item())
        with torch.no_grad():
            for p, p0 in zip(params, original):
                p.copy_(p0)
        numeric = (values[0] - values[1]) / (2 * DERIVATIVE_STEP)
        if abs(autograd - numeric) <= 1e-3 * max(1.0, abs(autograd), abs(numeric)):
            return
        found.append((autograd, numeric))
    autograd, numeric = found[0]
    owners = " and ".join(update.networks)
    _fail(label, f"{update.name}_loss's gradient with respect to the {owners}'s parameters is not its derivative "
                 f"(along a random direction: autograd {autograd:.6g}, finite differences {numeric:.6g}): part of the "
                 f"loss is cut from the graph. A gradient penalty needs torch.autograd.grad(..., create_graph=True); "
                 f"no term may go through .detach(), .item(), numpy or torch.no_grad()")


DERIVATIVE_STEP = 1e-9  # central-difference step in float64 (parameters of order 0.1-1)


def _check_loss(label: str, what: str, loss: Any, members: int) -> None:
    """One finite, differentiable float loss per member."""
    if not isinstance(loss, Tensor):
        _fail(label, f"{what} returned {type(loss).__name__}; expected a tensor of shape ({members},)")
    if loss.shape != (members,):
        _fail(label, f"{what} returned shape {tuple(loss.shape)}; expected ({members},): one loss per stacked "
                     f"member (reduce each member with .flatten(1).mean(1), never a plain .mean())")
    if not loss.is_floating_point():
        _fail(label, f"{what} returned dtype {loss.dtype}; expected a floating-point tensor")
    if not bool(torch.isfinite(loss).all()):
        _fail(label, f"{what} is not finite at initialisation: {loss.detach().tolist()} (compute "
                     f"log-probabilities from logits: softplus, binary_cross_entropy_with_logits)")
    if not loss.requires_grad:
        _fail(label, f"{what} is not differentiable: it has no grad_fn (computed under no_grad, detached, or "
                     f"through .item() / numpy?)")


def _check_reaches(label: str, what: str, loss: Tensor, module: nn.Module, owner: str) -> None:
    """Every parameter of ``module`` gets a gradient from ``loss``, not all of them zero."""
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss.sum(), [p for _, p in named], retain_graph=True, allow_unused=True)
    unreached = [n for (n, _), g in zip(named, grads) if g is None]
    if len(unreached) == len(named) or all(g is None or not bool(g.any()) for g in grads):
        _fail(label, f"{what} does not depend on the {owner}'s parameters (is `fake` detached, or the "
                     f"{owner}'s output unused?)")
    if unreached:
        _fail(label, f"{what} does not reach the {owner} parameters {', '.join(unreached)}")


def _check_independent(label: str, what: str, loss: Tensor, module: nn.Module, owner: str) -> None:
    """The loss of member ``i`` has zero gradient with respect to every other member's parameters.
    A stacked parameter holds its members as equal blocks along its first dimension."""
    members = loss.shape[0]
    params = [p for p in module.parameters() if p.requires_grad and p.shape[0] % members == 0]
    for i in range(members):
        grads = torch.autograd.grad(loss[i], params, retain_graph=True, allow_unused=True)
        for g in grads:
            if g is None:
                continue
            per_member = g.reshape(members, -1).abs().amax(1)
            others = [j for j in range(members) if j != i and per_member[j] != 0]
            if others:
                _fail(label, f"{what} of member {i} has a nonzero gradient with respect to member {others[0]}'s "
                             f"{owner} parameters: the loss mixes the stacked members (a statistic over the "
                             f"whole [M, B] batch?). Reduce each member separately, or set stackable = False")


def _check_diagnostics(label: str, objective: Objective, nets: Networks, data: Dataset,
                       rng: Sequence[torch.Generator]) -> None:
    """``diagnose_networks`` on held-out data and sampled data, as the final evaluation calls it
    (drawing from the members' "diagnose" streams)."""
    declared = {o.name for o in objective.diagnostics}
    members = len(rng)
    real = stacked_data(data, rng, objective.config.batch_size, heldout=True)
    fake = draw(nets, objective, data, range(members), objective.config.batch_size, "kit-diagnose")
    before = _global_random_states()
    # The core's own validation (no undeclared names, one value per member), then the kit's stricter checks.
    found = _call(label, "diagnose", diagnose, objective, nets.view([stream(s, "kit-noise") for s in range(members)]),
                  real, fake, members, [stream(s, "kit-diagnose") for s in range(members)])
    if not _same_states(before, _global_random_states()):
        _fail(label, f"diagnose {GLOBAL_RANDOMNESS}")
    if set(found) != declared:
        _fail(label, f"diagnose() returned {sorted(found)}; expected the declared diagnostics {sorted(declared)}")
    for name, values in found.items():
        if not all(math.isfinite(v) for v in values):
            _fail(label, f"diagnostic {name!r} is {values}; expected {members} finite values, one per member")


def _check_training_steps(label: str, objective: Objective, data: Dataset, members: int) -> None:
    """Two iterations of the trainer's own step (:func:`benchbench.train.trainer.training_step`) move
    every network and keep the losses finite."""
    nets = _call(label, "building its networks", build_networks, objective, data, range(members), CPU)
    rng = [stream(s, "train") for s in range(members)]
    losses = torch.zeros(len(nets.updates), members)
    before = {name: [p.detach().clone() for p in m.parameters()] for name, m in nets.modules.items()}
    for _ in range(2):
        _call(label, "a training step", training_step, nets, objective, data, rng, losses)
    if not bool(torch.isfinite(losses).all()):
        _fail(label, f"the losses became non-finite within two training steps: {losses.tolist()}")
    for name, module in nets.modules.items():
        if all(torch.equal(a, p) for a, p in zip(before[name], module.parameters())):
            _fail(label, f"two training steps left the {name} unchanged (a zero gradient?)")


class _TimingProbe(Metric):
    """Keeps the :class:`~benchbench.Timing` a job's final evaluation hands its metrics."""

    name = "kit-timing"
    outputs = (Output("kit_train_seconds", "throughput", "none", "the job's training time"),)
    timing: Timing | None = None

    def applies(self, evaluation: Evaluation) -> bool:
        return evaluation.timing is not None

    def compute(self, evaluation: Evaluation) -> dict[str, float]:
        self.timing = evaluation.timing
        return {"kit_train_seconds": evaluation.timing.train_seconds}


def _check_job(label: str, objective: Objective, data: Dataset, members: int) -> None:
    """A job of :data:`JOB_STEPS` steps through :func:`benchbench.train.trainer.train`, the code a
    worker of ``benchbench run`` executes: FLOP counting, timed training, curves with the
    diagnostics at every step, final evaluation."""
    name = getattr(type(objective), "name", "kit-objective")
    dataset = ComponentSpec("dataset", data.name, data.name, getattr(data, "config", None))
    spec = ComponentSpec("objective", name, name, objective.config)
    suite = Suite("kit", "", tuple(range(members)), Budget("steps", JOB_STEPS), "cpu",
                  EvalSettings(samples=64, every=1, curve_samples=32, plot_samples=0),
                  ExecutionSettings(workers=1), (dataset,), (spec,), (), ())
    job = make_job(suite, dataset, spec, [Cell(f"kit-{s}", data.name, name, s, {}) for s in range(members)])
    probe = _TimingProbe(None)
    before = _global_random_states()
    outcome = _call(label, "a training job (benchbench.train.trainer.train, as `benchbench run` runs it)", train, job, data,
                    [NamedMetric(probe.name, "benchbench.testing", probe)], objective, CPU)
    if not _same_states(before, _global_random_states()):
        _fail(label, f"a training job {GLOBAL_RANDOMNESS}")
    if outcome.problems:
        _fail(label, f"a training job reported problems: {'; '.join(outcome.problems)}")
    diverged = [(i, d) for i, d in enumerate(outcome.diverged) if d]
    if diverged:
        i, d = diverged[0]
        _fail(label, f"in a training job of {JOB_STEPS} steps, member {i} diverged at step {d['step']} "
                     f"({divergence.describe(d)})")
    timing = probe.timing
    if timing is None or (timing.flops_per_step is None and timing.flops_note.startswith("FLOPs not counted")):
        why = timing.flops_note if timing is not None else "no timing reached the metrics"
        _fail(label, f"the FLOPs of its training step could not be counted ({why}); runs will report gflop_per_s as "
                     f"n/a. The count runs one step under a torch dispatch mode (torch.utils.flop_counter's formulas)")
    if timing.flops_per_sample is None:
        _fail(label, f"the FLOPs of its sampler could not be counted ({timing.sample_flops_note}); runs will report "
                     f"flops_per_sample as n/a. The count runs the sampler under a torch dispatch mode")



