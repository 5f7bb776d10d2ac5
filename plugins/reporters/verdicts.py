"""The ``verdicts`` reporter: ``plots/probability_of_improvement.png``, one figure per suite.

In the style of rliable (Agarwal et al. 2021): for every pair of objectives X, Y and every compared
metric, a horizontal bar from the low to the high end of the 95% bootstrap interval of
P(X better than Y) over training seeds, with a dot at the estimate. One panel per dataset; 0.5 (a
dashed line) means no difference. A filled dot marks a difference that is significant after Holm
correction, a hollow one a tie. The numbers are the run's ``comparisons`` (comparisons.csv).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from benchbench import Reporter, RunReport, comparisons, hookimpl, param

from . import figures
from .plots import save

FILE = Path("plots") / "probability_of_improvement.png"
ROW_INCHES = 0.24  # height of one (metric, pair) row


@dataclasses.dataclass(frozen=True)
class VerdictsConfig:
    metrics: tuple[str, ...] = param((), "metrics to plot, e.g. [jsd, modes_captured] (default: every compared metric)")
    dpi: int = param(110, "resolution of the PNG file (dots per inch)", ge=30, le=600)


class ImprovementPlot(Reporter):
    """Writes ``plots/probability_of_improvement.png`` (nothing when no two objectives were compared)."""

    name = "verdicts"
    Config = VerdictsConfig

    def report(self, run: RunReport, directory: Path) -> list[Path]:
        compared = run.comparisons if not run.comparisons.empty else comparisons(run.records, run.outputs)
        if self.config.metrics:
            compared = compared[compared["metric"].isin(self.config.metrics)]
        if compared.empty:
            return []
        path = Path(directory) / FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        return [save(improvement_figure(run.suite, compared), path, self.config.dpi)]


def improvement_figure(suite: str, compared: pd.DataFrame):
    """One panel per dataset, one row per (metric, pair): the interval of P(a better than b)."""
    datasets = list(dict.fromkeys(compared["dataset"]))
    from matplotlib import colormaps
    pairs = list(dict.fromkeys(zip(compared["objective_a"], compared["objective_b"])))
    colours = {pair: colormaps["tab10"](i % 10) for i, pair in enumerate(pairs)}
    rows = max(len(g) for _, g in compared.groupby("dataset"))
    figure, axes = figures.subplots(1, len(datasets), figsize=(4.2 * len(datasets) + 1.5, 1.4 + ROW_INCHES * rows),
                                squeeze=False, layout="constrained")
    for ax, dataset in zip(axes[0], datasets):
        found = compared[compared["dataset"] == dataset].reset_index(drop=True)
        y = range(len(found))[::-1]  # first row on top
        for row, position in zip(found.itertuples(), y):
            colour = colours[row.objective_a, row.objective_b]
            ax.plot([row.p_improve_low, row.p_improve_high], [position, position], color=colour, lw=4, alpha=0.6,
                    solid_capstyle="butt")
            ax.plot(row.p_improve, position, "o", ms=5, color=colour, mfc=colour if row.significant else "white")
        ax.axvline(0.5, color="grey", ls="--", lw=1)
        ax.set_yticks(list(y), [f"{r.metric}: {r.objective_a} vs {r.objective_b}" for r in found.itertuples()],
                      fontsize=7)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.7, rows - 0.3)
        ax.set_xlabel("P(first better than second)", fontsize=8)
        ax.set_title(dataset, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    figure.suptitle(f"{suite}: probability of improvement over seeds (bar: 95% bootstrap interval; "
                    f"filled: significant after Holm)", fontsize=9)
    return figure


@hookimpl
def benchbench_reporters():
    return [ImprovementPlot]
