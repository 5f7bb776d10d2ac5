"""Whether a final score is limited by the budget: its curve was still improving at the end.

For each (dataset, objective, metric with a direction) of the metric curves (curves.csv: cell,
dataset, objective, seed, step, metric, value), each seed's curve over the last ``fraction`` of its
steps (from the last curve point at or before that fraction's start) gets a least-squares slope
(:func:`numpy.polyfit`); its gain is slope x the window's steps, signed so that positive
means better. The cell is "still improving" when a one-sided t-test over seeds
(:func:`scipy.stats.ttest_1samp`, alternative "greater") finds the mean gain above 0 at ``alpha``.
With one seed, or fewer than two curve points in the window, there is no verdict (NaN).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..api.outputs import Output
from ..api.reporter import REFERENCE
from .verdicts import ALPHA, comparable

FRACTION = 0.25  # the last part of the budget a curve is judged on
IMPROVING_COLUMNS = ["dataset", "objective", "metric", "gain", "p_value", "improving", "n", "from_step", "to_step"]


def seed_gain(steps: np.ndarray, values: np.ndarray, fraction: float = FRACTION) -> tuple[float, int, int]:
    """(change of the least-squares line over the window, window start, end) of one seed's curve,
    in the metric's units (NaN with fewer than two finite points in the window)."""
    order = np.argsort(steps)
    steps, values = steps[order].astype(float), values[order].astype(float)
    keep = np.isfinite(values)
    steps, values = steps[keep], values[keep]
    if len(steps) < 2:
        return math.nan, 0, 0
    start = steps[-1] - fraction * (steps[-1] - steps[0])
    first = int(np.flatnonzero(steps <= start)[-1])  # the point at or before the window's start
    x, y = steps[first:], values[first:]
    if len(x) < 2 or x[-1] == x[0]:
        return math.nan, int(x[0]), int(x[-1])
    gain = float(np.polyfit(x - x[0], y, 1)[0] * (x[-1] - x[0]))  # the least-squares line's change
    if abs(gain) <= 1e-9 * float(np.abs(y).max()):  # a flat curve: rounding, not a trend
        gain = 0.0
    return gain, int(x[0]), int(x[-1])


def still_improving(curves: pd.DataFrame, outputs: dict[str, Output], fraction: float = FRACTION,
                    alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (dataset, objective, metric): ``gain`` (mean over seeds of the improvement over
    the last ``fraction`` of the curve, positive = better), the one-sided ``p_value``, ``improving``
    (p < alpha; False with no verdict), ``n`` seeds and the window's steps (of the longest seed)."""
    metrics = comparable(outputs)
    if curves.empty:
        return pd.DataFrame(columns=IMPROVING_COLUMNS)
    if "rung" in curves:  # curves of a ladder retrained per rung: the top rung's training
        curves = curves[curves["rung"] == curves["rung"].max()]
    curves = curves[curves["metric"].isin(list(metrics)) & (curves["objective"] != REFERENCE)]
    found = []  # (dataset, objective, metric, gains over seeds, window)
    for (dataset, objective, metric), group in curves.groupby(["dataset", "objective", "metric"], sort=False):
        sign = 1.0 if metrics[metric].better == "higher" else -1.0
        seeds = [seed_gain(c["step"].to_numpy(), pd.to_numeric(c["value"], errors="coerce").to_numpy(float), fraction)
                 for _, c in group.groupby("seed")]
        gains = np.array([sign * g for g, _, _ in seeds if math.isfinite(g)])
        windows = [(a, b) for g, a, b in seeds if math.isfinite(g)] or [(0, 0)]
        found.append((dataset, objective, metric, gains, max(windows, key=lambda w: w[1])))
    p = p_greater_than_zero([gains for *_, gains, _ in found])
    rows = [(d, o, m, float(gains.mean()) if len(gains) else math.nan, p_value, bool(p_value < alpha), len(gains),
             start, end) for (d, o, m, gains, (start, end)), p_value in zip(found, p)]
    return pd.DataFrame(rows, columns=IMPROVING_COLUMNS)


def p_greater_than_zero(samples: list[np.ndarray]) -> list[float]:
    """One-sided p-value that each sample's mean exceeds 0 (:func:`scipy.stats.ttest_1samp`, one
    call per sample size); NaN below two values; equal values (to rounding): 0 if positive, else 1."""
    p = [math.nan] * len(samples)
    by_size: dict[int, list[int]] = {}
    for i, sample in enumerate(samples):
        if len(sample) >= 2:
            by_size.setdefault(len(sample), []).append(i)
    for indices in by_size.values():
        stacked = np.stack([samples[i] for i in indices])
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rows of equal gains: decided below
            found = stats.ttest_1samp(stacked, 0.0, axis=1, alternative="greater").pvalue
        for i, row, value in zip(indices, stacked, np.atleast_1d(found)):
            equal = np.ptp(row) <= 1e-9 * np.abs(row).max()  # to rounding: no spread for a t-test to use
            p[i] = (0.0 if row.mean() > 0 else 1.0) if equal else float(value)
    return p
