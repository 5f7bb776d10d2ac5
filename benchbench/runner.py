"""Run a suite end to end: validate, plan, train, save each cell as it finishes, summarise, report."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .cells import Job, make_job, plan
from .environment import environment
from .errors import ConfigError
from .evaluation import TRAINING_OUTPUTS
from .executor import default_workers, execute
from .registry import Registry, default_registry
from .reporter import RunReport
from .results import CellResult, RunDirectory, curves_frame, records_frame
from .suite import Suite, load_suite
from .summary import summarize
from .trainer import JobOutcome, build
from .trials import finish_selection, plan_final, plan_trials

DEFAULT_RESULTS = Path("results")


@dataclasses.dataclass
class RunOutcome:
    directory: Path
    suite: Suite
    summary: pd.DataFrame
    records: pd.DataFrame
    curves: pd.DataFrame
    report: RunReport
    problems: list[str]  # named plugin failures and metric errors; the run went on
    failed_jobs: list[str]  # jobs that raised; their cells are missing
    skipped_cells: int  # cells found already done in the run directory


def run_suite(suite: str | Path | Suite, **options) -> pd.DataFrame:
    """Run ``suite`` (a path or a :class:`Suite`) and return its summary as a DataFrame.

    Options as for :func:`run`: ``out``, ``resume``, ``seeds``, ``steps``, ``device``, ``workers``, ``registry``.
    """
    return run(suite, **options).summary


def run(suite: str | Path | Suite, out: str | Path | None = None, seeds: int | None = None,
        steps: int | None = None, device: str | None = None, workers: int | None = None,
        registry: Registry | None = None, results_root: str | Path = DEFAULT_RESULTS, resume: bool = False,
        on_start: Callable[[int, int], None] | None = None,
        progress: Callable[[int], None] | None = None, engine: str = "local", address: str | None = None,
        gpus_per_task: float | None = None) -> RunOutcome:
    """Run a suite. ``on_start(total_steps, jobs)`` is called once planning is done, ``progress(n)``
    as training advances by ``n`` member-steps. Bad input raises :class:`~benchbench.ConfigError`
    before anything trains. ``out`` (or ``resume``: the suite's latest run under ``results_root``)
    continues a run: cells found there are not run again. ``engine="ray"`` runs each job as a Ray
    task (:mod:`benchbench.ray_engine`) on the cluster at ``address`` (default: ``$RAY_ADDRESS``, else
    a new local one), each taking ``gpus_per_task`` of a GPU on CUDA."""
    registry = registry or default_registry()
    cluster = _engine(engine, address, gpus_per_task)
    if cluster is not None:
        suite = cluster.prepare(suite, registry, device, seeds=seeds, steps=steps, workers=workers)
    else:
        if not isinstance(suite, Suite):
            suite = load_suite(suite, registry)
        suite = suite.with_overrides(seeds=seeds, steps=steps, device=device, workers=workers)
    try:
        jobs = plan(suite, registry)
        trial_jobs = plan_trials(suite, registry) if suite.search else []  # the selection phase of a search
        directory = run_directory(suite, out, resume, Path(results_root))
        directory.prepare(suite.resolved())
        describe = cluster.environment if cluster is not None else environment
        directory.write_json("environment.json", describe(registry, suite.device))
        todo, skipped = _remaining(trial_jobs or jobs, directory)
    except BaseException:
        if cluster is not None:  # e.g. --resume with no earlier run: stop the Ray cluster it started
            cluster.close()
        raise
    problems = [str(f) for f in registry.failures]
    failed: list[str] = []

    def on_done(job: Job, outcome: JobOutcome | BaseException) -> None:
        if isinstance(outcome, BaseException):
            failed.append(f"{job.label} (seeds {', '.join(map(str, job.seeds))}): "
                          f"{type(outcome).__name__}: {outcome}")
            return
        problems.extend(f"{job.label}: {p}" for p in outcome.problems)
        for i, cell in enumerate(job.cells):
            diverged = outcome.diverged[i] if outcome.diverged else None
            if diverged:
                problems.append(f"{job.label} seed {cell.seed}: diverged at step {diverged['step']} "
                                f"({diverged['loss']} became NaN or infinite); its metrics are missing")
            result = CellResult(cell, job.key, outcome.scores[i], outcome.curves[i], outcome.problems,
                                outcome.notes[i] if outcome.notes else {}, diverged)
            directory.save(result, outcome.samples[i])

    if on_start is not None:
        later = jobs if trial_jobs else []  # a search's final phase (as planned before the choice)
        trained = [j for j in todo + later if j.objective is not None]
        on_start(sum(suite.steps * len(j.cells) for j in trained), len(todo) + len(later))

    def execute_all(todo: list[Job]) -> None:
        todo = sorted(todo, key=expected_work, reverse=True)
        if cluster is not None:
            cluster.connect(num_cpus=suite.execution.workers or None)  # again after a first phase closed it
            cluster.execute(todo, registry, on_done, progress)
        else:
            workers = suite.execution.workers or default_workers(suite.device, len(todo))
            execute(todo, registry, workers, on_done, progress)

    execute_all(todo)
    chosen: dict[tuple[str, str], str] = {}
    if trial_jobs:  # choose each objective's setting, then train it on the suite's seeds
        selection = finish_selection(suite, registry, directory, trial_jobs)
        jobs = plan_final(suite, registry, selection)
        todo, done_before = _remaining(jobs, directory)
        skipped += done_before
        execute_all(todo)
        chosen = selection.describe(suite)

    cells = [cell for job in jobs for cell in job.cells]
    documents = directory.load(cells)
    outputs = {**registry.outputs(), **{o.name: o for o in TRAINING_OUTPUTS}}
    records, curves = records_frame(documents), curves_frame(documents)
    summary = summarize(records, outputs)
    directory.write_csv("records.csv", records)
    directory.write_csv("curves.csv", curves)
    directory.write_csv("summary.csv", summary)

    report = RunReport(
        suite=suite.name, directory=directory.path, records=records, curves=curves, summary=summary,
        outputs=outputs, datasets={d.label: build(registry, d) for d in suite.datasets},
        samples={(d["dataset"], d["objective"], d["seed"]): directory.samples(d["cell"]) for d in documents},
        chosen=chosen)
    for spec in suite.reporters:
        plugin = registry.get("reporter", spec.type, spec.label).plugin.name
        try:
            build(registry, spec).report(report, directory.path)
        except Exception as exc:  # noqa: BLE001 - a broken reporter must not lose the results
            problems.append(f"reporter {spec.label!r} (plugin {plugin!r}) failed: {type(exc).__name__}: {exc}")
    return RunOutcome(directory.path, suite, summary, records, curves, report, sorted(set(problems)), failed,
                      skipped)


def expected_work(job: Job) -> int:
    """Network updates a job will make: the longest jobs start first, so workers finish together."""
    if job.objective is None:
        return 0
    critic_steps = getattr(job.objective.config, "critic_steps", 0)
    return job.suite.steps * len(job.cells) * (1 + critic_steps)


def _engine(engine: str, address: str | None, gpus_per_task: float | None):
    """None for this machine's executor, or a :class:`benchbench.ray_engine.RayEngine` (Ray is
    imported only then)."""
    if engine == "ray":
        from .ray_engine import RayEngine
        return RayEngine(address, gpus_per_task)
    if engine != "local":
        raise ConfigError("--engine", f"got {engine!r}; allowed: local, ray")
    if address is not None or gpus_per_task is not None:
        raise ConfigError("--address" if address is not None else "--gpus-per-task", "only with --engine ray")
    return None


def run_directory(suite: Suite, out: str | Path | None, resume: bool, results_root: Path) -> RunDirectory:
    if out is not None:
        return RunDirectory(Path(out))
    if resume:
        latest = RunDirectory.latest(results_root, suite.name)
        if latest is None:
            raise ConfigError("--resume", f"no earlier run of suite {suite.name!r} under {results_root}/; "
                                          f"run without --resume (or give --out DIR)")
        return latest
    return RunDirectory.new(results_root, suite.name)


def _remaining(jobs: list[Job], directory: RunDirectory) -> tuple[list[Job], int]:
    """Jobs reduced to the cells not yet in ``directory`` (re-runs are idempotent)."""
    todo, skipped = [], 0
    for job in jobs:
        missing = [c for c in job.cells if not directory.has(c)]
        skipped += len(job.cells) - len(missing)
        if len(missing) == len(job.cells):
            todo.append(job)
        elif missing:
            todo.append(make_job(job.suite, job.dataset, job.objective, missing))
    return todo, skipped
