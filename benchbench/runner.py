"""Run a suite end to end: validate, plan, train, save each cell as it finishes, summarise, report."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .api.errors import ConfigError
from .api.reporter import RunReport
from .config.suite import Suite
from .engines.base import Engine, Progress
from .engines.local import LocalEngine
from .engines.records import Records
from .plan.blueprint import recall
from .plan.cells import Job, plan
from .plan.selection import remaining
from .plan.trials import finish_selection, plan_final, plan_trials
from .registry.components import Registry, default_registry
from .report.phases import FILE as PHASES_FILE
from .report.phases import JOBS, RunClock
from .report.reporting import load_run, write_reports
from .rundir import lock
from .rundir.directory import RunDirectory

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
    comparisons: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # comparisons.csv
    ranks: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # ranks.csv
    tracebacks: list[str] = dataclasses.field(default_factory=list)  # of each failed job, as failed_jobs


def run_suite(suite: str | Path | Suite, **options) -> pd.DataFrame:
    """Run ``suite`` (a path or a :class:`Suite`) and return its summary as a DataFrame (pairwise
    comparisons and ranks: :func:`run`'s outcome, or :func:`benchbench.verdicts_from_run`).

    Options as for :func:`run`: ``out``, ``resume``, ``seeds``, ``steps``, ``device``, ``workers``, ``registry``.
    """
    return run(suite, **options).summary


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How :func:`run` runs a suite (its keyword arguments)."""

    out: str | Path | None = None  # the run directory: new, or holding a run to continue
    seeds: int | None = None  # overrides of the suite's
    steps: int | None = None
    device: str | None = None
    workers: int | None = None
    registry: Registry | None = None  # default: the installed plugins
    results_root: str | Path = DEFAULT_RESULTS
    resume: bool = False  # continue the suite's latest run under results_root
    on_start: Callable[[int, int], None] | None = None  # (member-steps to train, jobs), once planned
    progress: Callable[[int], None] | None = None  # (member-steps trained since the last call)
    engine: str = "local"
    address: str | None = None  # of a Ray cluster
    gpus_per_task: float | None = None


@lock.released_on_return  # the run directory's lock (taken in RunDirectory.prepare)
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
    task (:mod:`benchbench.engines.ray_engine`) on the cluster at ``address`` (default: ``$RAY_ADDRESS``, else
    a new local one), each taking ``gpus_per_task`` of a GPU on CUDA."""
    return run_with(suite, RunOptions(out, seeds, steps, device, workers, registry, results_root, resume, on_start,
                                      progress, engine, address, gpus_per_task))


def run_with(suite: str | Path | Suite, options: RunOptions) -> RunOutcome:
    """:func:`run`: plan, check, execute, report."""
    clock = RunClock()  # where the time goes: phases.csv
    registry = options.registry or default_registry()
    engine = make_engine(options.engine, options.address, options.gpus_per_task)
    try:
        # ---- check: the suite loaded and checked where it runs (engines/check.py), before anything trains
        suite = engine.prepare(suite, registry, options.device, seeds=options.seeds, steps=options.steps,
                               workers=options.workers)
        # ---- plan: the jobs, made once; a resumed run selects those it has left -----------------------
        jobs = plan(suite, registry)
        trial_jobs = plan_trials(suite, registry) if suite.search else []  # the selection phase of a search
        directory = run_directory(suite, options.out, options.resume, Path(options.results_root))
        directory.prepare(suite.resolved())
        directory.write_json("environment.json", engine.environment(registry, suite.device))
        todo, finished = remaining(trial_jobs or jobs, directory.has)
        records = Records(directory, registry, clock, run_problems(registry, directory, suite))
        records.keep(finished)
        if options.on_start is not None:
            options.on_start(*expected_total(todo + (jobs if trial_jobs else [])))  # a search's final phase too
        clock.lap("planning")
        # ---- execute: the jobs left to do, on the engine --------------------------------------------
        execute(engine, todo, records, options.progress)
        if trial_jobs:  # choose each objective's setting, then train it on the suite's seeds
            selection = finish_selection(suite, registry, directory, trial_jobs)
            todo, finished = remaining(plan_final(suite, registry, selection), directory.has)
            records.keep(finished)
            clock.lap("selection")
            execute(engine, todo, records, options.progress)
    finally:
        engine.close()  # e.g. the Ray cluster it started

    # ---- report: from the records in the run directory ----------------------------------------------
    report = load_run(directory.path, registry, suite)
    clock.lap("loading results")
    records.problems.extend(write_reports(report, suite.reporters, registry, clock))
    report.phases = clock.frame()
    directory.write_csv(PHASES_FILE, report.phases)
    return RunOutcome(directory.path, suite, report.summary, report.records, report.curves, report,
                      sorted(set(records.problems)), records.failed, records.skipped, report.comparisons,
                      report.ranks, records.tracebacks)


def execute(engine: Engine, jobs: list[Job], records: Records, progress: Progress | None) -> None:
    """Run ``jobs`` on ``engine``, the longest first, each outcome into ``records``."""
    checkpoints = str(records.directory.path / "checkpoints")
    todo = [dataclasses.replace(job, checkpoints=checkpoints) for job in jobs]
    engine.execute(sorted(todo, key=lambda job: expected_work(job, records.registry), reverse=True),
                   records.registry, records.done, progress)
    records.clock.lap(JOBS)


def run_problems(registry: Registry, directory: RunDirectory, suite: Suite) -> list[str]:
    """What the run reports before anything runs: plugins that failed to load, damaged cells, a lock
    taken over, a search with one selection seed."""
    problems = [str(f) for f in registry.failures] + list(directory.warnings.values())
    if suite.search and suite.search.warning:
        problems.append(suite.search.warning)
    return problems


def expected_total(jobs: list[Job]) -> tuple[int, int]:
    """(member-steps to train, jobs) of ``jobs``: what ``on_start`` is told."""
    trained = [j for j in jobs if j.objective is not None]
    return sum(j.suite.steps * len(j.cells) for j in trained), len(jobs)


def expected_work(job: Job, registry: Registry) -> int:
    """Network updates a job will make (its blueprint's updates per step): the longest jobs start
    first, so workers finish together. Under a FLOP or seconds budget every model costs about the
    same: then its members."""
    if job.objective is None:
        return 0
    if job.suite.budget.unit != "steps":
        return len(job.cells)
    blueprint = recall(registry, job.dataset, job.objective)
    return job.suite.steps * len(job.cells) * (blueprint.updates_per_step if blueprint else 1)


def make_engine(engine: str, address: str | None, gpus_per_task: float | None) -> Engine:
    """The engine named ``engine``: this machine's, or a :class:`benchbench.engines.ray_engine.RayEngine`
    (Ray is imported only then)."""
    if engine == "ray":
        from .engines.ray_engine import RayEngine
        return RayEngine(address, gpus_per_task)
    if engine != "local":
        raise ConfigError("--engine", f"got {engine!r}; allowed: local, ray")
    if address is not None or gpus_per_task is not None:
        raise ConfigError("--address" if address is not None else "--gpus-per-task", "only with --engine ray")
    return LocalEngine()


def run_directory(suite: Suite, out: str | Path | None, resume: bool, results_root: Path) -> RunDirectory:
    if out is not None:
        if not str(out).strip():
            raise ConfigError("--out", "is empty; give a directory (new, or holding a run to continue)")
        return RunDirectory(Path(out))
    if resume:
        latest = RunDirectory.latest(results_root, suite.name)
        if latest is None:
            raise ConfigError("--resume", f"no earlier run of suite {suite.name!r} under {results_root}/; "
                                          f"run without --resume (or give --out DIR)")
        return latest
    return RunDirectory.new(results_root, suite.name)
