"""The training loop: one job = the seeds of one (dataset, objective) pair, trained as one stacked
model, then scored. Reads top to bottom: set-up, Algorithm 1 with curve evaluations, final scoring.

Randomness: every seed draws from its own streams (:func:`benchbench.plan.cells.stream`: one per seed
and purpose: "init", "train", "eval-data"...), so a member trains exactly as it would alone and
seeds stay independent replicates; paired objectives see the same data for the same seed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ..api.dataset import Dataset
from ..api.errors import ComponentError, PluginError
from ..api.objective import CriticConfig, Objective, ObjectiveConfig
from ..config.suite import ComponentSpec, ExecutionSettings
from ..plan.cells import Job, make_job, stream
from ..registry.components import Registry
from .divergence import runaway, sample_bound
from .evaluation import NamedMetric, score
from .member_optim import member_optimizer
from .models import critic_network, generator_network
from .schedule import BudgetTooSmall, Schedule
from .timing import (
    Stopwatch,
    Timing,
    count_flops,
    describe_device,
    peak_memory,
    reset_peak_memory,
)

Progress = Callable[[int], None]  # called with the number of member-steps done since the last call
SETUP_SAMPLES = 1024  # real samples an objective may use to scale its settings to the data
SAMPLING_REPEATS = 3  # the sampling-throughput measurement takes the fastest of these
LOSS_NAMES = ("generator_loss", "critic_loss")
DIVERGED = (*LOSS_NAMES, "samples")  # what a member's `diverged` record names: a loss, or its samples


@dataclasses.dataclass
class JobOutcome:
    """Scores of each member of a job (in seed order), curves, samples for plots, problems met."""

    scores: list[dict[str, float]]
    curves: list[list[tuple[int, str, float]]]  # per member: (step, metric, value)
    samples: Tensor  # [M, plot_samples, *shape], CPU
    problems: list[str]
    notes: list[dict[str, str]] = dataclasses.field(default_factory=list)  # per member: output -> why missing
    diverged: list[dict | None] = dataclasses.field(default_factory=list)  # per member: {"step", "loss"} or None


@dataclasses.dataclass
class Networks:
    """The stacked networks of a job and their optimizers (``critic`` is None without one)."""

    generator: nn.Module
    critic: nn.Module | None
    opt_generator: torch.optim.Optimizer
    opt_critic: torch.optim.Optimizer | None
    members: int
    loss_rng: list[torch.Generator] = dataclasses.field(default_factory=list)  # per member: Objective.rng


def run_job(job: Job, registry: Registry, progress: Progress | None = None) -> JobOutcome:
    """Train (unless the job is the data reference) and score every member of ``job``."""
    device = torch.device(job.suite.device)
    dataset = build(registry, job.dataset)
    metrics = [NamedMetric(m.label, registry.get("metric", m.type, m.label).plugin.name, build(registry, m))
               for m in job.suite.metrics]
    if job.objective is None:
        return score_reference(job, dataset, metrics, device)
    try:
        objective = build(registry, job.objective, dataset, device)
        objective.members = job.members  # None unless the job stacks the trials of a search
        return train(job, dataset, metrics, objective, device, progress)
    except (torch.OutOfMemoryError, MemoryError) as exc:
        if len(job.cells) == 1:
            raise PluginError(job.objective.type, f"out of memory training one member on {device} ({exc}); "
                                                  f"reduce batch_size or the network widths") from None
    # Out of memory: retry in two halves (recursively), freeing what the failed attempt held.
    if device.type == "cuda":
        torch.cuda.empty_cache()
    half = len(job.cells) // 2
    parts = [run_job(make_job(job.suite, job.dataset, job.objective, cells), registry, progress)
             for cells in (job.cells[:half], job.cells[half:])]
    note = f"out of memory with {len(job.cells)} stacked members on {device}: retried as {half} + {len(job.cells) - half}"
    return JobOutcome(*(sum((getattr(p, f) for p in parts), []) for f in ("scores", "curves")),
                      torch.cat([p.samples for p in parts]), sorted({note, *parts[0].problems, *parts[1].problems}),
                      parts[0].notes + parts[1].notes, parts[0].diverged + parts[1].diverged)


def build_networks(objective: Objective, dataset: Dataset, seeds: Sequence[int], device: torch.device,
                   execution: ExecutionSettings = ExecutionSettings()) -> Networks:
    """One member per seed, each initialised from its own "init" stream."""
    cfg: ObjectiveConfig = objective.config
    init = [stream(s, "init", device) for s in seeds]
    generator = generator_network(cfg, dataset, init).to(device)
    critic = critic_network(cfg, dataset, init).to(device) if isinstance(cfg, CriticConfig) else None
    if objective.members is None:
        opt_critic = make_optimizer(critic.parameters(), cfg, cfg.critic_lr) if critic is not None else None
        opt_generator = make_optimizer(generator.parameters(), cfg, cfg.lr)
    else:  # the trials of a search: per-member learning rates, betas and momenta
        opt_critic = member_optimizer(critic.parameters(), objective.members, "critic_lr") \
            if critic is not None else None
        opt_generator = member_optimizer(generator.parameters(), objective.members, "lr")
    if execution.compile and device.type == "cuda":
        generator = torch.compile(generator, mode="reduce-overhead")
        critic = torch.compile(critic, mode="reduce-overhead") if critic is not None else None
    return Networks(generator, critic, opt_generator, opt_critic, len(seeds), [stream(s, "loss", device) for s in seeds])


def training_step(nets: Networks, objective: Objective, dataset: Dataset, rng: Sequence[torch.Generator],
                  losses: Tensor, precision: str = "fp32") -> None:
    """One iteration of Algorithm 1: k critic steps, then one generator step. Adds each member's
    losses to ``losses`` ``[2, M]`` (row 0: generator, row 1: critic summed over the k steps)."""
    cfg: ObjectiveConfig = objective.config
    critic, members = nets.critic, nets.members
    objective.rng = nets.loss_rng  # the members' own streams for randomness inside the losses
    with autocast(rng[0].device, precision):
        if critic is not None:
            critic.requires_grad_(True)
            for _ in range(cfg.critic_steps):
                real = stacked_data(dataset, rng, cfg.batch_size)
                with torch.no_grad():
                    fake = generate(nets.generator, dataset, rng, cfg.batch_size, cfg)
                loss = per_member(objective.critic_loss(critic, real, fake), members, objective, "critic_loss")
                nets.opt_critic.zero_grad(set_to_none=True)
                loss.float().sum().backward()  # summed, not averaged: members train independently
                nets.opt_critic.step()
                losses[1] += loss.detach()
            critic.requires_grad_(False)  # the generator step needs gradients w.r.t. inputs only

        real = stacked_data(dataset, rng, cfg.batch_size)
        fake = generate(nets.generator, dataset, rng, cfg.batch_size, cfg)
        loss = per_member(objective.generator_loss(critic, real, fake), members, objective, "generator_loss")
        nets.opt_generator.zero_grad(set_to_none=True)
        loss.float().sum().backward()
        nets.opt_generator.step()
        losses[0] += loss.detach()
    objective.rng = ()  # for the losses only: a draw elsewhere (diagnose) would shift the training streams


def stepper(objective: Objective, dataset: Dataset, seeds: Sequence[int], device: torch.device,
            execution: ExecutionSettings = ExecutionSettings()) -> Callable[[], None]:
    """``step()``: one training step of a freshly built stack of ``seeds``, for benchmarks and
    conformance tests (the very code :func:`train` runs)."""
    nets = build_networks(objective, dataset, seeds, device, execution)
    rng = [stream(s, "train", device) for s in seeds]
    losses = torch.zeros(2, len(seeds), device=device)
    return lambda: training_step(nets, objective, dataset, rng, losses, execution.precision)


def train(job: Job, dataset: Dataset, metrics: Sequence[NamedMetric], objective: Objective,
          device: torch.device, progress: Progress | None = None) -> JobOutcome:
    cfg: ObjectiveConfig = objective.config
    seeds, settings, execution = job.seeds, job.suite.eval, job.suite.execution
    members = len(seeds)
    streams = lambda purpose: [stream(s, purpose, device) for s in seeds]  # noqa: E731

    # ---- set-up: networks and optimizers, one member per seed -------------------------------
    nets = build_networks(objective, dataset, seeds, device, execution)
    train_rng = streams("train")
    flops, flops_note = count_step_flops(nets, objective, dataset, streams("flops"), execution.precision)
    curve_real = stacked_data(dataset, streams("curve-data"), settings.curve_samples, heldout=True)
    curves: list[list[tuple[int, str, float]]] = [[] for _ in seeds]
    losses = torch.zeros(2, members, device=device)  # running sums of each member's generator and critic loss
    diverged_at = torch.zeros(3, members, dtype=torch.long, device=device)  # first step with a non-finite loss
    bound = sample_bound(dataset, curve_real)  # (row 2: with samples beyond this, or non-finite)

    def check_samples(fake: Tensor, step: int) -> None:
        if step:  # the untrained generator is not a divergence
            diverged_at[2].masked_fill_(runaway(fake, bound) & (diverged_at[2] == 0), step)
    problems: list[str] = []
    if execution.compile and device.type != "cuda":
        problems.append(f"execution.compile is ignored on {device.type}: it compiles CUDA graphs on CUDA only")
    eval_clock = Stopwatch(device)

    def record_curve(step: int, steps_since: int) -> None:
        eval_clock.start()
        with torch.no_grad():  # the same noise at every curve point
            fake = generate(nets.generator, dataset, streams("curve-noise"), settings.curve_samples, cfg)
        check_samples(fake, step)
        skip = set(diverged_members(diverged_at))
        found, _, issues = score(metrics, dataset, seeds, curve_real, fake, objective, nets.critic, step=step,
                                 skip=skip)
        problems.extend(issues)
        generator_loss, critic_loss = (losses / max(steps_since, 1)).tolist()
        for i, values in enumerate(found):
            if steps_since and i not in skip:
                values = {**values, "generator_loss": generator_loss[i]}
                if nets.critic is not None:
                    values["critic_loss"] = critic_loss[i] / cfg.critic_steps
            curves[i].extend((step, k, v) for k, v in values.items())
        losses.zero_()
        eval_clock.stop()

    # ---- training: Algorithm 1 until the budget is spent, with curve evaluations ----------------
    record_curve(0, 0)
    train_clock = Stopwatch(device)
    schedule = budget_schedule(job, objective, flops, train_clock)  # steps, FLOPs or seconds per model
    reset_peak_memory(device)
    last_curve = 0
    step_losses = torch.zeros(2, members, device=device)
    train_clock.start()
    for step in itertools.count(1):
        step_losses.zero_()
        training_step(nets, objective, dataset, train_rng, step_losses, execution.precision)
        losses += step_losses
        first = (~torch.isfinite(step_losses)) & (diverged_at[:2] == 0)  # no sync: stays on the device
        diverged_at[:2].masked_fill_(first, step)

        finished = schedule.finished(step)
        if finished or schedule.report_due(step):
            if progress is not None and (done := schedule.progress(step, finished)):
                progress(done * members)
            if len(diverged_members(diverged_at)) == members:
                break  # every member diverged: nothing left to train
        if finished:
            break
        if schedule.curve_due(step):
            train_clock.stop()
            record_curve(step, step - last_curve)
            last_curve = step
            train_clock.start()
    train_clock.stop()
    memory, memory_kind = peak_memory(device)
    record_curve(step, step - last_curve)

    # ---- final evaluation on held-out samples --------------------------------------------------
    eval_clock.start()
    n = settings.samples
    real = stacked_data(dataset, streams("eval-data"), n, heldout=True)
    problems.extend(fewer_heldout(dataset, real, n))
    noise = sample_noise(streams("eval-noise"), n, cfg)
    sample_seconds = []
    with torch.no_grad():
        for _ in range(SAMPLING_REPEATS):
            clock = Stopwatch(device)
            clock.start()
            fake = nets.generator(noise).unflatten(2, dataset.shape)
            clock.stop()
            sample_seconds.append(clock.seconds)
    timing = Timing(describe_device(device), members, step, train_clock.seconds, n, min(sample_seconds),
                    memory, memory_kind, flops, flops_note)
    check_samples(fake, step)
    diverged = diverged_members(diverged_at)
    found, notes, issues = score(metrics, dataset, seeds, real, fake, objective, nets.critic, timing, step,
                                 skip=set(diverged))
    eval_clock.stop()
    problems.extend(issues)
    for i, values in enumerate(found):
        values["diverged"] = float(i in diverged)
        values["eval_time_s"] = eval_clock.seconds / members
    return JobOutcome(found, curves, fake[:, :settings.plot_samples].float().cpu(), sorted(set(problems)), notes,
                      [diverged.get(i) for i in range(members)])


def budget_schedule(job: Job, objective: Objective, flops_per_step: float | None, clock: Stopwatch) -> Schedule:
    """When this job stops, scores curves and reports progress; a budget that cannot pay for one
    step (preflight refuses those it can see) fails the job, naming the objective."""
    members = len(job.cells)
    try:
        return Schedule(job.suite.budget, job.suite.eval.every, flops_per_step and flops_per_step / members, clock)
    except BudgetTooSmall as exc:
        raise ComponentError("objective", objective.name, f"budget {job.suite.budget.describe()}: {exc}") from None


def diverged_members(diverged_at: Tensor) -> dict[int, dict]:
    """Members whose losses (or samples) diverged: {member: {"step": first step, "loss": name}}."""
    if not bool(diverged_at.any()):
        return {}
    found = {}
    for which, member in diverged_at.nonzero().tolist():
        step = int(diverged_at[which, member])
        if member not in found or step < found[member]["step"]:
            found[member] = {"step": step, "loss": DIVERGED[which]}
    return found


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


def build(registry: Registry, spec: ComponentSpec, *args):
    """Instantiate the component a suite names (its config was validated when the suite loaded)."""
    entry = registry.get(spec.kind, spec.type, spec.label)
    if spec.kind != "objective":
        return entry.cls(spec.config)
    dataset, device = args
    data = dataset.sample(SETUP_SAMPLES, stream(0, "setup", device))
    return entry.cls(spec.config, data)


def make_optimizer(parameters, cfg: ObjectiveConfig, lr: float) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":  # the fused kernel: one pass over all parameters, 2-3x faster than foreach
        return torch.optim.Adam(parameters, lr=lr, betas=cfg.betas, fused=True)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, momentum=cfg.momentum)
    return torch.optim.SGD(parameters, lr=lr, momentum=cfg.momentum)


def autocast(device: torch.device, precision: str):
    """bfloat16 autocast of the forward passes, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def generate(generator: nn.Module, dataset: Dataset, rng: Sequence[torch.Generator], n: int,
             cfg: ObjectiveConfig) -> Tensor:
    """Samples ``[M, n, *shape]`` from fresh noise."""
    return generator(sample_noise(rng, n, cfg)).unflatten(2, dataset.shape)


def sample_noise(rng: Sequence[torch.Generator], n: int, cfg: ObjectiveConfig) -> Tensor:
    """Noise ``[M, n, noise_dim]``, member ``i`` drawn from ``rng[i]`` alone."""
    device = rng[0].device
    if cfg.noise == "uniform":
        return stack([torch.rand(n, cfg.noise_dim, generator=g, device=device) for g in rng]).mul_(2).sub_(1)
    return stack([torch.randn(n, cfg.noise_dim, generator=g, device=device) for g in rng])


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


def stack(tensors: list[Tensor]) -> Tensor:
    """``torch.stack``, without the copy for a stack of one."""
    return tensors[0].unsqueeze(0) if len(tensors) == 1 else torch.stack(tensors)


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
    try:
        scratch = copy.deepcopy(nets)
    except Exception as exc:  # noqa: BLE001 - e.g. compiled modules: then the rate is simply not reported
        return None, f"FLOPs not counted: the networks could not be copied ({type(exc).__name__})"
    losses = torch.zeros(2, nets.members, device=rng[0].device)
    try:
        flops = count_flops(lambda: training_step(scratch, objective, dataset, rng, losses, precision))
    except Exception as exc:  # noqa: BLE001 - a step the counter cannot trace; the job itself may still run
        return None, f"FLOPs not counted: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return flops, "" if flops else "no matrix products or convolutions counted"
