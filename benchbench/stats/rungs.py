"""Verdicts at every rung of a budget ladder, the ranks by rung, and crossovers.

Records may carry an int ``rung`` (0-based; the top rung is the largest), one record set per rung
per seed, each with the ``train_flops`` spent by that rung; records without the column are one rung 0.
The verdicts of each rung are those of a single run (:func:`benchbench.stats.summary.summarize`,
:func:`benchbench.stats.verdicts.comparisons`) on that rung's records: Holm within each (dataset,
metric, rung).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..api.outputs import Output
from ..api.reporter import REFERENCE
from .summary import summarize
from .verdicts import comparable, comparisons

RUNG_FLOPS = "train_flops"  # the record every rung carries: training FLOPs per model so far
RANK_BY_RUNG_COLUMNS = ["dataset", "metric", "rung", "train_flops", "objective", "rank", "verdict"]
CROSSOVER_COLUMNS = ["dataset", "metric", "objective_a", "objective_b", "rung_before", "flops_before",
                     "winner_before", "rung_after", "flops_after", "winner_after"]


def with_rungs(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with an int ``rung`` column (0 where it has none)."""
    if "rung" in frame:
        return frame.assign(rung=frame["rung"].fillna(0).astype(int))
    return frame.assign(rung=0)


def top_rung(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the top rung, without the ``rung`` column (what single-budget code reads)."""
    frame = with_rungs(frame)
    if frame.empty:
        return frame.drop(columns="rung")
    return frame[frame["rung"] == frame["rung"].max()].drop(columns="rung")


def rung_flops(records: pd.DataFrame) -> pd.DataFrame:
    """dataset, objective, rung, train_flops: the median over seeds of the training FLOPs per model
    at each rung (objectives without the record are left out)."""
    records = with_rungs(records)
    found = records[records["metric"] == RUNG_FLOPS].assign(value=lambda f: pd.to_numeric(f["value"], "coerce"))
    found = found[np.isfinite(found["value"].to_numpy(float))]
    if found.empty:
        return pd.DataFrame(columns=["dataset", "objective", "rung", "train_flops"])
    median = found.groupby(["dataset", "objective", "rung"], sort=False)["value"].median()
    return median.rename("train_flops").reset_index()


def rung_verdicts(records: pd.DataFrame, outputs: dict[str, Output], seed: int = 0,
                  top: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, comparisons) of every rung, each with a ``rung`` column and the summary with
    ``train_flops`` (the objective's median at that rung; NaN without the record). ``top``: the
    (summary, comparisons) of the top rung already computed (the run's own), reused as they are."""
    records = with_rungs(records)
    flops = rung_flops(records)
    rungs = sorted(records["rung"].unique()) if not records.empty else []
    summaries, compared = [], []
    for rung in rungs:
        at = records[records["rung"] == rung].drop(columns="rung")
        if top is not None and rung == rungs[-1]:
            summary, pairs = top
        else:
            pairs = comparisons(at, outputs, seed=seed)
            summary = summarize(at, outputs, pairs, seed)
        summaries.append(summary.assign(rung=rung))
        compared.append(pairs.assign(rung=rung))
    if not summaries:
        return pd.DataFrame(), pd.DataFrame()
    summary = pd.concat(summaries, ignore_index=True).merge(flops, on=["dataset", "objective", "rung"], how="left")
    return summary, pd.concat([c for c in compared if not c.empty] or [compared[0]], ignore_index=True)


def ranks_by_rung(by_rung: pd.DataFrame, outputs: dict[str, Output]) -> pd.DataFrame:
    """Each objective's rank (1 = best centre: the mean, the IQM for heavy-tailed metrics; ties
    share the lowest rank) and verdict, per (dataset, metric, rung) of a :func:`rung_verdicts`
    summary; ``train_flops`` is the rung's median over objectives."""
    metrics = comparable(outputs)
    if by_rung.empty:
        return pd.DataFrame(columns=RANK_BY_RUNG_COLUMNS)
    rows = by_rung[by_rung["metric"].isin(list(metrics)) & (by_rung["objective"] != REFERENCE)]
    found = []
    for (dataset, metric, rung), group in rows.groupby(["dataset", "metric", "rung"], sort=False):
        output = metrics[metric]
        centre = group["iqm" if output.heavy_tailed else "mean"].astype(float).to_numpy()
        ok = np.isfinite(centre)
        if not ok.any():
            continue
        sign = -1.0 if output.better == "higher" else 1.0
        rank = stats.rankdata(sign * centre[ok], method="min")
        flops = float(group["train_flops"].median()) if "train_flops" in group else math.nan
        found += [(dataset, metric, int(rung), flops, o, int(r), v)
                  for o, r, v in zip(group["objective"][ok], rank, group["verdict"][ok])]
    return pd.DataFrame(found, columns=RANK_BY_RUNG_COLUMNS)


def crossovers(compared: pd.DataFrame, flops: pd.DataFrame | None = None) -> pd.DataFrame:
    """Pairs whose significant order flips between two rungs: for each (dataset, metric, pair), every
    change of winner between one rung where the pair differs significantly (Holm within its rung)
    and the next such rung (rungs with a tie between them are passed over). ``flops`` (from
    :func:`rung_flops`) gives each rung's median training FLOPs over the pair."""
    if compared.empty or "rung" not in compared:
        return pd.DataFrame(columns=CROSSOVER_COLUMNS)
    cost = {} if flops is None or flops.empty else {
        (d, o, r): f for d, o, r, f in zip(flops["dataset"], flops["objective"], flops["rung"], flops["train_flops"])}
    significant = compared[compared["significant"].astype(bool)].sort_values("rung", kind="stable")
    rows = []
    for (dataset, metric, a, b), group in significant.groupby(["dataset", "metric", "objective_a", "objective_b"],
                                                              sort=False):
        steps = list(zip(group["rung"].astype(int), group["winner"]))
        for (before, first), (after, second) in zip(steps, steps[1:]):
            if first != second:
                rows.append((dataset, metric, a, b, before, _pair_flops(cost, dataset, a, b, before), first, after,
                             _pair_flops(cost, dataset, a, b, after), second))
    return pd.DataFrame(rows, columns=CROSSOVER_COLUMNS)


def _pair_flops(cost: dict, dataset: str, a: str, b: str, rung: int) -> float:
    values = [cost[k] for k in ((dataset, a, rung), (dataset, b, rung)) if k in cost]
    return float(np.median(values)) if values else math.nan
