"""The training loop: one job = the seeds of one (dataset, objective) pair, trained as one stacked
model, then scored. Reads top to bottom: set-up, Algorithm 1 with curve evaluations, final scoring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .cells import Job, stream
from .dataset import Dataset
from .errors import PluginError
from .evaluation import NamedMetric, score
from .models import StackedMLP
from .objective import CriticConfig, Objective, ObjectiveConfig
from .registry import Registry
from .suite import ComponentSpec
from .timing import Stopwatch, Timing, describe_device, peak_memory, reset_peak_memory

Progress = Callable[[int], None]  # called with the number of steps done since the last call
SETUP_SAMPLES = 1024  # real samples an objective may use to scale its settings to the data
SAMPLING_REPEATS = 3  # the sampling-throughput measurement takes the fastest of these


@dataclasses.dataclass
class JobOutcome:
    """Scores of each member of a job (in seed order), curves, samples for plots, problems met."""

    scores: list[dict[str, float]]
    curves: list[list[tuple[int, str, float]]]  # per member: (step, metric, value)
    samples: Tensor  # [M, plot_samples, *shape], CPU
    problems: list[str]


def run_job(job: Job, registry: Registry, progress: Progress | None = None) -> JobOutcome:
    """Train (unless the job is the data reference) and score every member of ``job``."""
    device = torch.device(job.suite.device)
    dataset = build(registry, job.dataset)
    metrics = [NamedMetric(m.label, registry.get("metric", m.type, m.label).plugin.name, build(registry, m))
               for m in job.suite.metrics]
    if job.objective is None:
        return score_reference(job, dataset, metrics, device)
    return train(job, dataset, metrics, build(registry, job.objective, dataset, device), device, progress)


def train(job: Job, dataset: Dataset, metrics: Sequence[NamedMetric], objective: Objective,
          device: torch.device, progress: Progress | None = None) -> JobOutcome:
    cfg: ObjectiveConfig = objective.config
    seeds, settings = job.seeds, job.suite.eval
    members = len(seeds)
    streams = lambda purpose: [stream(s, purpose, device) for s in seeds]  # noqa: E731

    # ---- set-up: networks and optimizers, one member per seed -------------------------------
    init, train_rng = streams("init"), streams("train")
    generator = StackedMLP([cfg.noise_dim, *cfg.hidden, dataset.dim], init).to(device)
    critic = None
    if isinstance(cfg, CriticConfig):
        critic = StackedMLP([dataset.dim, *cfg.critic_hidden, 1], init).to(device)
        opt_critic = make_optimizer(critic.parameters(), cfg, cfg.critic_lr)
    opt_generator = make_optimizer(generator.parameters(), cfg, cfg.lr)

    def generate(rng: list[torch.Generator], n: int) -> Tensor:
        return generator(sample_noise(rng, n, cfg)).unflatten(2, dataset.shape)

    curve_real = stacked_data(dataset, streams("curve-data"), settings.curve_samples)
    curve_rng = lambda: streams("curve-noise")  # noqa: E731  (the same noise at every curve point)
    curves: list[list[tuple[int, str, float]]] = [[] for _ in seeds]
    losses = torch.zeros(2, members, device=device)  # running sums of each member's generator and critic loss
    problems: list[str] = []

    def record_curve(step: int, steps_since: int) -> None:
        with torch.no_grad():
            fake = generate(curve_rng(), settings.curve_samples)
        found, issues = score(metrics, dataset, seeds, curve_real, fake, objective, critic, step=step)
        problems.extend(issues)
        generator_loss, critic_loss = (losses / max(steps_since, 1)).tolist()
        for i, values in enumerate(found):
            if steps_since:
                values = {**values, "generator_loss": generator_loss[i]}
                if critic is not None:
                    values["critic_loss"] = critic_loss[i] / cfg.critic_steps
            curves[i].extend((step, k, v) for k, v in values.items())
        losses.zero_()

    # ---- training: Algorithm 1 (k critic steps, then one generator step) ------------------
    steps, every = job.suite.steps, settings.every
    record_curve(0, 0)
    train_clock = Stopwatch(device)
    reset_peak_memory(device)
    report_every, unreported, last_curve = max(1, steps // 100), 0, 0
    train_clock.start()
    for step in range(1, steps + 1):
        if critic is not None:
            critic.requires_grad_(True)
            for _ in range(cfg.critic_steps):
                real = stacked_data(dataset, train_rng, cfg.batch_size)
                with torch.no_grad():
                    fake = generate(train_rng, cfg.batch_size)
                loss = per_member(objective.critic_loss(critic, real, fake), members, objective, "critic_loss")
                opt_critic.zero_grad(set_to_none=True)
                loss.sum().backward()  # summed, not averaged: members train independently
                opt_critic.step()
                losses[1] += loss.detach()
            critic.requires_grad_(False)  # the generator step needs gradients w.r.t. inputs only

        real = stacked_data(dataset, train_rng, cfg.batch_size)
        fake = generate(train_rng, cfg.batch_size)
        loss = per_member(objective.generator_loss(critic, real, fake), members, objective, "generator_loss")
        opt_generator.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt_generator.step()
        losses[0] += loss.detach()

        unreported += 1
        if progress is not None and (unreported == report_every or step == steps):
            progress(unreported * members)
            unreported = 0
        if every and step % every == 0 and step != steps:
            train_clock.stop()
            record_curve(step, step - last_curve)
            last_curve = step
            train_clock.start()
    train_clock.stop()
    memory, memory_kind = peak_memory(device)
    record_curve(steps, steps - last_curve)

    # ---- final evaluation on held-out samples --------------------------------------------------
    n = settings.samples
    real = stacked_data(dataset, streams("eval-data"), n)
    noise = sample_noise(streams("eval-noise"), n, cfg)
    sample_seconds = []
    with torch.no_grad():
        for _ in range(SAMPLING_REPEATS):
            clock = Stopwatch(device)
            clock.start()
            fake = generator(noise).unflatten(2, dataset.shape)
            clock.stop()
            sample_seconds.append(clock.seconds)
    timing = Timing(describe_device(device), members, steps, train_clock.seconds, n, min(sample_seconds),
                    memory, memory_kind)
    found, issues = score(metrics, dataset, seeds, real, fake, objective, critic, timing, steps)
    problems.extend(issues)
    return JobOutcome(found, curves, fake[:, :settings.plot_samples].cpu(), sorted(set(problems)))


def score_reference(job: Job, dataset: Dataset, metrics: Sequence[NamedMetric], device: torch.device) -> JobOutcome:
    """Score fresh data as if it were generated: the floor (or ceiling) each metric can reach."""
    streams = lambda purpose: [stream(s, purpose, device) for s in job.seeds]  # noqa: E731
    settings = job.suite.eval
    real = stacked_data(dataset, streams("eval-data"), settings.samples)
    fake = stacked_data(dataset, streams("reference"), settings.samples)
    found, problems = score(metrics, dataset, job.seeds, real, fake)
    return JobOutcome(found, [[] for _ in job.seeds], fake[:, :settings.plot_samples].cpu(), problems)


def build(registry: Registry, spec: ComponentSpec, *args):
    """Instantiate the component a suite names (its config was validated when the suite loaded)."""
    entry = registry.get(spec.kind, spec.type, spec.label)
    if spec.kind != "objective":
        return entry.cls(spec.config)
    dataset, device = args
    data = dataset.sample(SETUP_SAMPLES, stream(0, "setup", device))
    return entry.cls(spec.config, data)


def make_optimizer(parameters, cfg: ObjectiveConfig, lr: float) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=lr, betas=cfg.betas)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, momentum=cfg.momentum)
    return torch.optim.SGD(parameters, lr=lr, momentum=cfg.momentum)


def sample_noise(rng: Sequence[torch.Generator], n: int, cfg: ObjectiveConfig) -> Tensor:
    """Noise ``[M, n, noise_dim]``, member ``i`` drawn from ``rng[i]`` alone."""
    device = rng[0].device
    if cfg.noise == "uniform":
        return stack([torch.rand(n, cfg.noise_dim, generator=g, device=device) for g in rng]).mul_(2).sub_(1)
    return stack([torch.randn(n, cfg.noise_dim, generator=g, device=device) for g in rng])


def stacked_data(dataset: Dataset, rng: Sequence[torch.Generator], n: int) -> Tensor:
    """Data ``[M, n, *shape]``, member ``i`` drawn from ``rng[i]`` alone; checks what the plugin returns."""
    batches = [dataset.sample(n, g) for g in rng]
    expected = (n, *dataset.shape)
    for batch in batches:
        if not isinstance(batch, Tensor) or tuple(batch.shape) != expected or batch.dtype != torch.float32 \
                or batch.device != rng[0].device:
            got = (tuple(batch.shape), batch.dtype, batch.device) if isinstance(batch, Tensor) else type(batch)
            raise PluginError(dataset.name, f"sample({n}) returned {got}; expected a float32 tensor of shape "
                                            f"{expected} on {rng[0].device}")
    return stack(batches)


def stack(tensors: list[Tensor]) -> Tensor:
    """``torch.stack``, without the copy for a stack of one."""
    return tensors[0].unsqueeze(0) if len(tensors) == 1 else torch.stack(tensors)


def per_member(loss: Tensor, members: int, objective: Objective, what: str) -> Tensor:
    if not isinstance(loss, Tensor) or loss.shape != (members,):
        got = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise PluginError(objective.name, f"{what} returned {got}; expected one loss per member, shape ({members},)")
    return loss
