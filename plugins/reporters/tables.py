"""The ``markdown`` reporter: ``summary.md``, one table per dataset and metric group.

Cells are "mean ± 95% CI half-width" over seeds, or the interquartile mean with its bootstrap
interval for heavy-tailed metrics; every tied-best objective of a column is in bold (not
significantly worse than the best, by the metric's ``better``; a footnote gives the test, alpha and
n, and says when the seeds are too few for any verdict), never the ``(data)`` reference row, which
is listed first in italics. The ``training`` group (losses during training) is left to the curves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchbench import (
    REFERENCE,
    Output,
    Reporter,
    RunReport,
    atomic_write,
    footnote,
    hookimpl,
    job_scoped,
    markdown,
    tables,
)

from . import frontier_text

EXCLUDED_GROUPS = ("training",)
ARROWS = {"higher": "↑", "lower": "↓"}


def emphasize(table: pd.DataFrame, outputs: dict[str, Output]) -> pd.DataFrame:
    """``table`` (objectives x metrics of one dataset, tied-best cells already bold) with the
    reference row first and in italics, and ↑/↓ after each metric name saying which direction is better."""
    order = [o for o in table.index if o == REFERENCE] + [o for o in table.index if o != REFERENCE]
    table = table.reindex(order)
    table.index = [f"*{o}*" if o == REFERENCE else o for o in table.index]
    table.columns = [_header(m, outputs) for m in table.columns]
    return table


def legend(metrics: list[str], outputs: dict[str, Output]) -> str:
    """One line with the docs of ``metrics``, e.g. "*jsd*: Jensen-Shannon divergence · ..."."""
    parts = [f"*{_md(m)}*: {_md(outputs[m].doc)}" for m in metrics if m in outputs and outputs[m].doc]
    return " · ".join(parts)


def seeds_phrase(summary: pd.DataFrame, outputs: dict[str, Output]) -> str:
    """"n = 3 seeds", or "n = 2–3 seeds" when some cells lost seeds (non-finite values); metrics
    measured once per stacked job (throughput) are counted apart."""
    shared = summary["metric"].isin(job_scoped(outputs))
    counts = summary.loc[~shared, "n"].astype(int)
    if counts.empty:
        counts = summary["n"].astype(int)
    low, high = int(counts.min()), int(counts.max())
    text = f"n = {high} seeds" if low == high else f"n = {low}–{high} seeds"
    if shared.any() and not shared.all():
        names = ", ".join(dict.fromkeys(summary.loc[shared, "metric"]))
        text += f"; {names}: once per job of seeds trained together"
    return text


def render(run: RunReport) -> str:
    """The text of ``summary.md``."""
    lines = [f"# {_md(run.suite)}", ""]
    summary = run.summary[run.summary["metric"].map(lambda m: _group(m, run.outputs) not in EXCLUDED_GROUPS)]
    if summary.empty:
        return "\n".join([*lines, "No results.", ""])
    lines += [f"Each cell: mean ± 95% CI half-width over seeds (Student t), {seeds_phrase(summary, run.outputs)}. "
              f"↑ higher is better, ↓ lower is better. "
              f"*{REFERENCE}*: fresh samples of the true data, what a perfect generator scores.", ""]
    current = None
    for dataset, group, table in tables(summary, run.outputs):
        if dataset != current:
            lines += [*(frontier_text.markdown_lines(run, current) if current else []), f"## {_md(dataset)}", "",
                      *chosen_lines(run, dataset)]
            current = dataset
        metrics = list(table.columns)
        lines += [f"### {_md(group)}", "", markdown(emphasize(table, run.outputs)), ""]
        shown = summary[(summary["dataset"] == dataset) & summary["metric"].isin(metrics)]
        for text in (_md(footnote(shown, run.outputs)), legend(metrics, run.outputs)):
            if text:
                lines += [text, ""]
        if group == "throughput" and device_line(run.directory):
            lines += [device_line(run.directory), ""]
    lines += frontier_text.markdown_lines(run, current)  # across compute: ranks by rung, crossovers, targets
    return "\n".join(lines)


def chosen_settings(run: RunReport, dataset: str) -> dict[str, str]:
    """Objective -> the setting an equal-budget search chose for it on ``dataset`` (empty without one)."""
    return {o: text for (d, o), text in run.chosen.items() if d == dataset}


def chosen_lines(run: RunReport, dataset: str) -> list[str]:
    """The setting a search chose for each objective (trained on the final seeds), then a footnote per
    winner's curse (:attr:`RunReport.selection_warnings`), or nothing."""
    chosen = chosen_settings(run, dataset)
    if not chosen:
        return []
    cursed = curse_warnings(run, dataset)
    return ["Chosen by an equal-budget search (see trials.csv, budget.csv); the tables score it on the final seeds:",
            "", *(f"- {_md(objective)}: {_md(text)}" for objective, text in chosen.items()), "",
            *(line for text in cursed.values() for line in (f"⚠ {_md(text)}", ""))]


def curse_warnings(run: RunReport, dataset: str) -> dict[str, str]:
    """Objective -> its winner's-curse warning on ``dataset`` (a reporter built for an older RunReport: none)."""
    return {o: text for (d, o), text in getattr(run, "selection_warnings", {}).items() if d == dataset}


def device_line(directory: Path) -> str:
    """"Device: ..." from the run's environment.json (empty if it is missing)."""
    try:
        env = json.loads((Path(directory) / "environment.json").read_text())
    except (OSError, ValueError):
        return ""
    return f"Device: {env.get('device')} · torch {env.get('torch')} · {env.get('cpu_count')} CPU cores"


class Markdown(Reporter):
    """Writes ``summary.md``: per dataset, one table per metric group with the tied-best values in bold."""

    name = "markdown"

    def report(self, run: RunReport, directory: Path) -> list[Path]:
        path = Path(directory) / "summary.md"
        atomic_write(path, render(run).encode("utf-8"))
        return [path]


def _md(text) -> str:
    """Plugin-supplied ``text`` (a note, a doc, a label) safe in markdown: no HTML, no table-splitting ``|``."""
    return "".join({"|": "\\|", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\n": " "}.get(c, c) for c in str(text))


def _group(metric: str, outputs: dict[str, Output]) -> str:
    return outputs[metric].group if metric in outputs else "other"


def _header(metric: str, outputs: dict[str, Output]) -> str:
    arrow = ARROWS.get(outputs[metric].better, "") if metric in outputs else ""
    return f"{metric} {arrow}" if arrow else metric


@hookimpl
def benchbench_reporters():
    return [Markdown]
