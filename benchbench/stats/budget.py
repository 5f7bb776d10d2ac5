"""What a search budget buys: the expected best score of b trials, b = 1..N (Dodge et al. 2019,
"Show Your Work"), with a 95% bootstrap interval over the trials (the ``plots`` reporter draws it,
one figure per dataset, one curve per objective, as in Lucic et al. 2018's figures).

Without replacement, exactly: with the N trial scores sorted from worst v_(1) to best v_(N), the
expected best of b trials drawn without replacement is sum_i v_(i) C(i-1, b-1) / C(N, b).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

BUDGET_COLUMNS = ["dataset", "objective", "budget", "expected_best", "ci95_low", "ci95_high", "trials", "metric"]
RESAMPLES = 2000


def budget_weights(n: int, budget: int) -> np.ndarray:
    """w_i = C(i-1, b-1) / C(n, b) for i = 1..n: the chance that the i-th worst of n is the best of
    a random subset of ``budget`` (they sum to 1). Exact integer binomials, one rounding each."""
    assert 1 <= budget <= n, (budget, n)
    total = math.comb(n, budget)
    return np.array([math.comb(i - 1, budget - 1) / total for i in range(1, n + 1)])


def expected_best(values, budget: int, better: str = "higher", axis: int = -1) -> np.ndarray | float:
    """Expected best of ``budget`` values drawn without replacement from ``values`` (along ``axis``);
    ``better`` says whether the best is the highest or the lowest."""
    values = np.asarray(values, dtype=float)
    ordered = np.sort(values, axis=axis)  # ascending: worst first when higher is better
    if better == "lower":
        ordered = np.flip(ordered, axis=axis)
    weights = budget_weights(values.shape[axis], budget)
    return np.tensordot(np.moveaxis(ordered, axis, -1), weights, axes=([-1], [0]))


def budget_curve(values, better: str, resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """budget, expected_best, ci95_low, ci95_high for b = 1..N over the finite ``values``; the
    interval is scipy's percentile bootstrap over the trials (NaN with fewer than 2 distinct values)."""
    values = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    rows = []
    for b in range(1, len(values) + 1):
        point = float(expected_best(values, b, better))
        low = high = math.nan
        if len(np.unique(values)) > 1:
            ci = stats.bootstrap((values,), lambda x, axis: expected_best(x, b, better, axis), vectorized=True,
                                 n_resamples=resamples, method="percentile", confidence_level=0.95,
                                 rng=np.random.default_rng(seed)).confidence_interval
            low, high = float(ci.low), float(ci.high)
        rows.append((b, point, low, high))
    return pd.DataFrame(rows, columns=["budget", "expected_best", "ci95_low", "ci95_high"])


def budget_frame(scores: pd.DataFrame, metric: str, better: str) -> pd.DataFrame:
    """``budget.csv`` from per-trial scores (dataset, objective, trial, score): a curve per
    (dataset, objective) over its trials with a finite score (``trials`` says how many)."""
    frames = []
    for (dataset, objective), group in scores.groupby(["dataset", "objective"], sort=False):
        curve = budget_curve(group["score"].tolist(), better)
        frames.append(curve.assign(dataset=dataset, objective=objective, trials=len(curve), metric=metric))
    return pd.concat(frames, ignore_index=True)[BUDGET_COLUMNS] if frames else pd.DataFrame(columns=BUDGET_COLUMNS)
