"""Run a suite end to end: validate, plan, train, save each cell as it finishes, summarise, report."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .api.errors import ConfigError
from .api.reporter import REFERENCE, RunReport
from .config.suite import Suite
from .engines.base import Engine
from .engines.failures import describe_failure, format_traceback
from .engines.local import LocalEngine
from .plan.blueprint import recall
from .plan.cells import Job, make_job, plan, train_once
from .plan.trials import finish_selection, plan_final, plan_trials
from .registry.components import Registry, default_registry
from .report.phases import FILE as PHASES_FILE
from .report.phases import JOBS, RunClock
from .report.reporting import load_run, write_reports
from .rundir import lock
from .rundir.directory import CellResult, RunDirectory
from .train import checkpoint, divergence
from .train.trainer import JobOutcome

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
    clock = RunClock()  # where the time goes: phases.csv
    registry = registry or default_registry()
    executor = make_engine(engine, address, gpus_per_task)
    try:
        suite = executor.prepare(suite, registry, device, seeds=seeds, steps=steps, workers=workers)  # and checked
        jobs = plan(suite, registry)
        trial_jobs = plan_trials(suite, registry) if suite.search else []  # the selection phase of a search
        directory = run_directory(suite, out, resume, Path(results_root))
        directory.prepare(suite.resolved())
        directory.write_json("environment.json", executor.environment(registry, suite.device))
        todo, skipped = _remaining(trial_jobs or jobs, directory)
        problems = [str(f) for f in registry.failures] + list(directory.warnings.values())  # damaged cells, a lock taken over
        if suite.search and suite.search.warning:  # one selection seed
            problems.append(suite.search.warning)
        failed: list[str] = []
        tracebacks: list[str] = []
        copies: dict[str, list] = {}  # cell key -> the cells of other labels, same settings, that copy its result

        def on_done(job: Job, outcome: JobOutcome | BaseException) -> None:
            if isinstance(outcome, BaseException):
                failed.append(describe_failure(job, outcome, registry))
                tracebacks.append(format_traceback(outcome))
                directory.record_failure(job.dataset.label, job.objective.label if job.objective else REFERENCE,
                                         job.seeds, failed[-1])
                return
            clock.add_job(outcome.phases, outcome.started)
            save(job.key, job.label, job.cells, outcome)
            for (spec, cells), rescored in zip(job.samplers, outcome.samplers):  # the stack under other samplers
                save(job.key, f"{job.dataset.label}/{spec.label}", cells, rescored)
            for rung, scored in enumerate(outcome.rungs):  # a ladder's lower rungs, scored on the way
                on_done(dataclasses.replace(job, cells=lower(job.cells, rung),
                                            samplers=tuple((s, lower(c, rung)) for s, c in job.samplers)), scored)
            checkpoint.discard(job)  # its cells are written (unless the suite keeps the final weights)

        def save(job_key: str, label: str, cells, outcome: JobOutcome) -> None:
            labels = [label] + list(dict.fromkeys(f"{c.dataset}/{c.objective}" for cell in cells
                                                  for c in copies_of(cell)))
            problems.extend(f"{name}: {p}" for name in labels for p in outcome.problems)
            for i, cell in enumerate(cells):
                diverged = outcome.diverged[i] if outcome.diverged else None
                for row in [cell, *copies_of(cell)]:  # each row its own file, named by its labels
                    if diverged:
                        problems.append(divergence.warning(f"{row.dataset}/{row.objective}", row.seed, diverged))
                    result = CellResult(row, job_key, outcome.scores[i], outcome.curves[i], outcome.problems,
                                        outcome.notes[i] if outcome.notes else {}, diverged)
                    directory.save(result, outcome.samples[i])

        def copies_of(cell) -> list:
            """The cells that copy ``cell``'s result (a lower rung's: the same rung of its top cell's copies)."""
            if cell.key in lowered:
                top, rung = lowered[cell.key]
                return [c.lower[rung] for c in copies.get(top.key, [])]
            return copies.get(cell.key, [])

        lowered: dict[str, tuple] = {}  # a lower rung's cell key -> (its top cell, the rung)

        def lower(cells, rung: int) -> tuple:
            for cell in cells:
                lowered[cell.lower[rung].key] = (cell, rung)
            return tuple(cell.lower[rung] for cell in cells)

        def execute(todo: list[Job]) -> None:
            todo, shared = train_once(todo)  # identical settings under other labels train once
            copies.update(shared)
            todo = [dataclasses.replace(job, checkpoints=str(directory.path / "checkpoints")) for job in todo]
            executor.execute(sorted(todo, key=lambda job: expected_work(job, registry), reverse=True), registry,
                             on_done, progress)
            clock.lap(JOBS)

        if on_start is not None:
            later = jobs if trial_jobs else []  # a search's final phase (as planned before the choice)
            once = train_once(todo + later)[0]
            trained = [j for j in once if j.objective is not None]
            on_start(sum(j.suite.steps * len(j.cells) for j in trained), len(once))

        clock.lap("planning")
        execute(todo)
        if trial_jobs:  # choose each objective's setting, then train it on the suite's seeds
            selection = finish_selection(suite, registry, directory, trial_jobs)
            jobs = plan_final(suite, registry, selection)
            todo, done_before = _remaining(jobs, directory)
            skipped += done_before
            clock.lap("selection")
            execute(todo)
    finally:
        executor.close()  # e.g. the Ray cluster it started

    report = load_run(directory.path, registry, suite)
    clock.lap("loading results")
    problems.extend(write_reports(report, suite.reporters, registry, clock))
    report.phases = clock.frame()
    directory.write_csv(PHASES_FILE, report.phases)
    summary, records, curves = report.summary, report.records, report.curves
    return RunOutcome(directory.path, suite, summary, records, curves, report, sorted(set(problems)), failed,
                      skipped, report.comparisons, report.ranks, tracebacks)


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


def _remaining(jobs: list[Job], directory: RunDirectory) -> tuple[list[Job], int]:
    """Jobs reduced to the cells not yet in ``directory`` (re-runs are idempotent); a cell whose lower
    rungs are not all there trains again, to score them."""
    todo, skipped = [], 0
    for job in jobs:
        missing = [c for c in job.cells if not all(directory.has(x) for x in (c, *c.lower))]
        skipped += len(job.cells) - len(missing)
        if len(missing) == len(job.cells):
            todo.append(job)
        elif missing:
            todo.append(make_job(job.suite, job.dataset, job.objective, missing))
    return todo, skipped
