"""``benchbench compare BASE NEW``: the same suite run twice (before and after a change of code, a
plugin upgrade, a new torch), compared cell by cell.

- Quality (every per-cell metric, the ``(data)`` reference included): per (dataset, objective,
  metric) the change of the mean over seeds, new - base, with its percentile-bootstrap interval
  and a Mann-Whitney U test over seeds (:func:`benchbench.compare_samples`), Holm-adjusted within
  each (dataset, metric) family of objectives. Significantly worse (in the metric's ``better``
  direction) is a regression; metrics without a direction get no verdict.
- Throughput (the job-scoped outputs: steps/s, samples/s, times, memory): per (dataset, objective)
  the ratio new / base of the means over jobs. Oriented so that above 1 is better (base / new for
  "lower is better"), a ratio below ``1 - threshold`` is a regression.

Two runs compare only when they are runs of the same suite whose cells differ in nothing but code
versions (the plugin and version recorded with each component): anything else is a ConfigError.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..api.errors import ConfigError
from ..api.outputs import Output, job_scoped
from ..registry.components import Registry
from ..rundir.directory import at_top_rung, ladder_rungs, records_frame, results_part, rung_of
from ..stats.verdicts import compare_samples, difference_interval, holm, p_value
from .reporting import read_cells, read_json, read_resolved_suite, recorded_outputs

COLUMNS = ["kind", "dataset", "objective", "metric", "better", "n_base", "n_new", "base", "new", "change",
           "change_low", "change_high", "ratio", "p_value", "p_holm", "verdict", "regression"]
IGNORED_SUITE_KEYS = ("description", "reporters")  # change no result (nor do the scheduling settings)
CODE_KEYS = ("plugin", "version")  # what a component's record says about code, not configuration
WORSE, BETTER, SAME = "worse", "better", "~"


@dataclasses.dataclass
class Comparison:
    base: Path
    new: Path
    suite: str
    table: pd.DataFrame  # COLUMNS, quality rows then throughput rows
    base_environment: dict[str, Any]
    new_environment: dict[str, Any]
    threshold: float
    alpha: float

    @property
    def regressions(self) -> pd.DataFrame:
        return self.table[self.table["regression"]]


def compare_runs(base: str | Path, new: str | Path, registry: Registry, threshold: float = 0.10,
                 alpha: float = 0.05, seed: int = 0) -> Comparison:
    """Compare run directory ``new`` against ``base`` (see the module docstring)."""
    if not 0 < threshold < 1:
        raise ConfigError("--threshold", f"must be between 0% and 100% (exclusive), got {threshold:.0%}")
    base, new = Path(base), Path(new)
    base_suite, new_suite = read_resolved_suite(base), read_resolved_suite(new)
    if base_suite["name"] != new_suite["name"]:
        raise ConfigError(f"{base} and {new}", f"are runs of different suites ({base_suite['name']!r} and "
                                               f"{new_suite['name']!r}); compare two runs of one suite")
    changed = _differences(_results_part(base_suite), _results_part(new_suite))
    if changed:
        raise ConfigError(f"{base} and {new}", f"suite {base_suite['name']!r} was configured differently "
                                               f"(differs in: {', '.join(changed[:6])}); compare runs of one "
                                               f"configuration")
    base_cells = read_cells(base, base_suite).documents
    new_cells = read_cells(new, new_suite).documents
    _check_cells(base, base_cells, new_cells)
    outputs = recorded_outputs(registry)
    top = ladder_rungs(base_suite) - 1  # a budget ladder compares at its top rung
    base_records, new_records = at_top_rung(records_frame(base_cells), top), at_top_rung(records_frame(new_cells), top)
    table = pd.concat([quality_rows(base_records, new_records, outputs, alpha, seed),
                       throughput_rows(base_records, new_records, outputs, threshold)], ignore_index=True)
    return Comparison(base, new, base_suite["name"], table[COLUMNS], read_json(base / "environment.json"),
                      read_json(new / "environment.json"), threshold, alpha)


def quality_rows(base: pd.DataFrame, new: pd.DataFrame, outputs: dict[str, Output], alpha: float = 0.05,
                 seed: int = 0) -> pd.DataFrame:
    """One row per (dataset, objective, metric) of the per-cell metrics found in both runs."""
    shared = job_scoped(outputs)
    b, n = _finite(base, exclude=shared), _finite(new, exclude=shared)
    rows = []
    for key, group in b.groupby(["dataset", "objective", "metric"], sort=False):
        other = n[(n["dataset"] == key[0]) & (n["objective"] == key[1]) & (n["metric"] == key[2])]
        x, y = other["value"].to_numpy(float), group["value"].to_numpy(float)  # new, base
        if not len(x):
            continue
        better = outputs[key[2]].better if key[2] in outputs else "none"
        if better in ("higher", "lower"):
            found = compare_samples(x, y, better, seed=seed)
            change, low, high, p = found["diff"], found["diff_low"], found["diff_high"], found["p_value"]
        else:
            low, high = (float(v) for v in difference_interval(x, y, seed))
            change, p = float(x.mean() - y.mean()), p_value(x, y)
        rows.append(dict(kind="quality", dataset=key[0], objective=key[1], metric=key[2], better=better,
                         n_base=len(y), n_new=len(x), base=float(y.mean()), new=float(x.mean()), change=change,
                         change_low=low, change_high=high, ratio=_ratio(x.mean(), y.mean()), p_value=p))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if frame.empty:
        return frame
    frame["p_holm"] = frame.groupby(["dataset", "metric"], sort=False)["p_value"].transform(holm)
    sign = frame["better"].map({"higher": 1.0, "lower": -1.0}).fillna(0.0)
    significant = (frame["p_holm"] < alpha) & (sign != 0)
    frame["verdict"] = np.where(sign == 0, "", np.where(~significant, SAME,
                                                        np.where(frame["change"] * sign < 0, WORSE, BETTER)))
    frame["regression"] = frame["verdict"] == WORSE
    return frame


def throughput_rows(base: pd.DataFrame, new: pd.DataFrame, outputs: dict[str, Output],
                    threshold: float = 0.10) -> pd.DataFrame:
    """One row per (dataset, objective, job-scoped output): the means over jobs and their ratio."""
    once = ["dataset", "objective", "job", "metric"]  # a job copied to rows of other labels counts for each
    b, n = (_finite(r, only=job_scoped(outputs)).drop_duplicates(once) for r in (base, new))
    rows = []
    for key, group in b.groupby(["dataset", "objective", "metric"], sort=False):
        other = n[(n["dataset"] == key[0]) & (n["objective"] == key[1]) & (n["metric"] == key[2])]
        if other.empty:
            continue
        before, after = float(group["value"].mean()), float(other["value"].mean())
        better = outputs[key[2]].better if key[2] in outputs else "none"
        ratio = _ratio(after, before)
        oriented = ratio if better == "higher" else 1 / ratio if better == "lower" and ratio else math.nan
        verdict = "" if better not in ("higher", "lower") or not math.isfinite(oriented) else \
            WORSE if oriented < 1 - threshold else BETTER if oriented > 1 / (1 - threshold) else SAME
        rows.append(dict(kind="throughput", dataset=key[0], objective=key[1], metric=key[2], better=better,
                         n_base=len(group), n_new=len(other), base=before, new=after, change=after - before,
                         change_low=math.nan, change_high=math.nan, ratio=ratio, p_value=math.nan,
                         p_holm=math.nan, verdict=verdict, regression=verdict == WORSE))
    return pd.DataFrame(rows, columns=COLUMNS)


def parse_threshold(text: str) -> float:
    """"10%" or "0.1" -> 0.1; a ConfigError naming --threshold otherwise."""
    try:
        value = float(text[:-1]) / 100 if text.strip().endswith("%") else float(text)
    except ValueError:
        raise ConfigError("--threshold", f"got {text!r}; give a percentage such as 10%") from None
    if not 0 < value < 1:
        raise ConfigError("--threshold", f"got {text!r}; must be between 0% and 100% (exclusive)")
    return value


def _results_part(suite: dict[str, Any]) -> dict[str, Any]:
    """What of a resolved suite decides results: as :class:`RunDirectory` compares them, and neither
    the description nor the reporters."""
    return {k: v for k, v in results_part(suite).items() if k not in IGNORED_SUITE_KEYS}


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    """The dotted keys where the plain data ``a`` and ``b`` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in dict.fromkeys([*a, *b])
                for d in _differences(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))]
    return [] if a == b else [where or "(value)"]


def _without_code(config: Any) -> Any:
    if isinstance(config, dict):
        return {k: _without_code(v) for k, v in config.items() if k not in CODE_KEYS}
    return config


def _check_cells(base: Path, base_cells: list[dict], new_cells: list[dict]) -> None:
    """Cells of the same (dataset, objective, seed) must have the same configuration once the code
    versions are set aside; cells present in only one run are left out of the comparison."""
    new = {(d["dataset"], d["objective"], d["seed"], rung_of(d)): d for d in new_cells}
    for d in base_cells:
        other = new.get((d["dataset"], d["objective"], d["seed"], rung_of(d)))
        if other is None:
            continue
        changed = _differences(_without_code(d.get("config")), _without_code(other.get("config")))
        if changed:
            raise ConfigError(f"{base}: cells/{d['cell']}.json", f"cell {d['dataset']}/{d['objective']} seed "
                                                                 f"{d['seed']} was configured differently in the "
                                                                 f"new run (differs in: {', '.join(changed[:6])})")


def _finite(records: pd.DataFrame, exclude=(), only=None) -> pd.DataFrame:
    values = pd.to_numeric(records["value"], errors="coerce")
    keep = np.isfinite(values) & ~records["metric"].isin(list(exclude))
    if only is not None:
        keep &= records["metric"].isin(list(only))
    return records[keep].assign(value=values[keep].astype(float))


def _ratio(after: float, before: float) -> float:
    return float(after / before) if before and math.isfinite(before) and math.isfinite(after) else math.nan

