"""From a run directory's cell files to its reports: the one path both ``benchbench run`` (after
training) and ``benchbench report RUN_DIR`` (without training) take, so the two cannot drift.

:func:`load_run` reads ``suite.yaml``, ``environment.json`` and ``cells/*.json`` (+ ``.npy``
samples) into a :class:`~benchbench.RunReport` (summary, comparisons and ranks computed by
:func:`benchbench.compute_verdicts`); :func:`write_reports` writes ``records.csv``, ``curves.csv``,
``summary.csv``, ``comparisons.csv``, ``ranks.csv`` (and a search's ``trials.csv``,
``budget.csv``; the tables across budget rungs of :func:`benchbench.stats.frontier.frontier_tables`)
and calls the suite's reporters;
:func:`rebuild` is ``benchbench report``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch

from ..api.errors import ConfigError
from ..api.outputs import Output
from ..api.reporter import REFERENCE, RunReport
from ..config.suite import ComponentSpec, Suite, parse_suite
from ..plan.trials import select, winners_curse
from ..registry.components import Registry, default_registry
from ..rundir import cellfile
from ..rundir.directory import (FAILURES, RunDirectory, at_top_rung, curves_frame, ladder_rungs, recorded_suite,
                                records_frame, rung_of)
from ..stats.budget import budget_frame
from ..stats.frontier import frontier, frontier_tables, mark_improving
from ..stats.improving import still_improving
from ..stats.summary import compute_verdicts
from ..stats.verdicts import ALPHA, TEST, Verdicts
from ..train import divergence
from ..train.evaluation import TRAINING_OUTPUTS
from . import phases
from .phases import RunClock


def read_resolved_suite(directory: Path) -> dict[str, Any]:
    """The resolved suite a run directory was made for (its ``suite.yaml``), or a ConfigError."""
    path = Path(directory) / "suite.yaml"
    if not (Path(directory) / "cells").is_dir() or not path.is_file():
        raise ConfigError(str(directory), "not a run directory (needs suite.yaml and cells/, as "
                                          "`benchbench run` writes them)")
    resolved = recorded_suite(path, "run it again into a new --out directory")  # bounded, as suites are read
    if not {"name", "seeds", "datasets", "objectives"} <= set(resolved):
        raise ConfigError(str(path), "is not a resolved suite (keys name, seeds, datasets, objectives missing)")
    return resolved


def suite_of(directory: Path, registry: Registry, reporters: str | list[str] | None = None) -> Suite:
    """The run's suite, validated against the installed plugins, with ``reporters`` ("all" or
    names) instead of its own if given. The device is checked as "cpu" (a CUDA run can be
    reported on a machine without CUDA) and then restored."""
    resolved = read_resolved_suite(directory)
    raw = {k: v for k, v in resolved.items() if k != "device"}
    if reporters is not None:
        raw["reporters"] = reporters
    suite = parse_suite(raw, registry, source=str(Path(directory) / "suite.yaml"))
    return dataclasses.replace(suite, device=str(resolved.get("device", "cpu")))


class Cells(NamedTuple):
    documents: list[dict[str, Any]]  # the suite's cells, in plan order
    problems: list[str]  # met reading them
    trials: list[dict[str, Any]]  # the cells of a search's trials (selection seeds), in file order


def read_cells(directory: Path, resolved: dict[str, Any]) -> Cells:
    """The cell documents of the (dataset, objective, seed, rung) combinations of the resolved suite
    ``resolved`` (``suite.yaml``) in plan order (each dataset's reference first, then the
    objectives, seeds in order, each seed's rungs in order), problems met reading them, and the
    trial cells of a search.

    A combination saved more than once (cells of an older plugin version beside a re-run's) counts
    its newest file. Cell files of another schema make the directory unreadable: a ConfigError.
    """
    folder = Path(directory) / "cells"
    objectives = ([REFERENCE] if (resolved.get("eval") or {}).get("reference", True) else []) + list(
        resolved["objectives"])
    rungs = ladder_rungs(resolved)  # on a ladder: every objective's cells at every rung, the reference's at the top
    order = {(d, o, s, r): (i, j, k, r) for i, d in enumerate(resolved["datasets"]) for j, o in enumerate(objectives)
             for k, s in enumerate(resolved["seeds"])
             for r in ((rungs - 1,) if o == REFERENCE else range(rungs))}
    found: dict[tuple, tuple[float, dict[str, Any]]] = {}
    problems, trials = [], []
    for path in sorted(folder.glob("*.json")):
        document, why = cellfile.read_cell(path, path.stem)  # the checks that make `benchbench run` re-run it
        if document is None:
            problems.append(f"cell file {why}; left out (a run with --out re-runs it)")
            continue
        if "trial" in document["config"]:  # the selection phase of a search (its own seeds)
            trials.append(document)
            continue
        key = (document["dataset"], document["objective"], document["seed"], rung_of(document))
        why = "which the run's suite does not hold" if key not in order else mislabelled(document, resolved)
        if why:
            rung = f" rung {key[3]}" if rungs > 1 else ""
            problems.append(f"cell file {path.name} is labelled {key[0]}/{key[1]} seed {key[2]}{rung}, {why}; left "
                            f"out (a run with --out re-runs the cell)")
            continue
        mtime = path.stat().st_mtime
        if key not in found or mtime > found[key][0]:
            found[key] = (mtime, document)
    missing = [key for key in order if key not in found]
    reasons = failure_reasons(Path(directory))
    problems += [f"{d}/{o} seed {s}{f' rung {r}' if rungs > 1 else ''}: no result in {folder} ("
                 + (f"its job failed: {reasons[(d, o, s)]}" if (d, o, s) in reasons
                    else "its job failed or the run was interrupted") + ")" for d, o, s, r in missing]
    plan = {(d, o): (i, j) for (d, o, _, _), (i, j, _, _) in order.items()}  # trials in plan order, as the run chose
    trials.sort(key=lambda d: (plan.get((d["dataset"], d["objective"]), (len(plan), 0)), d["config"]["trial"],
                               d["seed"]))
    return Cells([found[key][1] for key in sorted(found, key=order.__getitem__)], problems, trials)


def failure_reasons(directory: Path) -> dict[tuple[str, str, int], str]:
    """(dataset, objective, seed) -> why its job failed in the latest run (``failures.json``), where known."""
    reasons = {}
    for failure in read_json(directory / FAILURES).get("failures", []):
        try:
            label = f"{failure['dataset']}/{failure['objective']} (seeds {', '.join(map(str, failure['seeds']))}): "
            error = str(failure["error"])
            reasons.update({(failure["dataset"], failure["objective"], seed): error.removeprefix(label)
                            for seed in failure["seeds"]})
        except (KeyError, TypeError):  # a damaged file: the reasons are unknown, nothing else is lost
            continue
    return reasons


def mislabelled(document: dict[str, Any], resolved: dict[str, Any]) -> str | None:
    """Why ``document``'s labels do not fit its own config (an edited label or seed), or None: the
    component types of its dataset and objective labels in the resolved suite, and its seed."""
    config, reference = document["config"], document["objective"] == REFERENCE
    wanted = {"dataset": _type(resolved["datasets"][document["dataset"]]),
              "objective": None if reference else _type(resolved["objectives"][document["objective"]]),
              "seed": document["seed"]}
    found = {"dataset": _type(config.get("dataset")), "objective": _type(config.get("objective")),
             "seed": config.get("seed")}
    wrong = [k for k in wanted if found[k] != wanted[k]]
    return f"but its config holds {', '.join(f'{k} {found[k]!r}' for k in wrong)}" if wrong else None


def _type(component: Any) -> Any:
    return component.get("type") if isinstance(component, dict) else component


def cell_problems(documents: list[dict[str, Any]]) -> list[str]:
    """What the cells recorded as they ran, worded as ``benchbench run`` prints it: the job's
    problems (metric errors, out-of-memory retries...) and diverged seeds."""
    problems = []
    for d in documents:
        label = f"{d['dataset']}/{d['objective']}"
        problems += [f"{label}: {p}" for p in d.get("problems", [])]
        diverged = d.get("diverged")
        if diverged:
            problems.append(divergence.warning(label, d['seed'], diverged))
    return problems


def load_run(directory: str | Path, registry: Registry, suite: Suite | None = None) -> RunReport:
    """Everything reporters need from a finished (or partly finished) run directory."""
    directory = Path(directory)
    suite_config = read_resolved_suite(directory)
    suite = suite or suite_of(directory, registry)
    documents, problems, trial_documents = read_cells(directory, suite_config)
    selection = select(suite, registry, trial_documents) if suite.search and trial_documents else None
    outputs = recorded_outputs(registry)
    top = ladder_rungs(suite_config) - 1
    every_rung = records_frame(documents)  # records.csv; every other table is the top rung's
    records, curves = at_top_rung(every_rung, top), at_top_rung(curves_frame(documents), top)
    documents = [d for d in documents if rung_of(d) == top]
    environment = read_json(directory / "environment.json")
    problems = [*problems, *environment.get("plugin_failures", []), *cell_problems(documents),
                *([suite.search.warning] if suite.search and suite.search.warning else [])]
    found = compute_verdicts(records, outputs)
    across = frontier(every_rung, curves, outputs, suite.targets, (found.summary, found.comparisons))
    return RunReport(
        suite=suite.name, directory=directory, records=records, curves=curves,
        summary=mark_improving(found.summary, across.improving), frontier=across,
        outputs=outputs, datasets={d.label: registry.build(d) for d in suite.datasets},
        samples=cell_samples(directory, documents),
        environment=environment, problems=list(dict.fromkeys(problems)), suite_config=suite_config,
        wall_time_s=wall_time(directory, environment), comparisons=found.comparisons, ranks=found.ranks,
        chosen=selection.describe(suite) if selection else {},
        trials=selection.trials if selection else pd.DataFrame(),
        budget=budget_frame(selection.scores, suite.search.metric, selection.better) if selection else pd.DataFrame(),
        selection_warnings=winners_curse(selection, found.summary, suite.search.metric) if selection else {},
        phases=phases.read(directory), rung_records=every_rung)


def cell_samples(directory: Path, documents: list[dict[str, Any]]) -> dict[tuple[str, str, int], torch.Tensor]:
    """(dataset, objective, seed) -> the samples kept for plots (``cells/<key>.npy``), where saved."""
    run = RunDirectory(directory)
    return {(d["dataset"], d["objective"], d["seed"]): run.samples(d["cell"]) for d in documents
            if (run.cells / f"{d['cell']}.npy").exists()}


def write_reports(report: RunReport, reporters: tuple[ComponentSpec, ...], registry: Registry,
                  clock: RunClock | None = None) -> list[str]:
    """Write the tables (records.csv, curves.csv, summary.csv, comparisons.csv, ranks.csv) and run each
    reporter, in suite order except those that run last; returns the reporters that failed, named
    (a broken reporter never loses the results or the other reports). A run's ``clock`` times the
    tables and each reporter; each reporter sees the phases so far in ``report.phases``."""
    directory = RunDirectory(report.directory)
    directory.write_csv("records.csv", report.rung_records if not report.rung_records.empty else report.records)
    directory.write_csv("curves.csv", report.curves)
    directory.write_csv("summary.csv", report.summary)
    directory.write_csv("comparisons.csv", report.comparisons)
    directory.write_csv("ranks.csv", report.ranks)
    for name, frame in (("trials.csv", report.trials), ("budget.csv", report.budget)):
        if not frame.empty:  # a search's
            directory.write_csv(name, frame)
    for name, frame in frontier_tables(report.frontier).items():  # across budget rungs
        directory.write_csv(name, frame)
    problems = []
    if clock is not None:
        clock.lap("tables")
    entries = {spec.label: registry.entry(spec) for spec in reporters}
    for spec in sorted(reporters, key=lambda spec: bool(getattr(entries[spec.label].cls, "runs_last", False))):
        plugin = entries[spec.label].plugin.name
        if clock is not None:
            report.phases = clock.frame()
        try:
            registry.build(spec).report(report, directory.path)
        except Exception as exc:  # noqa: BLE001 - a broken reporter must not lose the results
            problems.append(f"reporter {spec.label!r} (plugin {plugin!r}) failed: {type(exc).__name__}: {exc}")
        if clock is not None:
            clock.lap(f"reporter {spec.label}")
    return problems


def rebuild(directory: str | Path, registry: Registry, reporters: str | list[str] | None = None
            ) -> tuple[RunReport, list[str]]:
    """``benchbench report``: every report of a run written again from its cell files, nothing
    trained. Returns the report and the reporters that failed."""
    suite = suite_of(Path(directory), registry, reporters)
    report = load_run(directory, registry, suite)
    return report, write_reports(report, suite.reporters, registry)


def wall_time(directory: Path, environment: dict[str, Any]) -> float | None:
    """Seconds from the run's start (``environment.json``'s ``created``; a resumed run restarts it)
    to its last cell file; None when unknown."""
    try:
        start = dt.datetime.fromisoformat(environment["created"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None
    times = [p.stat().st_mtime for p in (Path(directory) / "cells").glob("*.json")]
    return max(0.0, max(times) - start) if times else None


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def recorded_outputs(registry: Registry) -> dict[str, Output]:
    """Every output a run records, by name: the plugins' declared outputs and the trainer's own."""
    return {**registry.outputs(), **{o.name: o for o in TRAINING_OUTPUTS}}


def verdicts_from_run(run_dir: str | Path, test: str = TEST, alpha: float = ALPHA, seed: int = 0,
                      registry=None) -> Verdicts:
    """The :class:`Verdicts` of a finished run directory, from its ``records.csv`` (directions from
    the installed plugins' declared outputs, or ``registry``'s); the summary's ``still_improving``
    from its ``curves.csv``."""
    path = Path(run_dir) / "records.csv"
    if not path.is_file():
        raise ConfigError(str(run_dir), "has no records.csv; give the directory of a finished run")
    records = pd.read_csv(path, dtype={"note": str})
    if "note" in records:
        records["note"] = records["note"].fillna("")
    outputs = recorded_outputs(registry or default_registry())
    found = compute_verdicts(at_top_rung(records), outputs, test, alpha, seed)  # a ladder's verdicts: the top rung's
    curves = Path(run_dir) / "curves.csv"
    improving = still_improving(pd.read_csv(curves), outputs) if curves.is_file() else pd.DataFrame()
    return dataclasses.replace(found, summary=mark_improving(found.summary, improving))
