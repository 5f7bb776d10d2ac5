"""A test kit for plugin authors: the conformance checks the built-ins pass, and a fixture that
benchmarks one training step. An opt-in pytest plugin, never loaded unless asked for: enable it
with ``pytest_plugins = ["benchbench.testing"]`` in a top-level ``conftest.py``, or run
``pytest -p benchbench.testing``.

- :func:`check_objective`, :func:`check_dataset`, :func:`check_metric`, :func:`check_reporter`:
  plain functions that raise :class:`ConformanceError` (an ``AssertionError``, so pytest shows it
  as a failed test) naming the component and what to fix. ``check_metric`` returns what the
  metric computed and ``check_reporter`` the files it wrote, for further assertions.
- :func:`check_plugin`: the whole plugin (a module or an installed entry point's name): hook
  names, what its hooks return, and every component it provides through the checks above.
- :func:`training_stepper`: one training step of an objective through benchbench's own trainer
  (:func:`benchbench.trainer.stepper`), for timing outside pytest.
- the fixture ``benchmark_training_step``: that step under pytest-benchmark's ``benchmark``.

The checks run on :class:`KitMixture` (four 2-D Gaussians with a known density and modes) unless
given another dataset, on the CPU, with a few stacked members.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import random
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from torch import Tensor, nn

from . import divergence, params
from .cells import Cell, make_job, stream
from .dataset import Dataset, Modes, Split
from .errors import BenchbenchError
from .evaluation import NamedMetric, diagnose
from .metric import Evaluation, Metric, Unavailable
from .objective import Objective
from .outputs import Output
from .plugin_manager import ENTRY_POINT_GROUP, load_plugins
from .registry import KINDS, build_registry, default_registry, validate_component
from .reporter import Reporter, RunReport
from .suite import ComponentSpec, EvalSettings, ExecutionSettings, Suite
from .summary import summarize
from .timing import Timing
from .trainer import SETUP_SAMPLES, build_networks, generate, stacked_data, stepper, train, training_step

__tracebackhide__ = True  # pytest shows a failed check at the author's test line (--fulltrace: everything)

MEMBERS = 3  # members stacked by the objective checks (stackable objectives)
JOB_STEPS = 2  # training steps of the job the objective checks run through the trainer
SAMPLES = 64  # samples drawn by the dataset checks
METRIC_SAMPLES = 400  # real and generated samples of the metric checks' evaluations
CPU = torch.device("cpu")


class ConformanceError(AssertionError):
    """A component breaks its contract; the message names it and says what to fix."""


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One intra-op thread while a check runs: its tensors are tiny, and several threads on a busy
    machine (or beside pytest-xdist workers) make them many times slower. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _single_threaded(check: Callable) -> Callable:
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        with _one_thread():
            return check(*args, **kwargs)
    return wrapper


class KitMixture(Dataset):
    """Four isotropic 2-D Gaussians at (+-1, +-1), std 0.1, equal weights: the data the checks use."""

    name = "kit-mixture"
    shape = (2,)
    STD = 0.1

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.centers = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        device = generator.device
        k = torch.randint(len(self.centers), (n,), generator=generator, device=device)
        return self.centers.to(device)[k] + self.STD * torch.randn(n, 2, generator=generator, device=device)

    def log_prob(self, x: Tensor) -> Tensor:
        d2 = ((x[:, None, :] - self.centers.to(x.device)[None]) ** 2).sum(-1)  # [n, 4]
        log_components = -0.5 * d2 / self.STD**2 - 2 * math.log(self.STD) - math.log(2 * math.pi)
        return torch.logsumexp(log_components, dim=1) - math.log(len(self.centers))

    def modes(self) -> Modes:
        k = len(self.centers)
        return Modes(self.centers, torch.full((k,), self.STD), torch.full((k,), 1 / k))


# ---- objectives ------------------------------------------------------------------------------------

@_single_threaded
def check_objective(objective: type[Objective] | str, settings: Mapping[str, Any] | None = None,
                    dataset: Dataset | type[Dataset] | str | None = None, members: int = MEMBERS) -> None:
    """Check an objective class (or the name of an installed one) against its contract.

    Registrable (the checks :func:`benchbench.registry.validate_component` applies when plugins
    load); ``Config`` buildable from ``{}`` (and from ``settings``, a suite's mapping); on stacked
    networks of ``members`` seeds (one if the class declares ``stackable = False``): each loss is
    a float tensor of shape ``[M]``, finite, differentiable; the critic loss reaches every critic
    parameter, the generator loss every generator parameter; the loss of member ``i`` has zero
    gradient with respect to member ``j``'s parameters (unless ``stackable = False``);
    :meth:`~benchbench.Objective.diagnose` returns exactly the declared ``diagnostics``, shape
    ``[M]``, finite; no loss draws from the global random state (randomness comes from the
    members' own streams, ``self.uniform`` / ``self.normal``); the critic loss's gradient with
    respect to the critic's parameters is its derivative (checked against finite differences:
    nothing of it is cut from the graph, such as a gradient penalty without
    ``create_graph=True``); two steps of the real trainer run and move the generator; and a job
    of two steps runs through the trainer's own ``train`` (FLOP counting, timing, curves,
    diagnostics, final evaluation) with finite losses and its FLOPs counted.
    """
    cls = _component("objective", objective)
    label = _label(cls)
    config = _config(cls, settings, label)
    data = _dataset(dataset)
    members = members if cls.stackable else 1
    setup = data.sample(SETUP_SAMPLES, stream(0, "setup"))
    instance = _call(label, "the constructor", cls, config, setup)
    nets = _call(label, "building its networks", build_networks, instance, data, range(members), CPU)
    rng = [stream(s, "kit") for s in range(members)]
    batch = config.batch_size
    if nets.critic is not None:
        _check_critic_loss(label, instance, nets.generator, nets.critic, data, rng, batch)
    _check_generator_loss(label, instance, nets.generator, nets.critic, data, rng, batch)
    _check_diagnostics(label, instance, nets.generator, nets.critic, data, rng, batch)
    _check_training_steps(label, instance, data, members)
    _check_job(label, instance, data, members)


def _check_critic_loss(label: str, objective: Objective, generator: nn.Module, critic: nn.Module,
                       data: Dataset, rng: Sequence[torch.Generator], batch: int) -> None:
    """The critic loss as the trainer computes it: ``fake`` generated without gradients."""
    real = stacked_data(data, rng, batch)
    with torch.no_grad():
        fake = generate(generator, data, rng, batch, objective.config)
    critic.requires_grad_(True)
    objective.rng = _loss_streams(len(rng))
    loss = _loss_call(label, "critic_loss", objective.critic_loss, critic, real, fake)
    _check_loss(label, "critic_loss", loss, len(rng))
    _check_reaches(label, "critic_loss", loss, critic, "critic")
    if type(objective).stackable:
        _check_independent(label, "critic_loss", loss, critic, "critic")
    _check_derivative(label, objective, critic, real, fake)


def _check_generator_loss(label: str, objective: Objective, generator: nn.Module, critic: nn.Module | None,
                          data: Dataset, rng: Sequence[torch.Generator], batch: int) -> None:
    """The generator loss on fresh ``fake`` samples that carry the generator's gradients."""
    real = stacked_data(data, rng, batch)
    fake = generate(generator, data, rng, batch, objective.config)
    if critic is not None:
        critic.requires_grad_(True)  # so that mixing members through the critic shows too
    objective.rng = _loss_streams(len(rng))
    loss = _loss_call(label, "generator_loss", objective.generator_loss, critic, real, fake)
    _check_loss(label, "generator_loss", loss, len(rng))
    _check_reaches(label, "generator_loss", loss, generator, "generator")
    if type(objective).stackable:
        _check_independent(label, "generator_loss", loss, generator, "generator")
        if critic is not None:
            _check_independent(label, "generator_loss", loss, critic, "critic")


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


def _check_derivative(label: str, objective: Objective, critic: nn.Module, real: Tensor, fake: Tensor) -> None:
    """The autograd gradient of the critic loss with respect to the critic's parameters equals its
    derivative, estimated by central differences in float64 along random directions: nothing
    the loss depends on is cut from the graph. The classic cut: a gradient penalty whose
    ``torch.autograd.grad`` leaves out ``create_graph=True``, so that the critic never learns from
    it. The loss's random draws are replayed for every evaluation. Skipped for a loss that does
    not compute in float64 (it casts, or fails on float64 inputs)."""
    critic = copy.deepcopy(critic).double().requires_grad_(True)
    real, fake = real.double(), fake.double()
    params = list(critic.parameters())
    streams = [g.get_state() for g in objective.rng]

    def loss() -> Tensor:
        for g, state in zip(objective.rng, streams):
            g.set_state(state)
        return objective.critic_loss(critic, real, fake).sum()

    try:
        value = loss()
    except Exception:  # noqa: BLE001 - a loss written for float32 only: nothing to compare in float64
        return
    if value.dtype != torch.float64:  # the loss casts (e.g. .float()): finite differences would be noise
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
    _fail(label, f"critic_loss's gradient with respect to the critic's parameters is not its derivative (along a "
                 f"random direction: autograd {autograd:.6g}, finite differences {numeric:.6g}): part of the loss is "
                 f"cut from the graph. A gradient penalty needs torch.autograd.grad(..., create_graph=True); no term "
                 f"may go through .detach(), .item(), numpy or torch.no_grad()")


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


def _check_diagnostics(label: str, objective: Objective, generator: nn.Module, critic: nn.Module | None,
                       data: Dataset, rng: Sequence[torch.Generator], batch: int) -> None:
    """``diagnose`` on held-out data, as the final evaluation calls it."""
    declared = {o.name for o in objective.diagnostics}
    objective.rng = ()  # as in a run: the members' streams are for the losses only
    with torch.no_grad():
        real = stacked_data(data, rng, batch, heldout=True)
        fake = generate(generator, data, rng, batch, objective.config)
    # The core's own validation (no undeclared names, one value per member), then the kit's stricter checks.
    found = _call(label, "diagnose", diagnose, objective, critic, real, fake, len(rng))
    if set(found) != declared:
        _fail(label, f"diagnose() returned {sorted(found)}; expected the declared diagnostics {sorted(declared)}")
    for name, values in found.items():
        if not all(math.isfinite(v) for v in values):
            _fail(label, f"diagnostic {name!r} is {values}; expected {len(rng)} finite values, one per member")


def _check_training_steps(label: str, objective: Objective, data: Dataset, members: int) -> None:
    """Two iterations of the trainer's own step (:func:`benchbench.trainer.training_step`) move
    the generator and keep the losses finite."""
    nets = _call(label, "building its networks", build_networks, objective, data, range(members), CPU)
    rng = [stream(s, "train") for s in range(members)]
    losses = torch.zeros(2, members)
    before = [p.detach().clone() for p in nets.generator.parameters()]
    for _ in range(2):
        _call(label, "a training step", training_step, nets, objective, data, rng, losses)
    if not bool(torch.isfinite(losses).all()):
        _fail(label, f"the losses became non-finite within two training steps: {losses.tolist()}")
    if all(torch.equal(a, p) for a, p in zip(before, nets.generator.parameters())):
        _fail(label, "two training steps left the generator unchanged (a zero gradient?)")


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
    """A job of :data:`JOB_STEPS` steps through :func:`benchbench.trainer.train`, the code a
    worker of ``benchbench run`` executes: FLOP counting, timed training, curves with the
    diagnostics at every step, final evaluation."""
    name = getattr(type(objective), "name", "kit-objective")
    dataset = ComponentSpec("dataset", data.name, data.name, getattr(data, "config", None))
    spec = ComponentSpec("objective", name, name, objective.config)
    suite = Suite("kit", "", tuple(range(members)), JOB_STEPS, "cpu",
                  EvalSettings(samples=64, every=1, curve_samples=32, plot_samples=0),
                  ExecutionSettings(workers=1), (dataset,), (spec,), (), ())
    job = make_job(suite, dataset, spec, [Cell(f"kit-{s}", data.name, name, s, {}) for s in range(members)])
    probe = _TimingProbe(None)
    before = _global_random_states()
    outcome = _call(label, "a training job (benchbench.trainer.train, as `benchbench run` runs it)", train, job, data,
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


# ---- datasets --------------------------------------------------------------------------------------

@_single_threaded
def check_dataset(dataset: type[Dataset] | str, settings: Mapping[str, Any] | None = None, n: int = SAMPLES) -> None:
    """Check a dataset class (or the name of an installed one) against its contract.

    Registrable, ``Config`` buildable from ``{}``; ``shape`` a tuple of positive sizes;
    ``sample(n, generator)``: float32 ``[n, *shape]`` on the generator's device, finite, within
    ``bounds``, fixed by the generator alone (the global RNG does not change it) and different for
    another seed; ``sample_members`` equal to ``sample`` member by member; ``heldout``: at most
    ``n`` samples of the right shape; ``log_prob`` (when defined): ``[n]`` finite on samples;
    ``modes()``: None or consistent :class:`~benchbench.Modes`; ``split(name)``: None or a
    :class:`~benchbench.Split` of the right shape.
    """
    cls = _component("dataset", dataset)
    label = _label(cls)
    data = _call(label, "the constructor", cls, _config(cls, settings, label))
    shape = getattr(data, "shape", None)
    if not (isinstance(shape, tuple) and shape and all(isinstance(s, int) and s > 0 for s in shape)):
        _fail(label, f"shape is {shape!r}; expected a tuple of positive ints, set in __init__ or on the class")
    first = _sample(label, data, n, 0, global_seed=1)
    if not torch.equal(first, _sample(label, data, n, 0, global_seed=2)):
        _fail(label, "sample() is not fixed by its generator: it uses the global random state (pass "
                     "generator= to every torch.rand/randn/randint/multinomial)")
    if torch.equal(first, _sample(label, data, n, 1, global_seed=1)):
        _fail(label, "sample() returned the same samples for two different generator seeds")
    _check_sample_members(label, data, n)
    _check_heldout(label, data, n)
    if data.has_log_prob:
        _check_log_prob(label, data, first)
    _check_modes(label, data)
    for name in ("train", "validation", "test"):
        _check_split(label, data, name)


def _sample(label: str, data: Dataset, n: int, seed: int, global_seed: int) -> Tensor:
    """``sample(n)`` from a generator seeded ``seed``, the global random state set to ``global_seed``."""
    torch.manual_seed(global_seed)
    x = _call(label, "sample", data.sample, n, torch.Generator().manual_seed(seed))
    _check_samples(label, f"sample({n})", x, (n, *data.shape), data.bounds)
    return x


def _check_samples(label: str, what: str, x: Any, shape: tuple[int, ...], bounds: tuple[float, float] | None) -> None:
    if not (isinstance(x, Tensor) and x.dtype == torch.float32 and tuple(x.shape) == shape and x.device == CPU):
        got = (tuple(x.shape), x.dtype, str(x.device)) if isinstance(x, Tensor) else type(x).__name__
        _fail(label, f"{what} returned {got}; expected float32 of shape {shape} on the generator's device (cpu)")
    if not bool(torch.isfinite(x).all()):
        _fail(label, f"{what} returned non-finite values")
    if bounds is not None and not (x.min() >= bounds[0] and x.max() <= bounds[1]):
        _fail(label, f"{what} returned values in [{float(x.min())}, {float(x.max())}], outside bounds {bounds}")


def _check_sample_members(label: str, data: Dataset, n: int) -> None:
    stacked = _call(label, "sample_members", data.sample_members, n, [torch.Generator().manual_seed(s) for s in (0, 1)])
    one_by_one = torch.stack([data.sample(n, torch.Generator().manual_seed(s)) for s in (0, 1)])
    if not (isinstance(stacked, Tensor) and stacked.shape == one_by_one.shape and torch.equal(stacked, one_by_one)):
        _fail(label, "sample_members(n, generators) differs from sample(n, generator) member by member; it may "
                     "only compute the same samples faster")


def _check_heldout(label: str, data: Dataset, n: int) -> None:
    x = _call(label, "heldout", data.heldout, n, torch.Generator().manual_seed(0))
    count = x.shape[0] if isinstance(x, Tensor) and x.ndim >= 1 else -1
    if not 0 < count <= n:
        _fail(label, f"heldout({n}) returned {count} samples; expected between 1 and {n}")
    _check_samples(label, f"heldout({n})", x, (count, *data.shape), data.bounds)


def _check_log_prob(label: str, data: Dataset, x: Tensor) -> None:
    log_p = _call(label, "log_prob", data.log_prob, x)
    if not (isinstance(log_p, Tensor) and log_p.shape == (len(x),) and log_p.is_floating_point()):
        got = tuple(log_p.shape) if isinstance(log_p, Tensor) else type(log_p).__name__
        _fail(label, f"log_prob of {len(x)} samples returned {got}; expected a float tensor of shape ({len(x)},)")
    if not bool(torch.isfinite(log_p).all()):
        _fail(label, "log_prob is not finite on the dataset's own samples (compute it with logsumexp)")


def _check_modes(label: str, data: Dataset) -> None:
    modes = _call(label, "modes", data.modes)
    if modes is None:
        return
    if not isinstance(modes, Modes):
        _fail(label, f"modes() returned {type(modes).__name__}; expected benchbench.Modes or None")
    k = modes.centers.shape[0]
    if (tuple(modes.centers.shape[1:]) != data.shape or modes.stds.shape != (k,) or modes.weights.shape != (k,)
            or not bool((modes.stds > 0).all()) or abs(float(modes.weights.sum()) - 1) > 1e-5):
        _fail(label, f"modes() is inconsistent: centers {tuple(modes.centers.shape)}, stds {tuple(modes.stds.shape)}, "
                     f"weights {tuple(modes.weights.shape)}; expected [K, *shape], [K] positive, [K] summing to 1")


def _check_split(label: str, data: Dataset, name: str) -> None:
    split = _call(label, f"split({name!r})", data.split, name)
    if split is None:
        return
    if not isinstance(split, Split):
        _fail(label, f"split({name!r}) returned {type(split).__name__}; expected benchbench.Split or None")
    n = len(split.x)
    if tuple(split.x.shape[1:]) != data.shape or split.x.dtype != torch.float32 or split.labels.shape[0] != n \
            or split.labels.dtype != torch.int64:
        _fail(label, f"split({name!r}) holds x {tuple(split.x.shape)} {split.x.dtype} and labels "
                     f"{tuple(split.labels.shape)} {split.labels.dtype}; expected float32 [N, *shape] and int64 [N]")


# ---- metrics ---------------------------------------------------------------------------------------

@_single_threaded
def check_metric(metric: type[Metric] | str, settings: Mapping[str, Any] | None = None,
                 evaluation: Evaluation | None = None) -> list[dict[str, float | Unavailable]]:
    """Check a metric class (or the name of an installed one) against its contract; return what it
    computed on each evaluation it applies to.

    Registrable, ``Config`` buildable from ``{}``; on ``evaluation`` (default: generated samples
    of :class:`KitMixture`, once with a job's timing and once without, as curves have none)
    ``compute`` returns exactly the declared outputs, each a plain number or
    :class:`~benchbench.Unavailable`, the same numbers when computed again. It must apply to at
    least one of the evaluations: pass one it applies to (e.g. on images).
    """
    cls = _component("metric", metric)
    label = _label(cls)
    instance = _call(label, "the constructor", cls, _config(cls, settings, label))
    evaluations = [evaluation] if evaluation is not None else kit_evaluations()
    results = []
    for ev in evaluations:
        if _call(label, "applies", instance.applies, ev):
            first = _computed(label, instance, ev)
            if _comparable(first) != _comparable(_computed(label, instance, ev)):
                _fail(label, "compute() returned other numbers for the same evaluation: draw randomness from "
                             "evaluation.generator(), not the global random state")
            results.append(first)
    if not results:
        _fail(label, "applies() is false for every evaluation tried; pass check_metric(..., evaluation=...) "
                     "with one it applies to")
    return results


def kit_evaluations(n: int = METRIC_SAMPLES) -> list[Evaluation]:
    """What :func:`check_metric` scores by default: held-out :class:`KitMixture` data against
    shifted, widened samples of it, with a job's timing (final evaluation) and without (curves)."""
    data = KitMixture()
    real = data.sample(n, torch.Generator().manual_seed(0))
    fake = 1.1 * data.sample(n, torch.Generator().manual_seed(1)) + 0.05
    timing = Timing("cpu", members=2, steps=100, train_seconds=0.5, samples=n, sample_seconds=1e-3,
                    peak_memory_bytes=2**28, memory_kind="process_rss", flops_per_step=1e6)
    return [Evaluation(real, fake, data, seed=0, timing=timing, step=100),
            Evaluation(real, fake, data, seed=0, step=50)]


def _computed(label: str, metric: Metric, evaluation: Evaluation) -> dict[str, float | Unavailable]:
    values = _call(label, "compute", metric.compute, evaluation)
    declared = {o.name for o in metric.outputs}
    if not isinstance(values, dict) or set(values) != declared:
        got = sorted(values) if isinstance(values, dict) else type(values).__name__
        _fail(label, f"compute() returned {got}; expected exactly the declared outputs {sorted(declared)} "
                     f"(an output it cannot compute here: Unavailable(reason))")
    for key, value in values.items():
        if not (isinstance(value, Unavailable) or (isinstance(value, (int, float)) and not isinstance(value, bool))):
            _fail(label, f"output {key!r} is {type(value).__name__} {value!r}; expected a plain float "
                         f"(float(tensor)) or Unavailable(reason)")
    return values


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    """Values with NaN made equal to itself."""
    return {k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()}


# ---- reporters -------------------------------------------------------------------------------------

@_single_threaded
def check_reporter(reporter: type[Reporter] | str, directory: str | Path, settings: Mapping[str, Any] | None = None,
                   run: RunReport | None = None) -> list[Path]:
    """Check a reporter class (or the name of an installed one) against its contract; return the
    paths it wrote. Registrable, ``Config`` buildable from ``{}``; ``report(run, directory)`` on
    ``run`` (default: :func:`kit_run_report`) returns a list of paths of files it wrote inside
    ``directory``."""
    cls = _component("reporter", reporter)
    label = _label(cls)
    directory = Path(directory)
    instance = _call(label, "the constructor", cls, _config(cls, settings, label))
    paths = _call(label, "report", instance.report, run if run is not None else kit_run_report(directory), directory)
    if not isinstance(paths, list) or not all(isinstance(p, Path) for p in paths):
        _fail(label, f"report() returned {type(paths).__name__}; expected a list of pathlib.Path")
    for path in paths:
        if not path.is_file() or directory.resolve() not in path.resolve().parents:
            _fail(label, f"report() returned {path}, which is not a file it wrote inside {directory}")
    return paths


def kit_run_report(directory: Path, seeds: Sequence[int] = (0, 1, 2)) -> RunReport:
    """A small finished run on :class:`KitMixture`: the reference row and two objectives, final
    records and curves of two outputs, generated samples."""
    data = KitMixture()
    outputs = {o.name: o for o in (Output("kit_quality", "quality", "higher", "a quality score"),
                                   Output("kit_divergence", "divergence", "lower", "a divergence"))}
    records, curves, samples = [], [], {}
    for rank, objective in enumerate(("(data)", "kit-a", "kit-b")):
        for seed in seeds:
            cell = f"kit-mixture/{objective}/{seed}"
            for name in outputs:
                value = rank + 0.1 * seed
                records.append((cell, f"kit-mixture/{objective}", "kit-mixture", objective, seed, name, value))
                if objective != "(data)":
                    curves += [(cell, "kit-mixture", objective, seed, step, name, value + 1 / step) for step in (1, 10)]
            x = data.sample(200, torch.Generator().manual_seed(seed))
            samples["kit-mixture", objective, seed] = x * (1 + 0.1 * rank)
    records = pd.DataFrame(records, columns=["cell", "job", "dataset", "objective", "seed", "metric", "value"])
    curves = pd.DataFrame(curves, columns=["cell", "dataset", "objective", "seed", "step", "metric", "value"])
    return RunReport("kit", Path(directory), records, curves, summarize(records, outputs), outputs,
                     {"kit-mixture": data}, samples)


# ---- plugins ---------------------------------------------------------------------------------------

def check_plugin(plugin: object | str, skip: Collection[str] = ()) -> dict[str, list[str]]:
    """Check a whole plugin: a module (or object) with hooks, or the entry-point name of an
    installed one; return what it provides, ``{kind: [component names]}``.

    It imports; every attribute carrying ``@hookimpl`` is a hook of :mod:`benchbench.hookspecs`
    (a misspelling fails with the closest hook's name) and no hook is left unmarked; its hooks
    return what the core accepts when plugins load (lists of valid component classes, names
    unique); it provides at least one component; and each component passes its own check with
    the defaults (:func:`check_objective`, :func:`check_dataset`, :func:`check_metric`,
    :func:`check_reporter`). ``skip``: component names left to their own checks, e.g. a metric
    that needs ``check_metric(..., evaluation=...)``.
    """
    name, module = _plugin(plugin)
    label = f"plugin {name!r}"
    registry = build_registry(load_plugins([(name, module)], entry_points=False))
    problems = [f.message for f in registry.failures if f.plugin == name]
    if problems:
        _fail(label, "; ".join(problems))
    provided = {kind: names for kind, names in registry.provided_by(name).items() if names}
    if not provided:
        _fail(label, f"provides no component: implement at least one of the hooks "
                     f"{', '.join(k.hook for k in KINDS.values())}, each returning a list of classes")
    checks = {"objective": check_objective, "dataset": check_dataset, "metric": check_metric}
    for kind, names in provided.items():
        for component in names:
            if component in skip:
                continue
            cls = registry.entries[kind][component].cls
            if kind == "reporter":
                with tempfile.TemporaryDirectory() as directory:
                    check_reporter(cls, directory)
            else:
                checks[kind](cls)
    return provided


def _plugin(plugin: object | str) -> tuple[str, object]:
    """(name, module) of a plugin given as itself or as the entry-point name of an installed one."""
    if not isinstance(plugin, str):
        return getattr(plugin, "__name__", type(plugin).__name__), plugin
    found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == plugin]
    if not found:
        installed = sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)})
        raise ConformanceError(f"no installed plugin {plugin!r} (entry-point group {ENTRY_POINT_GROUP!r}: "
                               f"pip install -e . in the plugin's package?); installed: {', '.join(installed)}")
    return plugin, _call(f"plugin {plugin!r}", f"importing {found[0].value}", found[0].load)


# ---- benchmarking ----------------------------------------------------------------------------------

def training_stepper(objective: type[Objective] | str, settings: Mapping[str, Any] | None = None,
                     dataset: Dataset | type[Dataset] | str | None = None, members: int = 1,
                     device: str | torch.device = "cpu") -> Callable[[], None]:
    """``step()``: one training step (k critic steps, one generator step) of ``members`` freshly
    built stacked seeds, through :func:`benchbench.trainer.stepper`, the code a run executes.
    ``objective``: a class or the name of an installed one; ``settings``: a suite's mapping;
    ``dataset``: an instance, a class, the name of an installed one, or None (:class:`KitMixture`)."""
    cls = _component("objective", objective)
    device = torch.device(device)
    data = _dataset(dataset)
    config = params.build(cls.Config, settings, f"{cls.__name__} settings")
    instance = cls(config, data.sample(SETUP_SAMPLES, stream(0, "setup", device)))
    return stepper(instance, data, range(members), device)


@pytest.fixture
def benchmark_training_step(request):
    """``benchmark_training_step(objective, settings=None, dataset=None, members=1, steps=20,
    rounds=5, device="cpu")`` times ``steps`` training steps per round with pytest-benchmark's
    ``benchmark`` fixture (one warm-up round), records objective, members, steps, device and
    torch threads in ``extra_info`` (and ``member_steps_per_s`` when timing is on), and returns
    the fixture. Threads are left as they are: set them (``torch.set_num_threads``) to measure
    what you mean to, e.g. 1, as each of benchbench's worker processes has."""
    try:
        benchmark = request.getfixturevalue("benchmark")
    except pytest.FixtureLookupError:
        pytest.fail("benchmark_training_step needs pytest-benchmark: pip install pytest-benchmark", pytrace=False)

    def run(objective, settings=None, dataset=None, members: int = 1, steps: int = 20, rounds: int = 5,
            device: str | torch.device = "cpu"):
        step = training_stepper(objective, settings, dataset, members, device)
        device = torch.device(device)

        def one_round() -> None:
            for _ in range(steps):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        name = objective if isinstance(objective, str) else objective.name
        benchmark.extra_info.update(objective=name, members=members, steps=steps, device=str(device),
                                    torch_threads=torch.get_num_threads())
        benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=1)
        if benchmark.stats is not None:  # None when timing is off (--benchmark-disable)
            benchmark.extra_info["member_steps_per_s"] = steps * members / benchmark.stats.stats.median
        return benchmark
    return run


# ---- helpers ---------------------------------------------------------------------------------------

def _component(kind: str, component: type | str) -> type:
    """The class, after the checks a hook's return goes through; a name: the installed component."""
    if isinstance(component, str):
        return default_registry().get(kind, component, "benchbench.testing").cls
    try:
        validate_component(kind, component)
    except BenchbenchError as exc:
        raise ConformanceError(f"{exc} (the check a plugin's hook return goes through)") from None
    return component


def _config(cls: type, settings: Mapping[str, Any] | None, label: str) -> Any:
    """``cls.Config`` built from ``{}`` (every field has a default), then from ``settings``."""
    config = None
    for values in ({}, dict(settings or {})):
        try:
            config = params.build(cls.Config, values, f"{cls.__name__}.Config")
        except BenchbenchError as exc:
            _fail(label, f"Config could not be built from {values!r}: {exc}")
    return config


def _dataset(dataset: Dataset | type[Dataset] | str | None) -> Dataset:
    if dataset is None:
        return KitMixture()
    if isinstance(dataset, Dataset):
        return dataset
    cls = _component("dataset", dataset)
    return cls(params.build(cls.Config, {}, f"{cls.__name__}.Config"))


def _call(label: str, what: str, function: Callable, *args: Any) -> Any:
    """``function(*args)``; an exception becomes a :class:`ConformanceError` naming ``what``."""
    try:
        return function(*args)
    except ConformanceError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the plugin raised, named
        raise ConformanceError(f"{label}: {what} raised {type(exc).__name__}: {exc}") from exc


def _label(cls: type) -> str:
    return f"{cls.__name__} ({getattr(cls, 'name', None)!r})"


def _fail(label: str, message: str):
    raise ConformanceError(f"{label}: {message}")


__all__ = ["ConformanceError", "KitMixture", "benchmark_training_step", "check_dataset", "check_metric",
           "check_objective", "check_plugin", "check_reporter", "kit_evaluations", "kit_run_report", "training_stepper"]
