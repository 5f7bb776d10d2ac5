"""Making the blueprints of a suite (:class:`benchbench.plan.blueprint.Blueprint`), before anything trains.

For each (dataset, objective) the objective is built with its data and its declarations are read and
checked (:mod:`.declarations`); its networks are built on the meta device to count their parameters
(nothing is allocated, so a network far too large for the machine is sized, not built). Then, unless
the networks alone are very large, one-member models run the trainer's own training step
(:func:`benchbench.train.trainer.training_step`) at batch sizes :data:`MEASURED_BATCHES`, counting the
bytes autograd saves (``torch.autograd.graph.saved_tensors_hooks``), and at its own batch size, counting
the FLOPs (:func:`benchbench.train.timing.count_flops`; a fused optimizer's step, which counts none, is
skipped), and the objective's sampler draws :data:`SAMPLES`
samples, counting its network calls (its ``nfe``), FLOPs and largest network call.

A declaration that cannot run is refused in one :class:`ConfigError` line naming the suite key and the
objective's plugin (exit code 2): ``Objective.__init__`` or ``networks()`` raising, declarations that do
not fit together, a loss or sampler using a network it did not declare, samples of the wrong shape,
an ``nfe()`` that disagrees with the count. Other failures of a loss or sampler are left to the jobs,
which name the plugin (the blueprint is then not measured: sized by its parameters alone).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

from ..api.dataset import Dataset
from ..api.errors import BenchbenchError, ComponentError, ConfigError, PluginError
from ..api.objective import Declaration, MissingNetwork, Network, Objective, Update
from ..config.suite import ComponentSpec, Suite
from ..nets.models import build_declared, build_network
from ..plan.blueprint import Blueprint, Fit, NetworkSize, key, remember
from ..plan.build import build, setup_data
from ..plan.cells import stream
from ..plan.trials import trial_specs
from ..registry.components import Entry, Registry
from .declarations import declared_networks, declared_nfe, declared_updates, name_of
from .sampling import draw
from .stack import build_networks
from .timing import count_flops
from .trainer import training_step

MEASURED_BATCHES = (2, 4, 8)  # batch sizes of the measured training steps (three points fit a quadratic)
MEASURE_LIMIT = 2**30  # bytes of parameters and optimizer state above which nothing is built for real
COUNT_LIMIT = 2**30  # bytes saved by a step at the objective's batch size above which its FLOPs are fitted
SAMPLES = 2  # samples drawn to count the sampler's network calls and FLOPs
MEASURE_S = 60.0  # a plugin's code run for a blueprint is stopped after this long (or execution.job_timeout)
SAMPLE_S = 60.0  # a sampler still running after this long is stopped: its nfe is then not counted
CPU = torch.device("cpu")


class _Enough(Exception):
    """Raised from a forward hook to stop a sampler: it runs too long to count, or (``calls``) it has
    called its networks more often than it declares."""

    def __init__(self, calls: int | None = None):
        super().__init__(calls)
        self.calls = calls


def suite_blueprints(suite: Suite, registry: Registry, datasets: Sequence[Dataset] | None = None) -> list[Blueprint]:
    """The blueprint of every (dataset, objective) of ``suite`` (and of every stack of a search's trials),
    remembered for planning. ``datasets``: the suite's datasets, in order, when the caller built them
    already. Refuses a declaration that cannot run (:class:`ConfigError`)."""
    specs = list(suite.objectives)
    if suite.search:
        specs += [s for trials in trial_specs(suite).values() for s in trials]
    if datasets is None:
        datasets = [build(registry, spec) for spec in suite.datasets]
    made = []
    for dataset_spec, dataset in zip(suite.datasets, datasets):
        seen = set()
        for spec in specs:
            if key(registry, dataset_spec, spec) in seen:
                continue
            seen.add(key(registry, dataset_spec, spec))
            where = f"{suite.source}: objectives.{spec.label}"
            blueprint = make_blueprint(registry, dataset_spec, spec, dataset, where, suite.execution.precision,
                                       suite.execution.job_timeout or MEASURE_S)
            if blueprint is not None:
                remember(registry, dataset_spec, spec, blueprint)
                made.append(blueprint)
    return made


def make_blueprint(registry: Registry, dataset_spec: ComponentSpec, spec: ComponentSpec, dataset: Dataset,
                   where: str, precision: str = "fp32", seconds: float = 0.0) -> Blueprint | None:
    """The blueprint of ``spec`` on ``dataset`` (None when the dataset gives no data: its jobs fail,
    naming it). Not measured when the plugin's loss or sampler fails, ends its process or runs longer
    than ``seconds`` (:func:`measure`). A declaration that cannot run is a :class:`ConfigError` at ``where``."""
    entry = registry.get("objective", spec.type, spec.label)
    refuse = _refusal(entry, where)
    with torch.random.fork_rng(devices=[]):  # planning leaves the global random state as it was
        try:
            data = setup_data(dataset)
        except Exception:  # noqa: BLE001 - a broken dataset fails its own jobs, named
            return None
        try:
            objective = entry.cls(spec.config, data)
            specs = declared_networks(objective, dataset)
            updates = declared_updates(objective, specs)
            nfe = declared_nfe(objective)
            sizes = tuple(NetworkSize(s, parameters(s, dataset, name_of(objective))) for s in specs)
        except BenchbenchError as exc:
            raise refuse(getattr(exc, "message", str(exc))) from None
        except Exception as exc:  # noqa: BLE001 - a plugin that cannot even declare its networks could never train
            raise refuse(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
        blueprint = Blueprint(dataset_spec.label, spec.label, objective, sizes, updates, nfe,
                              spec.config.batch_size, math.prod(dataset.shape), None, None, spec=spec)
        if blueprint.parameter_bytes() > MEASURE_LIMIT:
            blueprint.note = "networks too large to measure a step of: sized by their parameters"
            return blueprint
        refusal = measure(blueprint, objective, dataset, precision, seconds)
        if refusal:
            raise refuse(refusal)
    counted = blueprint.counted_nfe
    if counted is not None and counted != nfe:
        raise refuse(f"nfe() returned {nfe}, but sample(nets, {SAMPLES}) called its networks "
                     f"{'more than ' + str(nfe) if counted > nfe else counted} times: nfe() must return the network "
                     f"evaluations of one sample")
    return blueprint


def measure(blueprint: Blueprint, objective: Objective, dataset: Dataset, precision: str, seconds: float = 0.0
            ) -> str | None:
    """Measure ``blueprint`` (:func:`measure_steps`, :func:`measure_sample`) in a forked child process,
    where the plugin's losses and sampler run for the first time: one that kills its process (as the
    OOM killer would), exits or runs past ``seconds`` (0: no limit) loses only its measurement, and its
    jobs report it. Returns why the declarations cannot run (a loss or sampler using an undeclared
    network, samples of the wrong shape), else None. Without ``fork`` (not Linux), in this process."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return _measure_here(blueprint, objective, dataset, precision)
    _warm_up()
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_measure_child, args=(send, blueprint, objective, dataset, precision),
                            daemon=True)
    child.start()
    send.close()
    try:
        result = receive.recv() if receive.poll(seconds or None) else None
    except EOFError:  # the child ended without an answer
        result = None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()
    if result is None:
        blueprint.note = "not measured: the plugin's loss or sampler ended its process or ran too long"
        return None
    refusal, measured = result
    for name, value in measured.items():
        setattr(blueprint, name, value)
    return refusal


@functools.cache
def _warm_up() -> None:
    """Torch's first-call work (kernels, autograd, the FLOP counter, the fused optimizer), done once in
    this process on a core network, so that each forked measurement does not do it again."""
    net = build_network(Network("warm_up", (2,), (2,), (4,)), None, [torch.Generator()], "benchbench")
    optimizer = torch.optim.Adam(net.parameters(), fused=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        count_flops(lambda: net(torch.zeros(1, 2, 2)).sum().backward())
    optimizer.step()


MEASURED = ("saved", "step_flops", "sample_flops", "sample_floats", "counted_nfe", "note")


def _measure_child(send, blueprint: Blueprint, objective: Objective, dataset: Dataset, precision: str) -> None:
    try:
        torch.set_num_threads(1)
        refusal = _measure_here(blueprint, objective, dataset, precision)
        send.send((refusal, {name: getattr(blueprint, name) for name in MEASURED}))
    except BaseException as exc:  # noqa: BLE001 - sys.exit and the like: not measured
        send.send((None, {"note": f"not measured: {type(exc).__name__}: {exc}"}))
    finally:
        os._exit(0)  # nothing of the parent's (atexit handlers, buffered output) runs twice


def _measure_here(blueprint: Blueprint, objective: Objective, dataset: Dataset, precision: str) -> str | None:
    try:
        measure_steps(blueprint, objective, dataset, precision)
        measure_sample(blueprint, dataset)
    except ComponentError as exc:  # a loss of the wrong shape: the job reports it, naming the plugin
        blueprint.note = str(exc)
    except PluginError as exc:
        return exc.message
    except Exception as exc:  # noqa: BLE001 - left to the jobs, which name the plugin
        blueprint.note = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return None


def parameters(spec: Declaration, dataset: Dataset, owner: str) -> int:
    """Parameters of one member of the declared network, built on the meta device (nothing allocated)."""
    with _OnMeta():
        module = build_declared(spec, dataset, [torch.Generator()], owner)
    return sum(p.numel() for p in module.parameters())


class _OnMeta(TorchFunctionMode):
    """Every tensor made inside is made on the meta device, whatever device it names (the networks'
    initialisers name their generators' device)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in (torch.stack, torch.cat):  # by shape alone: their meta kernels load torch's reference ops (s)
            tensors, dim = args[0], kwargs.get("dim", args[1] if len(args) > 1 else 0)
            shape = list(tensors[0].shape)
            if func is torch.stack:
                shape.insert(dim % (len(shape) + 1), len(tensors))
            else:
                shape[dim] = sum(t.shape[dim] for t in tensors)
            return torch.empty(shape, device="meta", dtype=tensors[0].dtype)
        if "device" in kwargs or func in _device_constructors():
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def measure_steps(blueprint: Blueprint, objective: Objective, dataset: Dataset, precision: str) -> None:
    """The bytes one member's training step saves for backward, fitted over :data:`MEASURED_BATCHES`, and
    its FLOPs, counted at the objective's batch size (fitted from counts at :data:`MEASURED_BATCHES` when
    a step that size would save more than :data:`COUNT_LIMIT`)."""
    blueprint.saved = Fit.through(MEASURED_BATCHES, [step_cost(_with_batch(objective, b), dataset, precision)[0]
                                                     for b in MEASURED_BATCHES])
    if blueprint.saved_bytes() <= COUNT_LIMIT:
        blueprint.step_flops = step_cost(objective, dataset, precision, counted=True)[1]
        return
    counts = [step_cost(_with_batch(objective, b), dataset, precision, counted=True)[1] for b in MEASURED_BATCHES]
    if all(counts):
        blueprint.step_flops = Fit.through(MEASURED_BATCHES, counts)(blueprint.batch_size)


def step_cost(objective: Objective, dataset: Dataset, precision: str = "fp32", counted: bool = False
              ) -> tuple[int, float | None]:
    """(bytes autograd saves, FLOPs if ``counted``) of one training step of a fresh one-member model of
    ``objective``, the trainer's own step. A loss using a network it did not declare is a :class:`PluginError`."""
    nets = build_networks(objective, dataset, [0], CPU)
    nets.updates = tuple(dataclasses.replace(u, loss=_named(u, name_of(objective))) for u in nets.updates)
    nets.optimizers = tuple(_Unstepped(o) if o.defaults.get("fused") else o for o in nets.optimizers)
    rng = [stream(0, "train")]
    losses = torch.zeros(len(nets.updates), 1)
    saved = 0

    def pack(tensor: Tensor) -> Tensor:
        nonlocal saved
        saved += tensor.numel() * tensor.element_size()
        return tensor

    def step() -> None:
        training_step(nets, objective, dataset, rng, losses, precision)

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        flops = count_flops(step) if counted else step()
    return saved, flops


def _with_batch(objective: Objective, batch: int) -> Objective:
    """``objective`` training on batches of ``batch`` (a shallow copy: what ``__init__`` made stays)."""
    copied = copy.copy(objective)
    copied.config = dataclasses.replace(objective.config, batch_size=batch)
    return copied


def measure_sample(blueprint: Blueprint, dataset: Dataset) -> None:
    """One ``sample`` of :data:`SAMPLES` samples on a fresh one-member model: its network calls (nfe),
    FLOPs per sample and, per sample, the floats in and out of its largest network call. Stopped at the
    first call beyond the declared nfe (counted as one more), or after :data:`SAMPLE_S` (not counted)."""
    objective = blueprint.instance
    nets = build_networks(objective, dataset, [0], CPU)
    calls, current, largest, start = 0, 0, 0, time.perf_counter()

    def before(module, args) -> None:
        nonlocal current
        if calls >= blueprint.nfe:  # one more than declared: no need to go on
            raise _Enough(calls + 1)
        if time.perf_counter() - start > SAMPLE_S:
            raise _Enough
        current = sum(a.numel() for a in args if isinstance(a, Tensor))

    def leaf(module, args, out) -> None:
        nonlocal current
        current += out.numel() if isinstance(out, Tensor) else 0

    def after(module, args, out) -> None:
        nonlocal calls, largest
        calls, largest = calls + 1, max(largest, current)

    hooks = [h for m in nets.modules.values() for h in (m.register_forward_pre_hook(before),
                                                        m.register_forward_hook(after))]
    hooks += [m.register_forward_hook(leaf) for top in nets.modules.values() for m in top.modules()
              if not list(m.children()) and m is not top]
    try:
        flops = count_flops(lambda: _draw(nets, objective, dataset))
    except _Enough as stopped:
        blueprint.counted_nfe = stopped.calls
        return
    finally:
        for hook in hooks:
            hook.remove()
    blueprint.counted_nfe = calls
    blueprint.sample_flops = None if flops is None else flops / SAMPLES
    blueprint.sample_floats = largest / SAMPLES


def _draw(nets, objective: Objective, dataset: Dataset) -> Tensor:
    try:
        return draw(nets, objective, dataset, [0], SAMPLES, "blueprint")
    except MissingNetwork as exc:
        raise PluginError(name_of(objective), f"sample: {exc}") from None


class _Unstepped:
    """A fused optimizer that does not step: its kernel counts no FLOPs and saves nothing for backward,
    and under the FLOP counter's dispatch it takes longer than the rest of a small step."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        pass


def _named(update: Update, owner: str) -> Callable:
    """``update.loss``, a use of an undeclared network named after the update."""
    def loss(nets, real):
        try:
            return update.loss(nets, real)
        except MissingNetwork as exc:
            raise PluginError(owner, f"update {update.name!r}: its loss {exc}") from None
    return loss


def _refusal(entry: Entry, where: str) -> Callable[[str], ConfigError]:
    plugin = entry.plugin
    named = f"objective {entry.cls.name!r} of plugin {plugin.name!r}" + (
        f" ({plugin.distribution} {plugin.version})" if plugin.distribution else "")
    return lambda message: ConfigError(where, f"{named}: {message}")
