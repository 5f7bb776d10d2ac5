"""The figures of a run across compute (the ``plots`` reporter writes them, ``html`` embeds them),
from the run's :class:`~benchbench.api.reporter.Frontier`:

- ``compute_<dataset>.png``: quality against training FLOPs per model, one panel per compared
  metric, one line per objective through its rungs (mean over seeds, band: 95% CI), log x; the
  ``(data)`` reference dotted and the metric's target (``targets:``, or twice the reference for a
  divergence) dashed. A single budget draws one point per objective.
- ``sampling_<dataset>.png``: quality at the top rung against the sampling cost (FLOPs per generated
  sample, labelled with its network evaluations), the Pareto set (no other objective both better
  and cheaper) filled and joined by a step line, the others hollow.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import figures
from benchbench import REFERENCE, Output

FRONTIER_GROUPS = ("quality", "divergence")  # the metrics drawn against compute
COLUMNS = 4  # panels per row


def frontier_metrics(frame: pd.DataFrame, outputs: dict[str, Output], chosen: tuple[str, ...] = ()) -> list[str]:
    """The metrics of ``frame`` drawn against compute: ``chosen`` (those present), or every metric
    with a direction in the quality and divergence groups, in declaration order."""
    present = set(frame["metric"]) if not frame.empty else set()
    if chosen:
        return [m for m in chosen if m in present]
    return [m for m in outputs if m in present and outputs[m].better in ("higher", "lower")
            and outputs[m].group in FRONTIER_GROUPS and outputs[m].scope == "cell"]


def _panels(count: int, width: float = 3.3, height: float = 2.6):
    columns = min(COLUMNS, count)
    rows = math.ceil(count / columns)
    figure, axes = figures.subplots(rows, columns, figsize=(width * columns + 1.8, height * rows + 0.6),
                                layout="constrained", squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return figure, axes.flat


def log_axis(ax, values: np.ndarray) -> None:
    """A log x axis over the positive ``values``, at least 1.2 decades wide (so a power of ten is
    labelled) and labelled at powers of ten only (minor labels would overlap)."""
    from matplotlib.ticker import NullFormatter
    values = values[np.isfinite(values) & (values > 0)]
    ax.set_xscale("log")
    if not len(values):
        return
    low, high = np.log10(values.min()), np.log10(values.max())
    pad = max(0.15 * (high - low), (1.2 - (high - low)) / 2, 0.0)
    ax.set_xlim(10 ** (low - pad), 10 ** (high + pad))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _direction(metric: str, outputs: dict[str, Output]) -> str:
    better = outputs[metric].better if metric in outputs else "none"
    return {"lower": f"{metric} ↓", "higher": f"{metric} ↑"}.get(better, metric)


def compute_figure(title: str, by_rung: pd.DataFrame, outputs: dict[str, Output], metrics: list[str],
                   targets: pd.DataFrame | None = None):
    """Quality vs training FLOPs per model for one dataset's rows of ``Frontier.by_rung``."""
    objectives = list(dict.fromkeys(o for o in by_rung["objective"] if o != REFERENCE))
    colors = {o: f"C{i % 10}" for i, o in enumerate(objectives)}
    figure, axes = _panels(len(metrics))
    target_of = {} if targets is None or targets.empty else dict(zip(targets["metric"], targets["target"]))
    shown_target = shown_reference = False
    rungs = by_rung["rung"].nunique() if "rung" in by_rung else 1
    for ax, metric in zip(axes, metrics):
        rows = by_rung[by_rung["metric"] == metric]
        for objective in objectives:
            line = rows[(rows["objective"] == objective) & np.isfinite(rows["train_flops"].astype(float))]
            line = line.sort_values("train_flops")
            if line.empty:
                continue
            x, y = line["train_flops"].astype(float), line["mean"].astype(float)
            ax.plot(x, y, "-o", color=colors[objective], markersize=3.5, linewidth=1.3)
            if rungs > 1:
                ax.fill_between(x, line["ci95_low"].astype(float), line["ci95_high"].astype(float),
                                color=colors[objective], alpha=0.18, linewidth=0)
            else:
                ax.errorbar(x, y, yerr=[y - line["ci95_low"].astype(float), line["ci95_high"].astype(float) - y],
                            fmt="none", ecolor=colors[objective], capsize=3)
        reference = rows.loc[rows["objective"] == REFERENCE, "mean"].astype(float)
        reference = reference[np.isfinite(reference)]
        if len(reference):
            ax.axhline(float(reference.iloc[-1]), color="grey", linestyle=":", linewidth=1.2)
            shown_reference = True
        if metric in target_of:
            ax.axhline(target_of[metric], color="black", linestyle="--", linewidth=0.8, alpha=0.6)
            shown_target = True
        log_axis(ax, rows["train_flops"].to_numpy(float))
        ax.set_title(_direction(metric, outputs), fontsize=9)
        ax.set_xlabel("training FLOPs per model", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, linewidth=0.5, which="both")
    handles = [figures.line(color=colors[o], marker="o", markersize=3.5, label=o) for o in objectives]
    if shown_reference:
        handles.append(figures.line(color="grey", linestyle=":", label=f"{REFERENCE} reference"))
    if shown_target:
        handles.append(figures.line(color="black", linestyle="--", alpha=0.6, label="target"))
    figure.legend(handles=handles, loc="outside right upper", fontsize=8, title="objective", title_fontsize=8)
    what = "at each budget rung" if rungs > 1 else "at the one budget of this run"
    figure.suptitle(f"{title}: score against training compute {what}\n(mean over seeds, "
                    f"{'band' if rungs > 1 else 'bar'}: 95% CI)", fontsize=10)
    return figure


def sampling_figure(title: str, sampling: pd.DataFrame, outputs: dict[str, Output], metrics: list[str]):
    """Score at the top rung vs FLOPs per generated sample for one dataset's rows of
    ``Frontier.sampling``: the Pareto set filled and joined, the others hollow."""
    objectives = list(dict.fromkeys(sampling["objective"]))
    colors = {o: f"C{i % 10}" for i, o in enumerate(objectives)}
    figure, axes = _panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        rows = sampling[(sampling["metric"] == metric) & np.isfinite(sampling["flops_per_sample"].astype(float))]
        labelled = set()
        for row in rows.itertuples():
            error = [[row.mean - row.ci95_low], [row.ci95_high - row.mean]] if math.isfinite(row.ci95_low) else None
            ax.errorbar([row.flops_per_sample], [row.mean], yerr=error, fmt="o", color=colors[row.objective],
                        mfc=colors[row.objective] if row.pareto else "white", capsize=2, markersize=5)
            if math.isfinite(row.nfe) and (f"{row.flops_per_sample:.3g}", row.nfe) not in labelled:
                labelled.add((f"{row.flops_per_sample:.3g}", row.nfe))  # one label per sampler cost
                ax.annotate(f"nfe {row.nfe:g}", (row.flops_per_sample, 0.02), xycoords=("data", "axes fraction"),
                            xytext=(4, 0), textcoords="offset points", fontsize=7, color="dimgrey")
        front = rows[rows["pareto"].astype(bool)].sort_values("flops_per_sample")
        if len(front) > 1:
            ax.plot(front["flops_per_sample"], front["mean"], drawstyle="steps-post", color="black", linewidth=0.8,
                    alpha=0.5)
        log_axis(ax, rows["flops_per_sample"].to_numpy(float))
        ax.set_title(_direction(metric, outputs), fontsize=9)
        ax.set_xlabel("sampling FLOPs per sample", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, linewidth=0.5, which="both")
    handles = [figures.line(color=colors[o], marker="o", linestyle="", label=o) for o in objectives]
    handles += [figures.line(color="black", marker="o", linestyle="-", alpha=0.7, label="Pareto set"),
               figures.line(color="black", marker="o", mfc="white", linestyle="",
                          label="dominated (another is\nboth better and cheaper)")]
    figure.legend(handles=handles, loc="outside right upper", fontsize=8, title="objective", title_fontsize=8)
    figure.suptitle(f"{title}: score at the top budget rung against sampling cost\n(mean, 95% CI over seeds; "
                    f"filled and joined: the Pareto set)", fontsize=10)
    return figure
