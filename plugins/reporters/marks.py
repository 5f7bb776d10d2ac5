"""Which cells of a summary table are marked (bold), shared by the HTML and LaTeX reporters.

When the summary has a ``tied_best`` column (the significance marking of the verdicts: the best
objective and every objective not significantly worse than it), that column decides. Older run
directories have none: then the best mean is marked, as in ``summary.md``. The ``(data)``
reference row is never marked.
"""

from __future__ import annotations

import pandas as pd

from benchbench import Output

from .tables import REFERENCE, best_objectives

SIGNIFICANCE = "bold: the best objective and those not significantly worse than it (the comparisons' test)"
BEST_MEAN = "bold: the best mean (no significance test in this run)"


def has_significance(summary: pd.DataFrame) -> bool:
    return "tied_best" in summary.columns


def marked(summary: pd.DataFrame, dataset: str, metric: str, outputs: dict[str, Output]) -> set[str]:
    """The objectives to mark in the column ``metric`` of ``dataset``'s table."""
    rows = summary[(summary["dataset"] == dataset) & (summary["metric"] == metric)]
    if has_significance(summary):
        return {r.objective for r in rows.itertuples() if r.objective != REFERENCE and _true(r.tied_best)}
    return best_objectives(rows, outputs[metric].better if metric in outputs else "none")


def legend(summary: pd.DataFrame) -> str:
    return SIGNIFICANCE if has_significance(summary) else BEST_MEAN


def _true(value) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "1.0")
