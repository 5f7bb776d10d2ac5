"""The training loop: one job = the seeds of one (dataset, objective) pair, trained as one stacked
model, then scored. :func:`train` reads top to bottom: set-up, the objective's updates until the
budget is spent (:mod:`benchbench.train.schedule`) with curve evaluations (and the final evaluation of
each lower rung of a budget ladder as the training reaches it), final scoring through the objective's
sampler (:mod:`benchbench.train.sampling`). The recipe every objective has is the core's: the learning rate of
each step (:mod:`benchbench.train.lr_schedule`), gradient clipping (:mod:`benchbench.train.grad_clip`), a moving
average of the weights scored beside the raw ones (:mod:`benchbench.train.ema`); so is the checkpoint a job
resumes from (:mod:`benchbench.train.checkpoint`).

Randomness: every seed draws from its own streams (:func:`benchbench.plan.cells.stream`: one per seed
and purpose: "init", "train", "eval-data"...), so a member trains exactly as it would alone and
seeds stay independent replicates; paired objectives see the same data for the same seed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..api.dataset import Dataset
from ..api.errors import ComponentError, PluginError
from ..api.metric import Timing
from ..api.objective import Objective, ObjectiveConfig
from ..config.suite import ExecutionSettings
from ..plan.build import SETUP_SAMPLES, build  # noqa: F401 - SETUP_SAMPLES: importable here as before
from ..plan.cells import Job, stream
from ..registry.components import Registry
from .checkpoint import Checkpoints, Resumable
from .declarations import declared_nfe
from .divergence import runaway, sample_bound
from .ema import EMA, make_ema, scored_weights
from .evaluation import NamedMetric, score
from .grad_clip import clip_gradients
from .lr_schedule import LearningRates
from .outcome import JobOutcome
from .phases import OTHER, merged_times, recording, timed_as, worker_start
from .sampling import count_sample_flops, draw, timed_draw
from .schedule import BudgetTooSmall, Schedule
from .stack import Networks, build_networks, stack
from .timing import Stopwatch, count_flops, describe_device, peak_memory, reset_peak_memory

Progress = Callable[[int], None]  # called with the number of member-steps done since the last call


def run_job(job: Job, registry: Registry, progress: Progress | None = None) -> JobOutcome:
    """Train (unless the job is the data reference) and score every member of ``job``; the outcome
    says where its time went (:mod:`benchbench.train.phases`)."""
    started, first = time.time(), worker_start()
    with recording() as phases, phases.timed(OTHER):  # what no phase inside claims: building, FLOP counts
        outcome = _run_job(job, registry, progress)
    phases.merge(first)
    phases.merge(outcome.phases)  # an out-of-memory retry's halves
    outcome.phases, outcome.started = phases.times, started
    return outcome


def _run_job(job: Job, registry: Registry, progress: Progress | None = None) -> JobOutcome:
    device = torch.device(job.suite.device)
    dataset = registry.build(job.dataset)
    metrics = [NamedMetric(m.label, registry.entry(m).plugin.name, registry.build(m)) for m in job.suite.metrics]
    if job.objective is None:
        return score_reference(job, dataset, metrics, device)
    try:
        objective = build(registry, job.objective, dataset, device)
        objective.members = job.members  # None unless the job stacks the trials of a search
        samplers = [build(registry, spec, dataset, device) for spec, _ in job.samplers]
        return train(job, dataset, metrics, objective, device, progress, samplers)
    except (torch.OutOfMemoryError, MemoryError) as exc:
        if len(job.cells) == 1:
            raise PluginError(job.objective.type, f"out of memory training one member on {device} ({exc}); "
                                                  f"reduce batch_size or the network widths") from None
    # Out of memory: retry in two halves (recursively), freeing what the failed attempt held.
    if device.type == "cuda":
        torch.cuda.empty_cache()
    half = len(job.cells) // 2
    parts = [run_job(job.select(part), registry, progress) for part in (range(half), range(half, len(job.cells)))]
    note = f"out of memory with {len(job.cells)} stacked members on {device}: retried as {half} + {len(job.cells) - half}"
    return joined(parts, note)


def joined(parts: Sequence[JobOutcome], note: str) -> JobOutcome:
    """The outcomes of a job's two halves (members in order) as one, with ``note`` among its problems."""
    return JobOutcome(*(sum((getattr(p, f) for p in parts), []) for f in ("scores", "curves")),
                      torch.cat([p.samples for p in parts]), sorted({note, *parts[0].problems, *parts[1].problems}),
                      parts[0].notes + parts[1].notes, parts[0].diverged + parts[1].diverged,
                      [joined(halves, note) for halves in zip(parts[0].samplers, parts[1].samplers)],
                      [joined(halves, note) for halves in zip(parts[0].rungs, parts[1].rungs)],
                      merged_times(p.phases for p in parts))


def training_step(nets: Networks, objective: Objective, dataset: Dataset, rng: Sequence[torch.Generator],
                  losses: Tensor, precision: str = "fp32") -> None:
    """One training step: the objective's updates in order (for a GAN, Algorithm 1: k critic
    updates, then one generator update), each ``repeats`` times on fresh data from ``rng``. Adds each
    member's losses to ``losses`` ``[updates, M]`` (one row per update, summed over its repeats)."""
    cfg: ObjectiveConfig = objective.config
    view = nets.view(rng)  # nets.prior draws from the members' "train" streams
    # the members' own "loss" streams for randomness inside the losses, for the losses only: a draw
    # elsewhere would shift the training streams
    with objective.random_streams(nets.loss_rng), autocast(rng[0].device, precision):
        for row, (update, optimizer) in enumerate(zip(nets.updates, nets.optimizers)):
            nets.train_only(update.networks)
            for _ in range(update.repeats):
                real = stacked_data(dataset, rng, cfg.batch_size)
                loss = per_member(update.loss(view, real), nets.members, objective, f"{update.name}_loss")
                optimizer.zero_grad(set_to_none=True)
                loss.float().sum().backward()  # summed, not averaged: members train independently
                if cfg.grad_clip:
                    clip_gradients([nets.modules[n] for n in update.networks], nets.members, cfg.grad_clip)
                optimizer.step()
                losses[row] += loss.detach()


def stepper(objective: Objective, dataset: Dataset, seeds: Sequence[int], device: torch.device,
            execution: ExecutionSettings = ExecutionSettings()) -> Callable[[], None]:
    """``step()``: one training step of a freshly built stack of ``seeds``, for benchmarks and
    conformance tests (the very code :func:`train` runs)."""
    nets = build_networks(objective, dataset, seeds, device, execution)
    rng = [stream(s, "train", device) for s in seeds]
    losses = torch.zeros(len(nets.updates), len(seeds), device=device)
    return lambda: training_step(nets, objective, dataset, rng, losses, execution.precision)


@dataclasses.dataclass
class Context:
    """What every phase of a job reads: its components, networks and held-out curve data."""

    job: Job
    dataset: Dataset
    metrics: Sequence[NamedMetric]
    objective: Objective
    device: torch.device
    nets: Networks
    curve_real: Tensor  # [M, curve_samples, *shape], held out
    bound: float  # samples beyond this (or non-finite) have diverged
    ema: EMA | None = None  # the moving average of the weights, when the objective keeps one

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.job.seeds

    def streams(self, purpose: str) -> list[torch.Generator]:
        return [stream(s, purpose, self.device) for s in self.seeds]


@dataclasses.dataclass
class LoopState:
    """What the loop accumulates: loss sums since the last curve point, divergence, curves, problems."""

    names: list[str]  # what each row of diverged_at names: each update's loss, then "samples"
    losses: Tensor  # [updates, M]: running sums of each update's loss since the last curve point
    diverged_at: Tensor  # [updates + 1, M]: first step each loss (last row: the samples) diverged; 0: never
    curves: list[list[tuple[int, str, float]]]  # per member: (step, metric, value)
    problems: list[str]
    last_curve: int = 0  # the step of the last curve point

    @classmethod
    def start(cls, nets: Networks, problems: list[str]) -> LoopState:
        updates, members, device = len(nets.updates), nets.members, nets.loss_rng[0].device
        return cls(loss_names(nets), torch.zeros(updates, members, device=device),
                   torch.zeros(updates + 1, members, dtype=torch.long, device=device),
                   [[] for _ in range(members)], problems)

    def copy(self) -> LoopState:
        """An independent copy: another sampler's evaluation marks its own diverged samples and problems."""
        return dataclasses.replace(self, losses=self.losses.clone(), diverged_at=self.diverged_at.clone(),
                                   curves=[list(c) for c in self.curves], problems=list(self.problems))

    def add_losses(self, step_losses: Tensor, step: int) -> None:
        """Add one step's losses ``[updates, M]``; mark the first step each turned non-finite."""
        self.losses += step_losses
        first = (~torch.isfinite(step_losses)) & (self.diverged_at[:-1] == 0)  # no sync: stays on the device
        self.diverged_at[:-1].masked_fill_(first, step)

    def diverged(self) -> dict[int, dict]:
        """Members whose losses (or samples) diverged: {member: {"step": first step, "loss": name}}."""
        return diverged_members(self.diverged_at, self.names)

    def all_diverged(self) -> bool:
        return len(self.diverged()) == self.losses.shape[1]


def train(job: Job, dataset: Dataset, metrics: Sequence[NamedMetric], objective: Objective,
          device: torch.device, progress: Progress | None = None, samplers: Sequence[Objective] = ()) -> JobOutcome:
    execution, settings = job.suite.execution, job.suite.eval

    # ---- set-up: networks, optimizers and weight averages (one member per seed), held-out curve data ----
    nets = build_networks(objective, dataset, job.seeds, device, execution)
    ema = make_ema(nets.modules, objective.config.ema)  # None without averaging
    curve_real = stacked_data(dataset, [stream(s, "curve-data", device) for s in job.seeds], settings.curve_samples,
                              heldout=True)
    ctx = Context(job, dataset, metrics, objective, device, nets, curve_real, sample_bound(dataset, curve_real), ema)
    flops, flops_note = count_step_flops(nets, objective, dataset, ctx.streams("flops"), execution.precision)
    if flops and ema is not None:
        flops += ema.flops_per_step()
    state = LoopState.start(nets, compile_problems(execution, device))
    eval_clock = Stopwatch(device)
    train_rng = ctx.streams("train")
    train_clock = Stopwatch(device, "training")
    schedule = budget_schedule(job, objective, flops, train_clock)  # steps, FLOPs or seconds per model
    learning_rates = LearningRates(nets.optimizers, objective.config, schedule.steps)

    # ---- resume from the job's checkpoint, if it left one -----------------------------------------
    checkpoints = Checkpoints.of(job, [objective, dataset, *(m.metric for m in metrics)])
    rungs: list[JobOutcome] = []  # a ladder's lower rungs, each scored as the training reaches it
    training = Resumable(nets, ema, train_rng, state, schedule, train_clock, eval_clock, rungs)
    step, finished = checkpoints.resume(training)  # (0, False): from the start

    # ---- training: the objective's updates until the budget is spent, with curve evaluations ----
    if not step:
        record_curve(ctx, state, 0, eval_clock)
    reset_peak_memory(device)
    step_losses = torch.zeros_like(state.losses)
    train_clock.start()
    for step in () if finished else itertools.count(step + 1):
        learning_rates.at(step)
        step_losses.zero_()
        training_step(nets, objective, dataset, train_rng, step_losses, execution.precision)
        if ema is not None:
            ema.update()
        state.add_losses(step_losses, step)
        for _ in schedule.rungs_due(step):
            train_clock.stop()
            rungs.append(score_rung(ctx, state, samplers, Measured(step, train_clock.seconds, *peak_memory(device),
                                                                   flops, flops_note)))
            train_clock.start()

        finished = schedule.finished(step)
        if finished or schedule.report_due(step):
            if progress is not None and (done := schedule.progress(step, finished)):
                progress(done * len(job.seeds))
            if state.all_diverged():
                break  # every member diverged: nothing left to train
        if finished:
            break
        if schedule.curve_due(step):
            train_clock.stop()
            record_curve(ctx, state, step, eval_clock)
            train_clock.start()
        if checkpoints.due(step):
            train_clock.stop()
            checkpoints.save(step, training)
            train_clock.start()
    train_clock.stop()
    checkpoints.save_final(step, training)
    memory, memory_kind = peak_memory(device)
    measured = Measured(step, train_clock.seconds, memory, memory_kind, flops, flops_note)
    rungs += [score_rung(ctx, state, samplers, measured) for _ in schedule.rungs_left()]  # all diverged early
    record_curve(ctx, state, step, eval_clock)

    # ---- final evaluation on held-out samples and the real sampler's throughput -----------------
    with scored_weights(ctx.ema, objective.config.weights):  # the moving average, unless the row scores raw weights
        outcome = final_evaluation(ctx, state, objective, measured, eval_clock)
    # ---- the same trained stack under each other sampler, or its other weights (raw or averaged) --------
    outcome.samplers = rescore(ctx, state, samplers, measured)
    outcome.rungs = rungs
    return outcome


def rescore(ctx: Context, state: LoopState, samplers: Sequence[Objective], measured: Measured) -> list[JobOutcome]:
    """The trained stack scored under each other sampler (or its other weights), with the training's loss curves."""
    out = []
    for other in samplers:
        other.members = ctx.objective.members
        with scored_weights(ctx.ema, other.config.weights):
            rescored = final_evaluation(dataclasses.replace(ctx, objective=other), state.copy(), other, measured,
                                        Stopwatch(ctx.device))
        losses = set(state.names[:-1])  # each update's loss: the shared training's, whatever the sampler
        rescored.curves = [[c for c in curve if c[1] in losses] for curve in state.curves]
        out.append(rescored)
    return out


def score_rung(ctx: Context, state: LoopState, samplers: Sequence[Objective], measured: Measured) -> JobOutcome:
    """A lower rung of a ladder, reached after ``measured.steps``: the final evaluation of the stack as it
    is now (and under each other sampler), on copies of the loop's state so the training goes on
    unchanged. Its curves are left empty: the training's curves are the top rung's."""
    with scored_weights(ctx.ema, ctx.objective.config.weights):
        outcome = final_evaluation(ctx, state.copy(), ctx.objective, measured, Stopwatch(ctx.device))
    outcome.samplers = rescore(ctx, state, samplers, measured)
    for scored in (outcome, *outcome.samplers):
        scored.curves = [[] for _ in ctx.seeds]
    return outcome


@dataclasses.dataclass(frozen=True)
class Measured:
    """What training measured, for the throughput of every sampler scored on the trained stack."""

    steps: int
    train_seconds: float
    memory: int | None
    memory_kind: str
    flops: float | None
    flops_note: str


@timed_as("final evaluation")
def final_evaluation(ctx: Context, state: LoopState, objective: Objective, measured: Measured,
                     eval_clock: Stopwatch) -> JobOutcome:
    """Scores of every member on held-out samples drawn by ``objective``'s sampler, and its throughput."""
    job, dataset, nets, device = ctx.job, ctx.dataset, ctx.nets, ctx.device
    settings, step = job.suite.eval, measured.steps
    eval_clock.start()
    n = settings.samples
    real = stacked_data(dataset, ctx.streams("eval-data"), n, heldout=True)
    state.problems.extend(fewer_heldout(dataset, real, n))
    fake, sample_seconds = timed_draw(nets, objective, dataset, job.seeds, n, device)
    per_sample, per_sample_note = count_sample_flops(nets, objective, dataset, job.seeds, device)
    timing = Timing(describe_device(device), len(job.seeds), step, measured.train_seconds, n, sample_seconds,
                    measured.memory, measured.memory_kind, measured.flops, measured.flops_note, per_sample,
                    per_sample_note, declared_nfe(objective))
    check_samples(ctx, state, fake, step)
    diverged = state.diverged()
    found, notes, issues = score(ctx.metrics, dataset, job.seeds, real, fake, objective,
                                 nets.view(ctx.streams("eval-noise")), timing, step, skip=set(diverged),
                                 rng=ctx.streams("diagnose"))
    eval_clock.stop()
    state.problems.extend(issues)
    for i, values in enumerate(found):
        values["diverged"] = float(i in diverged)
        values["eval_time_s"] = eval_clock.seconds / len(job.seeds)
    return JobOutcome(found, state.curves, fake[:, :settings.plot_samples].float().cpu(), sorted(set(state.problems)),
                      notes, [diverged.get(i) for i in range(len(job.seeds))])


def budget_schedule(job: Job, objective: Objective, flops_per_step: float | None, clock: Stopwatch) -> Schedule:
    """When this job stops, scores curves and reports progress; a budget that cannot pay for one
    step (preflight refuses those it can see) fails the job, naming the objective."""
    members, warmup = len(job.cells), objective.config.warmup
    try:
        schedule = Schedule(job.suite.budget, job.suite.eval.every, flops_per_step and flops_per_step / members, clock)
    except BudgetTooSmall as exc:
        raise ComponentError("objective", objective.name, f"budget {job.suite.budget.describe()}: {exc}") from None
    if schedule.steps is not None and warmup >= schedule.steps:
        raise ComponentError("objective", objective.name, f"warmup: {warmup} steps, but the budget "
                                                          f"{job.suite.budget.describe()} pays for {schedule.steps}")
    return schedule


def compile_problems(execution: ExecutionSettings, device: torch.device) -> list[str]:
    if execution.compile and device.type != "cuda":
        return [f"execution.compile is ignored on {device.type}: it compiles CUDA graphs on CUDA only"]
    return []


def loss_names(nets: Networks) -> list[str]:
    """What a member's ``diverged`` record names, per row of ``diverged_at``: a loss, or its samples."""
    return [*(f"{u.name}_loss" for u in nets.updates), "samples"]


def check_samples(ctx: Context, state: LoopState, fake: Tensor, step: int) -> None:
    """Mark members whose samples ran away (non-finite, or beyond the data's scale) at ``step``."""
    if step:  # the untrained model is not a divergence
        row = state.diverged_at[-1]
        row.masked_fill_(runaway(fake, ctx.bound) & (row == 0), step)


@timed_as("curve points")
def record_curve(ctx: Context, state: LoopState, step: int, clock: Stopwatch) -> None:
    """One curve point: the metrics of fresh samples (the same streams at every point), the
    diagnostics, and each update's mean loss since the last point (per repeat)."""
    clock.start()
    settings = ctx.job.suite.eval
    with scored_weights(ctx.ema, ctx.objective.config.weights):
        fake = draw(ctx.nets, ctx.objective, ctx.dataset, ctx.seeds, settings.curve_samples, "curve")
        check_samples(ctx, state, fake, step)
        skip = set(state.diverged())
        found, _, issues = score(ctx.metrics, ctx.dataset, ctx.seeds, ctx.curve_real, fake, ctx.objective,
                                 ctx.nets.view(ctx.streams("curve-noise")), step=step, skip=skip,
                                 rng=ctx.streams("diagnose"))
    state.problems.extend(issues)
    steps_since = step - state.last_curve
    means = (state.losses / max(steps_since, 1)).tolist()
    # the last update first (a GAN's generator loss, then its critic's), each per repeat
    rows = list(reversed(list(enumerate(ctx.nets.updates))))
    for i, values in enumerate(found):
        if steps_since and i not in skip:
            values = {**values, **{f"{u.name}_loss": means[row][i] / u.repeats for row, u in rows}}
        state.curves[i].extend((step, k, v) for k, v in values.items())
    state.losses.zero_()
    state.last_curve = step
    clock.stop()


def diverged_members(diverged_at: Tensor, names: Sequence[str]) -> dict[int, dict]:
    """Members whose losses (or samples) diverged: {member: {"step": first step, "loss": name}};
    ``names`` names the rows of ``diverged_at`` (:func:`loss_names`)."""
    if not bool(diverged_at.any()):
        return {}
    found = {}
    for which, member in diverged_at.nonzero().tolist():
        step = int(diverged_at[which, member])
        if member not in found or step < found[member]["step"]:
            found[member] = {"step": step, "loss": names[which]}
    return found


@timed_as("data reference")
def score_reference(job: Job, dataset: Dataset, metrics: Sequence[NamedMetric], device: torch.device) -> JobOutcome:
    """Score fresh data as if it were generated: the floor (or ceiling) each metric can reach."""
    streams = lambda purpose: [stream(s, purpose, device) for s in job.seeds]  # noqa: E731
    settings = job.suite.eval
    real = stacked_data(dataset, streams("eval-data"), settings.samples, heldout=True)
    fake = stacked_data(dataset, streams("reference"), settings.samples)
    found, notes, problems = score(metrics, dataset, job.seeds, real, fake)
    problems = sorted({*problems, *fewer_heldout(dataset, real, settings.samples)})
    return JobOutcome(found, [[] for _ in job.seeds], fake[:, :settings.plot_samples].cpu(), problems, notes,
                      [None] * len(job.seeds))


def fewer_heldout(dataset: Dataset, real: Tensor, n: int) -> list[str]:
    """A note when the data holds fewer held-out samples than ``eval.samples`` asks for (a test split)."""
    if real.shape[1] >= n:
        return []
    return [f"eval.samples is {n:,} but {dataset.name} has {real.shape[1]:,} held-out samples: the metrics compare "
            f"{n:,} generated samples with those {real.shape[1]:,}"]


def autocast(device: torch.device, precision: str):
    """bfloat16 autocast of the forward passes, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def stacked_data(dataset: Dataset, rng: Sequence[torch.Generator], n: int, heldout: bool = False) -> Tensor:
    """Data ``[M, n, *shape]``, member ``i`` drawn from ``rng[i]`` alone; checks what the plugin returns.
    ``heldout``: the dataset's held-out samples, which may be fewer than ``n`` (a finite test split)."""
    if heldout:
        batches = [dataset.heldout(n, g) for g in rng]
        data = stack(batches) if all(_is_float_tensor(b) and b.shape == batches[0].shape for b in batches) \
            else batches[0]
    else:
        data = dataset.sample_members(n, list(rng))
    count = data.shape[1] if _is_float_tensor(data) and data.ndim >= 2 else None
    if not (_is_float_tensor(data) and tuple(data.shape[2:]) == tuple(dataset.shape) and data.shape[0] == len(rng)
            and data.device == rng[0].device and (count == n or (heldout and count and 0 < count <= n))):
        got = (tuple(data.shape), data.dtype, data.device) if isinstance(data, Tensor) else type(data)
        what = f"{'heldout' if heldout else 'sample'}({n})"
        raise ComponentError("dataset", dataset.name, f"{what} returned {got}; expected float32 samples of shape "
                                                      f"{(n, *dataset.shape)} on {rng[0].device}")
    return data


def _is_float_tensor(x: object) -> bool:
    return isinstance(x, Tensor) and x.dtype == torch.float32


def per_member(loss: Tensor, members: int, objective: Objective, what: str) -> Tensor:
    if not isinstance(loss, Tensor) or loss.shape != (members,):
        got = f"shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else type(loss).__name__
        raise ComponentError("objective", objective.name, f"{what} returned {got}; expected one loss per stacked "
                                                          f"member, shape ({members},): reduce each member with "
                                                          f".flatten(1).mean(1), never a plain .mean()")
    return loss


def count_step_flops(nets: Networks, objective: Objective, dataset: Dataset, rng: Sequence[torch.Generator],
                     precision: str) -> tuple[float | None, str]:
    """(FLOPs of one training step, counted on a copy of the networks so the originals do not
    move; or None and why). Counting is optional: it never fails the job."""
    try:  # the updates' losses are the objective's methods: the copy keeps the objective itself
        scratch = copy.deepcopy(nets, memo={id(objective): objective})
    except Exception as exc:  # noqa: BLE001 - e.g. compiled modules: then the rate is simply not reported
        return None, f"FLOPs not counted: the networks could not be copied ({type(exc).__name__})"
    losses = torch.zeros(len(nets.updates), nets.members, device=rng[0].device)
    try:
        flops = count_flops(lambda: training_step(scratch, objective, dataset, rng, losses, precision))
    except Exception as exc:  # noqa: BLE001 - a step the counter cannot trace; the job itself may still run
        return None, f"FLOPs not counted: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return flops, "" if flops else "no floating-point operations counted"
