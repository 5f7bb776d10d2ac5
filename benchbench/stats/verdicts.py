"""Verdicts over training seeds: which objective is better, and whether the seeds can tell.

Pure functions on arrays and long-format records (dataset, objective, seed, metric, value):

- :func:`compare_samples`: difference of means and probability of improvement P(X better than Y)
  (the Mann-Whitney U statistic over n m, rliable's "probability of improvement"), each with a
  seeded percentile-bootstrap interval, and a p-value (Mann-Whitney U, or Welch's t);
- :func:`holm`: Holm's step-down adjustment of a family of p-values;
- :func:`comparisons`: every pair of objectives per (dataset, metric), Holm within each family;
- :func:`robust`: median and interquartile mean (IQM) with percentile-bootstrap intervals;
- :func:`ranks`: per metric, each objective's mean rank over datasets, seeds resampled within cells;

Statistics come from scipy.stats (bootstrap, mannwhitneyu, ttest_ind, trim_mean, rankdata). The
bootstraps are vectorized: the comparisons of one sample size run as one batch.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from ..api.outputs import Output, job_scoped
from ..api.reporter import REFERENCE

TESTS = ("mannwhitneyu", "welch")
RESAMPLES = 2000  # bootstrap resamples; percentile intervals at 95% are stable to ~1% of their width
BATCH = 500  # resamples per vectorized call: bounds memory when many pairs are batched
COMPARISON_COLUMNS = ["dataset", "metric", "objective_a", "objective_b", "n_a", "n_b", "diff", "diff_low",
                      "diff_high", "p_improve", "p_improve_low", "p_improve_high", "p_value", "p_holm",
                      "significant", "winner", "can_reach"]
RANK_COLUMNS = ["metric", "objective", "rank", "rank_low", "rank_high", "datasets"]
ROBUST_COLUMNS = ["median", "median_low", "median_high", "iqm", "iqm_low", "iqm_high"]
TIE = "~"  # benchstat's mark for a difference the test does not support
TEST, ALPHA = "mannwhitneyu", 0.05  # what runs use
TEST_NAMES = {"mannwhitneyu": "two-sided Mann-Whitney U", "welch": "two-sided Welch's t"}


@dataclasses.dataclass
class Verdicts:
    """What a run concludes: pairwise ``comparisons`` (comparisons.csv), ``ranks`` across datasets
    (ranks.csv) and the ``summary`` with robust aggregates and tied-best marks (summary.csv)."""

    comparisons: pd.DataFrame
    ranks: pd.DataFrame
    summary: pd.DataFrame


def compare_samples(x, y, better: str, test: str = TEST, seed: int = 0,
                    level: float = 0.95) -> dict[str, float]:
    """Compare two samples of one metric (e.g. over training seeds) where ``better`` is "higher" or
    "lower": ``diff`` = mean(x) - mean(y) with a percentile-bootstrap interval, ``p_improve`` =
    P(x better than y) (ties count half; 0.5 for identical samples) with its interval, and the
    two-sided ``p_value`` of ``test`` ("mannwhitneyu" or "welch"; 1 when the samples cannot differ)."""
    return _compare_batch(np.asarray(x, float)[None], np.asarray(y, float)[None], better, test, seed, level)[0]


def _compare_batch(x: np.ndarray, y: np.ndarray, better, test: str, seed: int, level: float) -> list[dict]:
    """:func:`compare_samples` for k pairs at once: ``x`` [k, n], ``y`` [k, m]; ``better`` one
    direction or k of them."""
    _check(test, better)
    sign = np.where(np.asarray(better) == "lower", -1.0, 1.0) * np.ones(len(x))
    diff = x.mean(-1) - y.mean(-1)
    improve = np.where(sign > 0, _p_greater(x, y), 1 - _p_greater(x, y))
    diff_low, diff_high = difference_interval(x, y, seed, level)
    greater_low, greater_high = _pair_interval(x, y, _p_greater, seed, level)
    improve_low = np.where(sign > 0, greater_low, 1 - greater_high)
    improve_high = np.where(sign > 0, greater_high, 1 - greater_low)
    p = np.array([p_value(a, b, test) for a, b in zip(x, y)])
    return [dict(diff=float(d), diff_low=float(dl), diff_high=float(dh), p_improve=float(i),
                 p_improve_low=float(il), p_improve_high=float(ih), p_value=float(pv))
            for d, dl, dh, i, il, ih, pv in zip(diff, diff_low, diff_high, improve, improve_low, improve_high, p)]


def _p_greater(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 over all pairs, along ``axis`` (= Mann-Whitney U1 / (n m))."""
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    d = x[..., :, None] - y[..., None, :]
    return ((d > 0) + 0.5 * (d == 0)).mean((-2, -1))


def difference_interval(x, y, seed: int = 0, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap interval of mean(x) - mean(y) along the last axis (leading axes are a
    batch of independent pairs); NaN when either sample has fewer than two values."""
    return _pair_interval(np.asarray(x, float), np.asarray(y, float), _mean_difference, seed, level)


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return x.mean(axis) - y.mean(axis)


def _pair_interval(x: np.ndarray, y: np.ndarray, statistic, seed: int, level: float):
    """Percentile-bootstrap interval of ``statistic(x, y, axis=-1)``, batched over leading axes."""
    if x.shape[-1] < 2 or y.shape[-1] < 2:
        return np.full(x.shape[:-1], math.nan), np.full(x.shape[:-1], math.nan)
    result = stats.bootstrap((x, y), statistic, vectorized=True, axis=-1, n_resamples=RESAMPLES, batch=BATCH,
                             confidence_level=level, method="percentile", rng=np.random.default_rng(seed))
    return result.confidence_interval.low, result.confidence_interval.high


def p_value(x, y, test: str = TEST) -> float:
    """Two-sided p-value of ``test`` for x and y differing; 1 when they cannot (all values equal)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) == 0 or len(y) == 0:
        return math.nan
    if np.ptp(np.concatenate([x, y])) == 0:
        return 1.0
    if test == "welch":
        if len(x) < 2 or len(y) < 2:
            return math.nan
        p = stats.ttest_ind(x, y, equal_var=False).pvalue
        return 1.0 if math.isnan(p) else float(p)  # both samples constant but different: NaN
    return float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)


def min_p_value(n: int, m: int, test: str = TEST) -> float:
    """The smallest two-sided p-value ``test`` can give with n and m values: 2 / C(n + m, n) for the
    exact Mann-Whitney test (n = m = 3: 0.1); 0 for Welch's t once both have two values."""
    if test == "welch":
        return 0.0 if min(n, m) >= 2 else 1.0
    return min(1.0, 2 / math.comb(n + m, n)) if min(n, m) >= 1 else 1.0


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order: with p sorted ascending,
    adjusted p_(k) = max over j <= k of min(1, (m - j + 1) p_(j)). NaN stays NaN and is not counted."""
    p = np.asarray(p_values, float)
    adjusted = np.full(p.shape, math.nan)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    adjusted[order] = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    return adjusted


def robust(values, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Median and interquartile mean (scipy's trim_mean at 0.25) of ``values``, each with a
    percentile-bootstrap interval (NaN bounds with fewer than two values)."""
    return _robust_batch(np.asarray(values, float)[None], seed, level)[0]


def _robust_batch(values: np.ndarray, seed: int, level: float) -> list[dict]:
    """:func:`robust` for k samples of one size at once: ``values`` [k, n]."""
    point = np.stack([np.median(values, -1), stats.trim_mean(values, 0.25, axis=-1)])
    if values.shape[-1] > 1:
        result = stats.bootstrap((values,), _median_and_iqm, vectorized=True, axis=-1, n_resamples=RESAMPLES,
                                 batch=BATCH, confidence_level=level, method="percentile",
                                 rng=np.random.default_rng(seed))
        low, high = result.confidence_interval
    else:
        low = high = np.full(point.shape, math.nan)
    return [dict(zip(ROBUST_COLUMNS, map(float, (point[0, i], low[0, i], high[0, i],
                                                   point[1, i], low[1, i], high[1, i]))))
            for i in range(len(values))]


def _median_and_iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.stack([np.median(x, axis=axis), stats.trim_mean(x, 0.25, axis=axis)])


def comparable(outputs: dict[str, Output]) -> dict[str, Output]:
    """The outputs objectives are compared on: a direction, per cell (not per job), averaged."""
    return {name: o for name, o in outputs.items()
            if o.better in ("higher", "lower") and o.scope == "cell" and o.summary == "mean"}


def usable(records: pd.DataFrame, outputs: dict[str, Output]) -> pd.Series:
    """Which records hold a score: a finite value within its output's declared range (plus
    tolerance). Runs record out-of-range values as missing already; this also drops them from run
    directories written before outputs declared ranges."""
    values = pd.to_numeric(records["value"], errors="coerce")
    finite = pd.Series(np.isfinite(values.to_numpy(float)), index=records.index)
    ranged = {name: o for name, o in outputs.items() if o.range is not None}
    if not ranged or records.empty:
        return finite
    failed = [m in ranged and ok and ranged[m].out_of_range(float(v)) is not None
              for m, v, ok in zip(records["metric"], values, finite)]
    return finite & ~pd.Series(failed, index=records.index, dtype=bool)


def seed_values(records: pd.DataFrame, outputs: dict[str, Output]) -> pd.DataFrame:
    """Finite values of the comparable outputs, without the reference row: dataset, objective,
    metric, value (one per seed), in the records' order of objectives."""
    if records.empty:
        return pd.DataFrame(columns=["dataset", "objective", "metric", "seed", "value"])
    metrics = comparable(outputs)
    values = pd.to_numeric(records["value"], errors="coerce")
    keep = records["metric"].isin(list(metrics)) & (records["objective"] != REFERENCE) & usable(records, outputs)
    return records.loc[keep, ["dataset", "objective", "metric", "seed"]].assign(value=values[keep].astype(float))


def comparisons(records: pd.DataFrame, outputs: dict[str, Output], test: str = TEST,
                alpha: float = ALPHA, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """One row per (dataset, metric, objective_a, objective_b) over training seeds; see
    :data:`COMPARISON_COLUMNS`. ``p_holm`` is Holm-adjusted within each (dataset, metric);
    ``significant`` is p_holm < alpha; ``winner`` names the better objective, or "~" for a tie;
    ``can_reach`` says whether ``test`` with these n could reach significance at all after Holm."""
    _check(test)
    values = seed_values(records, outputs)
    pairs = []  # (dataset, metric, a, b, x, y)
    for (dataset, metric), group in values.groupby(["dataset", "metric"], sort=False):
        samples = {o: g["value"].to_numpy() for o, g in group.groupby("objective", sort=False)}
        pairs += [(dataset, metric, a, b, samples[a], samples[b]) for a, b in itertools.combinations(samples, 2)]
    if not pairs:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    rows: list[dict | None] = [None] * len(pairs)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, (*_, x, y) in enumerate(pairs):
        by_size.setdefault((len(x), len(y)), []).append(i)
    for indices in by_size.values():
        x = np.stack([pairs[i][4] for i in indices])
        y = np.stack([pairs[i][5] for i in indices])
        better = [outputs[pairs[i][1]].better for i in indices]
        for i, found in zip(indices, _compare_batch(x, y, better, test, seed, level)):
            rows[i] = found
    frame = pd.DataFrame([dict(dataset=d, metric=m, objective_a=a, objective_b=b, n_a=len(x), n_b=len(y), **r)
                          for (d, m, a, b, x, y), r in zip(pairs, rows)])
    family = frame.groupby(["dataset", "metric"], sort=False)
    frame["p_holm"] = family["p_value"].transform(holm)
    frame["significant"] = frame["p_holm"] < alpha
    a_better = frame["p_improve"] > 0.5 if test == "mannwhitneyu" else (
        frame["diff"] * frame["metric"].map(lambda m: -1 if outputs[m].better == "lower" else 1) > 0)
    frame["winner"] = np.where(~frame["significant"], TIE, np.where(a_better, frame["objective_a"],
                                                                      frame["objective_b"]))
    size = family["p_value"].transform("size")
    reachable = [min_p_value(n, m, test) * k < alpha for n, m, k in zip(frame["n_a"], frame["n_b"], size)]
    frame["can_reach"] = reachable
    return frame[COMPARISON_COLUMNS]


def with_verdicts(summary: pd.DataFrame, records: pd.DataFrame, outputs: dict[str, Output],
                  compared: pd.DataFrame, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """``summary`` with :data:`ROBUST_COLUMNS`, ``tied_best`` (not significantly worse than the best
    objective after Holm; False where not comparable) and ``verdict``: "best", "tied" (with the
    best), "worse", "underpowered" (these n cannot reach significance) or "" (not compared). The
    best objective has the best mean, or the best IQM for heavy-tailed metrics."""
    summary = summary.copy()
    for column in ROBUST_COLUMNS:
        summary[column] = math.nan
    summary["tied_best"] = False
    summary["verdict"] = ""
    if summary.empty or records.empty:
        return summary
    values = pd.to_numeric(records["value"], errors="coerce")
    finite = records.assign(value=values)[usable(records, outputs)]
    finite = finite[~finite["metric"].isin(job_scoped(outputs))]
    samples = {key: g["value"].to_numpy(float) for key, g in finite.groupby(["dataset", "objective", "metric"])}
    index = {key: i for i, key in enumerate(zip(summary["dataset"], summary["objective"], summary["metric"]))}
    by_size: dict[int, list[tuple]] = {}
    for key, sample in samples.items():
        if key in index and not (key[2] in outputs and outputs[key[2]].summary == "sum"):
            by_size.setdefault(len(sample), []).append(key)
    for n, keys in by_size.items():
        found = _robust_batch(np.stack([samples[k] for k in keys]), seed, level)
        rows = [index[k] for k in keys]
        for column in ROBUST_COLUMNS:
            summary.iloc[rows, summary.columns.get_loc(column)] = [f[column] for f in found]
    _mark_tied_best(summary, outputs, compared)
    return summary


def _mark_tied_best(summary: pd.DataFrame, outputs: dict[str, Output], compared: pd.DataFrame) -> None:
    metrics = comparable(outputs)
    pairs = {} if compared.empty else {
        (d, m, frozenset((a, b))): (significant, winner, reach) for d, m, a, b, significant, winner, reach in zip(
            compared["dataset"], compared["metric"], compared["objective_a"], compared["objective_b"],
            compared["significant"], compared["winner"], compared["can_reach"])}
    candidates = summary[summary["metric"].isin(list(metrics)) & (summary["objective"] != REFERENCE)
                         & summary["mean"].notna()]
    tied_best, verdicts = summary["tied_best"].to_numpy(copy=True), summary["verdict"].to_numpy(copy=True)
    for (dataset, metric), group in candidates.groupby(["dataset", "metric"], sort=False):
        output = metrics[metric]
        centre = group["iqm" if output.heavy_tailed else "mean"].astype(float)
        best = group.loc[centre.idxmax() if output.better == "higher" else centre.idxmin(), "objective"]
        found = {}
        for position, objective in zip(summary.index.get_indexer(group.index), group["objective"]):
            if objective == best:
                found[position] = "best"
            elif (pair := pairs.get((dataset, metric, frozenset((best, objective))))) is not None:
                significant, winner, reach = pair
                found[position] = "worse" if significant and winner == best else ("tied" if reach else "underpowered")
        others = [v for v in found.values() if v != "best"]
        if others and all(v == "underpowered" for v in others):  # nothing could have dethroned the best
            found = {k: "underpowered" for k in found}
        for position, verdict in found.items():
            verdicts[position], tied_best[position] = verdict, verdict != "worse"
    summary["tied_best"], summary["verdict"] = tied_best, verdicts


def ranks(records: pd.DataFrame, outputs: dict[str, Output], seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per metric, each objective's mean rank over datasets (1 = best; ties share the average
    rank) with a percentile-bootstrap interval that resamples seeds within each (dataset, objective).
    Only datasets where every objective has a value for the metric count (``datasets``)."""
    values = seed_values(records, outputs)
    rows = []
    for metric, by_metric in values.groupby("metric", sort=False):
        objectives = list(dict.fromkeys(by_metric["objective"]))
        datasets = [d for d, g in by_metric.groupby("dataset", sort=False)
                    if g["objective"].nunique() == len(objectives)]
        if not datasets or len(objectives) < 2:
            continue
        cells = [by_metric.loc[(by_metric["dataset"] == d) & (by_metric["objective"] == o), "value"].to_numpy()
                 for d in datasets for o in objectives]
        sign = -1.0 if outputs[metric].better == "higher" else 1.0
        mean_rank = functools.partial(_mean_rank, sign=sign, shape=(len(datasets), len(objectives)))
        point = mean_rank(*cells)
        if all(len(c) > 1 for c in cells):
            result = stats.bootstrap(cells, mean_rank, vectorized=True, axis=-1, n_resamples=RESAMPLES,
                                     batch=BATCH, confidence_level=level, method="percentile",
                                     rng=np.random.default_rng(seed))
            low, high = result.confidence_interval
        else:
            low = high = np.full(len(objectives), math.nan)
        rows += [(metric, o, float(point[i]), float(low[i]), float(high[i]), len(datasets))
                 for i, o in enumerate(objectives)]
    return pd.DataFrame(rows, columns=RANK_COLUMNS)


def _mean_rank(*samples: np.ndarray, sign: float, shape: tuple[int, int], axis: int = -1) -> np.ndarray:
    """Mean over datasets of each objective's rank (1 = best) from per-cell samples ordered dataset by
    dataset, objective by objective; [objectives, *batch]."""
    means = np.stack([sign * s.mean(axis) for s in samples], -1)  # [*batch, datasets * objectives]
    ranked = stats.rankdata(means.reshape(*means.shape[:-1], *shape), axis=-1).mean(-2)  # [*batch, objectives]
    return np.moveaxis(ranked, -1, 0)


def _check(test: str, better=None) -> None:
    assert test in TESTS, f"test must be one of {TESTS}, got {test!r}"
    if better is not None:
        assert set(np.atleast_1d(better)) <= {"higher", "lower"}, f"better must be higher or lower, got {better!r}"
