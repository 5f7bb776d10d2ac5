"""The run directory. Each finished cell is written at once to ``cells/<key>.json`` (+ ``.npy``
samples): the add-only source of truth. Tables are derived from those files, so an interrupted
run loses nothing and a re-run into the same directory skips the cells it finds.

Layout of ``results/<suite>/<run-id>/``: ``suite.yaml`` (resolved), ``environment.json``,
``cells/``, ``records.csv``, ``curves.csv``, ``summary.csv``, ``phases.csv`` (where the time went), then
the reporters' files (``summary.md``, ``plots/``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from ..api.cache import atomic_write
from ..api.errors import ConfigError
from ..config.suite import read_suite_file
from ..plan.cells import SCHEMA_VERSION, Cell
from . import cellfile, lock
from .storage import check_layout, storage_errors

SCHEDULING = ("workers", "max_members", "stack_seeds", "job_timeout", "checkpoint_every",
              "keep_weights")  # execution settings that leave results unchanged
FAILURES = "failures.json"  # the jobs that failed in the latest run into this directory, and why
RECORD_COLUMNS = ["cell", "job", "dataset", "objective", "seed", "rung", "metric", "value", "note"]
CURVE_COLUMNS = ["cell", "dataset", "objective", "seed", "rung", "step", "metric", "value"]


@dataclasses.dataclass
class CellResult:
    cell: Cell
    job: str
    scores: dict[str, float]
    curves: list[tuple[int, str, float]]
    problems: list[str]
    notes: dict[str, str] = dataclasses.field(default_factory=dict)  # output -> why it is missing (NaN)
    diverged: dict | None = None  # {"step", "loss"} when the cell's losses became NaN or infinite


class RunDirectory:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.cells = self.path / "cells"
        self.warnings: dict[str, str] = {}  # cell key (or "lock") -> what a run should warn about
        self.failures: list[dict[str, Any]] = []  # the jobs of this run that failed, and why (failures.json)

    @classmethod
    def new(cls, root: Path, suite: str) -> RunDirectory:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path, n = Path(root) / suite / stamp, 1
        while path.exists():
            n += 1
            path = Path(root) / suite / f"{stamp}-{n}"
        return cls(path)

    @classmethod
    def latest(cls, root: Path, suite: str) -> RunDirectory | None:
        """The most recent run directory of ``suite`` under ``root`` (what ``--resume`` continues)."""
        runs = sorted((p.parent for p in (Path(root) / suite).glob("*/suite.yaml")), key=lambda p: p.stat().st_mtime)
        return cls(runs[-1]) if runs else None

    def prepare(self, suite: dict[str, Any]) -> None:
        """Make the directory and lock it for this run (:mod:`benchbench.rundir.lock`), or check that it
        holds a run of the same resolved ``suite``: a run never silently mixes into (or overwrites)
        another suite's results. What the file system refuses is one :class:`StorageError` line."""
        with storage_errors(self.path):
            check_layout(self.path)
            self.path.mkdir(parents=True, exist_ok=True)
            _, took_over = lock.acquire(self.path)
            if took_over:
                self.warnings["lock"] = took_over
            existing = self.path / "suite.yaml"
            if existing.exists():
                found, wanted = results_part(recorded_suite(existing)), results_part(suite)
                if found != wanted:
                    changed = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
                    raise ConfigError(str(self.path), f"holds a run of a different suite (differs in: "
                                                      f"{', '.join(changed)}); choose another --out or remove it")
            self.cells.mkdir(parents=True, exist_ok=True)
            (self.path / FAILURES).unlink(missing_ok=True)  # the last run's: this one records its own
            if not existing.exists():
                self.write_yaml("suite.yaml", suite)

    def record_failure(self, dataset: str, objective: str, seeds: tuple[int, ...], error: str) -> None:
        """Keep why a job failed in ``failures.json`` (this run's failures: a report says why its cells are missing)."""
        self.failures.append({"dataset": dataset, "objective": objective, "seeds": list(seeds), "error": error})
        self.write_json(FAILURES, {"failures": self.failures})

    def has(self, cell: Cell) -> bool:
        return self._read(cell) is not None

    def _read(self, cell: Cell) -> dict[str, Any] | None:
        """A finished cell's document, or None when it is missing or damaged: a cell whose files
        do not both validate (:mod:`benchbench.rundir.cellfile`) is named in ``warnings`` and removed, to
        be run again."""
        path = self.cells / f"{cell.key}.json"
        document, why = cellfile.read_cell(path, cell.key)
        if document is not None:
            why = cellfile.label_problem(document, path.name, cell.dataset, cell.objective, cell.seed)
            if why is None:
                return document
        if why is not None:
            self.warnings[cell.key] = f"cell {cell.key} ({cell.dataset}/{cell.objective} seed {cell.seed}): {why}; " \
                                     f"it runs again"
            for damaged in (path, path.with_suffix(".npy")):
                with contextlib.suppress(OSError):  # an empty directory in its place goes too
                    damaged.rmdir() if damaged.is_dir() and not damaged.is_symlink() else damaged.unlink(missing_ok=True)
        return None

    def save(self, result: CellResult, samples: torch.Tensor) -> None:
        """Write one cell atomically (a crash never leaves half a file); a full disk stops the run
        with one line (exit code 1), the cells saved before kept."""
        cell = result.cell
        document = {"schema": SCHEMA_VERSION, "cell": cell.key, "job": result.job, "dataset": cell.dataset,
                    "objective": cell.objective, "seed": cell.seed, "scores": result.scores,
                    "curves": [list(c) for c in result.curves], "problems": result.problems,
                    "notes": result.notes, "diverged": result.diverged, "config": cell.config, "rung": cell.rung}
        buffer = io.BytesIO()
        np.save(buffer, samples.numpy())
        with storage_errors(self.cells, exit_code=1, hint=self._stopped()):
            atomic_write(self.cells / f"{cell.key}.npy", buffer.getvalue())
            atomic_write(self.cells / f"{cell.key}.json", json.dumps(document, indent=1, allow_nan=True).encode())

    def load(self, cells: list[Cell]) -> list[dict[str, Any]]:
        return [d for d in map(self._read, cells) if d is not None]

    def samples(self, key: str) -> torch.Tensor:
        return torch.from_numpy(np.load(self.cells / f"{key}.npy"))

    def write_yaml(self, name: str, value: Any) -> Path:
        return self._write(name, yaml.safe_dump(value, sort_keys=False))

    def write_json(self, name: str, value: Any) -> Path:
        return self._write(name, json.dumps(value, indent=2, default=str))

    def write_csv(self, name: str, frame: pd.DataFrame) -> Path:
        """A table derived from the cells (written once training is over: a failure is exit code 1)."""
        return self._write(name, frame.to_csv(index=False), exit_code=1, hint=self._stopped())

    def _write(self, name: str, text: str, exit_code: int = 2, hint: str = "") -> Path:
        with storage_errors(self.path / name, exit_code, hint):
            atomic_write(self.path / name, text.encode())
        return self.path / name

    def _stopped(self) -> str:
        return f"the run stopped; the cells finished are saved in {self.cells} and the same command (or --out " \
               f"{self.path}) runs only the missing ones"


def recorded_suite(path: Path, hint: str = "choose another --out or remove the directory") -> Any:
    """The suite a run directory recorded (its ``suite.yaml``), read like a suite file (bounded, see
    :mod:`benchbench.config.yaml_limits`), or a one-line error ending in ``hint``."""
    hint = f"the suite this run directory recorded: {hint}"
    try:
        recorded = read_suite_file(path)
    except ConfigError as exc:
        raise ConfigError(exc.where, f"{exc.message} ({hint})") from None
    if not isinstance(recorded, dict):
        raise ConfigError(str(path), f"holds {type(recorded).__name__}, but a suite must be a mapping ({hint})")
    return recorded


def results_part(suite: Any) -> dict[str, Any]:
    """A resolved suite without the settings that do not change results (how work is scheduled)."""
    suite = json.loads(json.dumps(suite)) if isinstance(suite, dict) else {}
    execution = suite.get("execution") or {}
    suite["execution"] = {k: v for k, v in execution.items() if k not in SCHEDULING}
    return suite


def records_frame(documents: list[dict[str, Any]]) -> pd.DataFrame:
    """The final scores of ``documents``, one row per metric; ``rung``: of a budget ladder (0 for a
    single budget, and for cells written before ladders)."""
    rows = [(d["cell"], d["job"], d["dataset"], d["objective"], d["seed"], rung_of(d), metric, value,
             d.get("notes", {}).get(metric, "")) for d in documents for metric, value in d["scores"].items()]
    return pd.DataFrame(rows, columns=RECORD_COLUMNS)


def curves_frame(documents: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [(d["cell"], d["dataset"], d["objective"], d["seed"], rung_of(d), step, metric, value)
            for d in documents for step, metric, value in d["curves"]]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def rung_of(document: dict[str, Any]) -> int:
    return document.get("rung", 0)


def ladder_rungs(resolved: dict[str, Any]) -> int:
    """The number of rungs of the budget ladder of a resolved suite (``suite.yaml``): 1 for a single budget."""
    return len(rung_budgets(resolved)) or 1


def rung_budgets(resolved: dict[str, Any]) -> list[tuple[str, float]]:
    """(unit, amount) of every rung of a resolved suite's (``suite.yaml``) budget, rung 0 first: one
    for a single budget, none for a suite without a budget or steps (the default step budget)."""
    budget = resolved.get("budget")
    if isinstance(budget, dict):
        for unit, amount in budget.items():
            if unit != "retrain":
                return [(unit, a) for a in amount] if isinstance(amount, list) else [(unit, amount)]
    return [("steps", resolved["steps"])] if "steps" in resolved else []


def at_top_rung(frame: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """The rows of ``frame`` (records or curves) at the top rung of a budget ladder: ``top``, or the
    highest rung found; every row for a frame without a ``rung`` column (an older records.csv)."""
    if "rung" not in frame or frame.empty:
        return frame
    top = int(frame["rung"].max()) if top is None else top
    return frame[frame["rung"] == top].reset_index(drop=True)
