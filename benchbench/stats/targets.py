"""Compute to a target and the anytime score, from the scores of a budget ladder.

- :func:`target_table`: the targets of a run: the suite's (``targets: {jsd: 0.05}``), and for each
  divergence the suite leaves out, twice its ``(data)`` value (where that is positive).
- :func:`to_target_seeds`: the training FLOPs per model each seed needs to reach a target, on the
  first rung where its score meets it, interpolated linearly on log-FLOPs from the rung before;
  ``inf`` where the top rung does not reach it, the first rung's FLOPs (an upper bound) where it does.
- :func:`to_target`: per objective, the median over seeds with a distribution-free interval (the
  order statistics of :func:`scipy.stats.quantile_test`; a seed that never reaches the target is
  larger than any that does, so the median and its interval stay exact under that censoring).
- :func:`anytime`: the area under the quality-vs-log10(FLOPs) curve, per seed, over the span of
  FLOPs every objective of the dataset was scored on, divided by its width: the mean score over
  log-compute, then the mean over seeds with its Student-t interval.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..api.outputs import Output
from ..api.reporter import REFERENCE
from .rungs import RUNG_FLOPS, with_rungs
from .summary import interval
from .verdicts import comparable, usable

TARGET_COLUMNS = ["dataset", "metric", "target", "source"]
SEED_COLUMNS = ["dataset", "objective", "metric", "target", "seed", "flops", "status"]
TO_TARGET_COLUMNS = ["dataset", "objective", "metric", "target", "source", "median_flops", "low", "high",
                     "ci_level", "reached", "n", "status"]
ANYTIME_COLUMNS = ["dataset", "objective", "metric", "mean", "ci95_low", "ci95_high", "n", "log10_flops_low",
                   "log10_flops_high"]
INTERPOLATED, FIRST_RUNG, NOT_REACHED = "interpolated", "by the first rung", "not reached by the top rung"
LEVEL = 0.95
DEFAULT_FACTOR = 2.0  # a divergence's default target: this times its (data) value


def target_table(summary: pd.DataFrame, outputs: dict[str, Output], targets: dict[str, float] | None = None
                 ) -> pd.DataFrame:
    """dataset, metric, target, source for every dataset of ``summary``: the suite's ``targets``
    (source "suite") for the metrics the dataset has, and for every other divergence (group
    "divergence", lower is better) twice the ``(data)`` row's mean where it is positive (the top
    rung's, for a summary with a ``rung`` column)."""
    targets = targets or {}
    if summary.empty:
        return pd.DataFrame(columns=TARGET_COLUMNS)
    metrics = comparable(outputs)
    rows = []
    for dataset, group in summary.groupby("dataset", sort=False):
        present = list(dict.fromkeys(group.loc[group["objective"] != REFERENCE, "metric"]))
        rows += [(dataset, m, float(v), "suite") for m, v in targets.items() if m in present]
        reference = group[group["objective"] == REFERENCE]
        if "rung" in reference:  # the top rung's reference (it may be scored once, at any rung)
            reference = reference.sort_values("rung", kind="stable")
        reference = reference.groupby("metric")["mean"].last()
        rows += [(dataset, m, DEFAULT_FACTOR * float(reference[m]), f"{DEFAULT_FACTOR:g}x {REFERENCE}")
                 for m in present if m not in targets and m in metrics and metrics[m].group == "divergence"
                 and metrics[m].better == "lower" and m in reference and float(reference[m]) > 0]
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)


def scores_by_rung(records: pd.DataFrame, outputs: dict[str, Output], metrics: list[str]) -> pd.DataFrame:
    """dataset, objective, seed, rung, metric, flops, value: each trained seed's score of ``metrics``
    at each rung beside its training FLOPs there (rows without both, or without a usable score, left
    out), in the records' order."""
    records = with_rungs(records)
    records = records[records["objective"] != REFERENCE]
    key = ["dataset", "objective", "seed", "rung"]
    values = records[records["metric"].isin(metrics) & usable(records, outputs)]
    flops = records[records["metric"] == RUNG_FLOPS]
    both = values[key + ["metric", "value"]].merge(flops[key + ["value"]].rename(columns={"value": "flops"}), on=key)
    both = both.astype({"value": float, "flops": float})
    return both[np.isfinite(both["flops"]) & (both["flops"] > 0)]


def flops_to_reach(flops: np.ndarray, values: np.ndarray, target: float, better: str) -> tuple[float, str]:
    """(training FLOPs, status) for one seed's scores ``values`` at increasing ``flops``."""
    sign = 1.0 if better == "higher" else -1.0
    met = np.flatnonzero(sign * (values - target) >= 0)
    if len(met) == 0:
        return math.inf, NOT_REACHED
    k = int(met[0])
    if k == 0:
        return float(flops[0]), FIRST_RUNG
    t = (target - values[k - 1]) / (values[k] - values[k - 1])  # values[k - 1] misses, values[k] meets: 0 < t <= 1
    log = np.log10(flops[k - 1]) + t * (np.log10(flops[k]) - np.log10(flops[k - 1]))
    return float(10**log), INTERPOLATED


def to_target_seeds(records: pd.DataFrame, outputs: dict[str, Output], targets: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, objective, metric, seed) of each target (:func:`target_table`): the
    training FLOPs per model to reach it (:func:`flops_to_reach`) and how it was found."""
    rows = []
    all_scores = scores_by_rung(records, outputs, list(dict.fromkeys(targets["metric"])))
    for dataset, metric, target in zip(targets["dataset"], targets["metric"], targets["target"]):
        if metric not in outputs or outputs[metric].better not in ("higher", "lower"):
            continue
        scores = all_scores[(all_scores["dataset"] == dataset) & (all_scores["metric"] == metric)]
        for (objective, seed), curve in scores.groupby(["objective", "seed"], sort=False):
            curve = curve.sort_values("flops")
            flops, status = flops_to_reach(curve["flops"].to_numpy(), curve["value"].to_numpy(), float(target),
                                           outputs[metric].better)
            rows.append((dataset, objective, metric, float(target), seed, flops, status))
    return pd.DataFrame(rows, columns=SEED_COLUMNS)


def median_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float, float, float]:
    """(median, low, high, level) of ``values`` (``inf`` allowed): the interval of the median from
    the order statistics (:func:`scipy.stats.quantile_test`), at ``level`` where the sample is large
    enough (6 or more), else at the highest level its range reaches (1 - 2^(1-n): 75% for 3 seeds);
    NaN bounds for a single value."""
    values = np.sort(np.asarray(values, float))
    n, median = len(values), float(np.median(values))
    if n < 2:
        return median, math.nan, math.nan, math.nan
    level = min(level, 1 - 2 * stats.binom.pmf(0, n, 0.5))
    finite = values[np.isfinite(values)]
    centre = float(np.median(finite)) if len(finite) else 1.0  # the test's null value: any point inside the data
    ci = stats.quantile_test(values, q=centre, p=0.5).confidence_interval(level - 1e-9)
    return median, float(ci.low), float(ci.high), level


def to_target(seeds: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, objective, metric) of :func:`to_target_seeds`: the median training FLOPs over
    seeds with its interval (:func:`median_interval`; ``inf``: beyond the top rung), how many seeds
    reached the target, and ``status``: "reached", "not reached by the top rung" (the median is
    beyond it) or "by the first rung" (the median is at most the first rung's FLOPs)."""
    if seeds.empty:
        return pd.DataFrame(columns=TO_TARGET_COLUMNS)
    source = {(d, m): s for d, m, s in zip(targets["dataset"], targets["metric"], targets["source"])}
    rows = []
    for (dataset, objective, metric, target), group in seeds.groupby(["dataset", "objective", "metric", "target"],
                                                                     sort=False):
        flops = group["flops"].to_numpy(float)
        median, low, high, level = median_interval(flops)
        statuses = group["status"].tolist()
        reached = sum(s != NOT_REACHED for s in statuses)
        if not math.isfinite(median):
            status = NOT_REACHED
        elif sum(s == FIRST_RUNG for s in statuses) > len(statuses) / 2:
            status = FIRST_RUNG
        else:
            status = "reached"
        rows.append((dataset, objective, metric, target, source.get((dataset, metric), ""), median, low, high, level,
                     reached, len(group), status))
    return pd.DataFrame(rows, columns=TO_TARGET_COLUMNS)


def anytime(records: pd.DataFrame, outputs: dict[str, Output]) -> pd.DataFrame:
    """Per (dataset, objective, metric with a direction): the area under each seed's score against
    log10(training FLOPs per model), over the span [lo, hi] that every objective and seed of the
    dataset covers, divided by hi - lo (the mean score over log-compute; linear between rungs),
    then the mean over seeds with its Student-t interval. Empty without two rungs in common."""
    rows = []
    if with_rungs(records)["rung"].nunique() < 2:
        return pd.DataFrame(columns=ANYTIME_COLUMNS)
    scores = scores_by_rung(records, outputs, list(comparable(outputs)))
    for (dataset, metric), by_metric in scores.groupby(["dataset", "metric"], sort=False):
        log = by_metric.assign(x=np.log10(by_metric["flops"]))
        spans = log.groupby(["objective", "seed"])["x"].agg(["min", "max"])
        low, high = float(spans["min"].max()), float(spans["max"].min())
        if not high > low:
            continue
        for objective, by_objective in log.groupby("objective", sort=False):
            areas = [_mean_over(curve.sort_values("x"), low, high) for _, curve in by_objective.groupby("seed")]
            mean, _, ci_low, ci_high, n = interval([a for a in areas if math.isfinite(a)])
            rows.append((dataset, objective, metric, mean, ci_low, ci_high, n, low, high))
    return pd.DataFrame(rows, columns=ANYTIME_COLUMNS)


def _mean_over(curve: pd.DataFrame, low: float, high: float) -> float:
    """The mean of the piecewise-linear curve (x, value) over [low, high]."""
    x, y = curve["x"].to_numpy(float), curve["value"].to_numpy(float)
    inside = (x > low) & (x < high)
    grid = np.concatenate([[low], x[inside], [high]])
    return float(np.trapezoid(np.interp(grid, x, y), grid) / (high - low))
