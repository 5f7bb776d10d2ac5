"""A run read across compute: everything of a :class:`~benchbench.api.reporter.Frontier` from records
(with a ``rung`` column, or one rung), curves, the declared outputs and the suite's targets; and
the quality-vs-sampling-cost Pareto set of the top rung.

An objective is on the Pareto set of a (dataset, metric) when no other objective is at least as
good on the metric's centre (mean; IQM for heavy-tailed metrics) and at least as cheap in FLOPs per
generated sample, and strictly better on one of the two.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..api.outputs import Output
from ..api.reporter import REFERENCE, Frontier
from .improving import still_improving
from .rungs import crossovers, rung_flops, rung_verdicts, top_rung, with_rungs
from .rungs import ranks_by_rung as rank_rungs
from .targets import anytime, target_table, to_target, to_target_seeds
from .verdicts import comparable

SAMPLING_COLUMNS = ["dataset", "metric", "objective", "mean", "ci95_low", "ci95_high", "flops_per_sample", "nfe",
                    "pareto"]


def pareto_set(quality: np.ndarray, cost: np.ndarray, better: str) -> np.ndarray:
    """Which points are not dominated: no other point has quality at least as good and cost at most
    as high, one of them strictly. NaN points are never on the set."""
    q = np.where(better == "higher", 1.0, -1.0) * np.asarray(quality, float)  # higher is better now
    c = np.asarray(cost, float)
    ok = np.isfinite(q) & np.isfinite(c)
    found = np.zeros(len(q), bool)
    for i in np.flatnonzero(ok):
        others = ok & (np.arange(len(q)) != i)
        dominated = others & (q >= q[i]) & (c <= c[i]) & ((q > q[i]) | (c < c[i]))
        found[i] = not dominated.any()
    return found


def sampling(summary: pd.DataFrame, outputs: dict[str, Output]) -> pd.DataFrame:
    """One row per (dataset, compared metric, trained objective) of the top rung's ``summary``: the
    score with its interval, the mean FLOPs per sample and nfe, and whether it is on the Pareto set."""
    metrics = comparable(outputs)
    if summary.empty or "flops_per_sample" not in set(summary["metric"]):
        return pd.DataFrame(columns=SAMPLING_COLUMNS)
    trained = summary[summary["objective"] != REFERENCE]
    cost = trained.pivot_table(index=["dataset", "objective"], columns="metric", values="mean", aggfunc="first")
    rows = []
    for (dataset, metric), group in trained[trained["metric"].isin(list(metrics))].groupby(["dataset", "metric"],
                                                                                           sort=False):
        keys = list(zip(group["dataset"], group["objective"]))
        per_sample = np.array([cost.at[k, "flops_per_sample"] if k in cost.index else math.nan for k in keys])
        nfe = np.array([cost.at[k, "nfe"] if k in cost.index and "nfe" in cost else math.nan for k in keys])
        centre = group["iqm" if metrics[metric].heavy_tailed else "mean"].to_numpy(float)
        front = pareto_set(centre, per_sample, metrics[metric].better)
        rows += [(dataset, metric, o, m, lo, hi, c, e, bool(p)) for o, m, lo, hi, c, e, p in zip(
            group["objective"], group["mean"], group["ci95_low"], group["ci95_high"], per_sample, nfe, front)]
    return pd.DataFrame(rows, columns=SAMPLING_COLUMNS)


def mark_improving(summary: pd.DataFrame, improving: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with a bool ``still_improving`` column (False where no curve was judged)."""
    if improving.empty or summary.empty:
        return summary.assign(still_improving=False)
    marked = improving.loc[improving["improving"].astype(bool), ["dataset", "objective", "metric"]]
    keys = set(zip(marked["dataset"], marked["objective"], marked["metric"]))
    return summary.assign(still_improving=[k in keys for k in zip(summary["dataset"], summary["objective"],
                                                                  summary["metric"])])


def frontier(records: pd.DataFrame, curves: pd.DataFrame, outputs: dict[str, Output],
             targets: dict[str, float] | None = None, top: tuple[pd.DataFrame, pd.DataFrame] | None = None,
             seed: int = 0) -> Frontier:
    """The :class:`Frontier` of a run. ``top``: the run's own (summary, comparisons), computed on its
    top rung, reused for that rung; ``targets``: the suite's, metric -> value."""
    records = with_rungs(records)
    by_rung, compared = rung_verdicts(records, outputs, seed, top)
    top_summary = top[0] if top is not None else top_rung(by_rung)
    table = target_table(by_rung, outputs, targets)
    seeds = to_target_seeds(records, outputs, table)
    return Frontier(
        by_rung=by_rung, comparisons=compared, ranks=rank_rungs(by_rung, outputs),
        crossovers=crossovers(compared, rung_flops(records)), targets=table, to_target=to_target(seeds, table),
        to_target_seeds=seeds, anytime=anytime(records, outputs), improving=still_improving(curves, outputs),
        sampling=sampling(top_summary.drop(columns="train_flops", errors="ignore"), outputs))


def frontier_tables(found: Frontier) -> dict[str, pd.DataFrame]:
    """File name -> table of a run's :class:`Frontier` as ``benchbench report`` writes it: those that
    apply (the per-rung verdicts only with more than one rung)."""
    tables = {"to_target.csv": found.to_target, "to_target_seeds.csv": found.to_target_seeds,
              "improving.csv": found.improving, "sampling.csv": found.sampling, "anytime.csv": found.anytime}
    if found.rungs > 1:
        tables.update({"rung_summary.csv": found.by_rung, "rung_comparisons.csv": found.comparisons,
                       "rung_ranks.csv": found.ranks, "crossovers.csv": found.crossovers})
    return {name: frame for name, frame in tables.items() if not frame.empty}
