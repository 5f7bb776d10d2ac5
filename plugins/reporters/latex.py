"""The ``latex`` reporter: ``summary.tex`` beside ``summary.md``, ready to paste into a paper.

One booktabs ``table`` per dataset and metric group (the ``training`` losses left out, as in
``summary.md``): objectives as rows, the ``(data)`` reference first in italics, metrics as columns
with ↑/↓ as ``$\\uparrow$``/``$\\downarrow$``, cells "mean $\\pm$ 95% CI half-width" over seeds,
the marked cells in ``\\textbf`` (see :mod:`benchbench_plugins.reporters.marks`). Every label
and note is escaped. Needs ``\\usepackage{booktabs}`` in the preamble.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchbench import Output, Reporter, RunReport, atomic_write, footnote, hookimpl
from benchbench import tables as summary_tables

from . import marks
from .tables import EXCLUDED_GROUPS, REFERENCE, _group, chosen_settings, seeds_phrase

SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
           "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
           ">": r"\textgreater{}", "–": "--", "±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$",
           "↗": r"$\nearrow$", "·": r"$\cdot$", "|": r"\textbar{}", "\n": " ", "\r": " "}
ARROWS = {"higher": r" $\uparrow$", "lower": r" $\downarrow$"}


def escape(text) -> str:
    """``text`` with LaTeX's special characters (and ±, –, arrows) written as LaTeX."""
    return "".join(SPECIAL.get(c, c) for c in str(text))


def render(run: RunReport) -> str:
    """The text of ``summary.tex``."""
    summary = run.summary[run.summary["metric"].map(lambda m: _group(m, run.outputs) not in EXCLUDED_GROUPS)]
    lines = [f"% {escape(run.suite)}: written by benchbench (reporter latex). Needs \\usepackage{{booktabs}}.", ""]
    if summary.empty:
        return "\n".join([*lines, "% No results.", ""])
    captioned = set()
    for dataset, group, table in summary_tables(summary, run.outputs):
        rows = summary[(summary["dataset"] == dataset) & summary["metric"].isin(table.columns)]
        chosen = "; ".join(f"{o}: {text}" for o, text in chosen_settings(run, dataset).items())
        caption_tail = " ".join(filter(None, [
            f"Mean $\\pm$ 95\\% CI half-width over seeds (Student $t$), {escape(seeds_phrase(rows, run.outputs))}.",
            escape(marks.plain(footnote(rows, run.outputs))),
            escape(f"Settings chosen by an equal-budget search: {chosen}.") if chosen and dataset not in captioned
            else ""]))
        captioned.add(dataset)
        lines += table_tex(table, dataset, group, run.outputs, caption_tail, run.suite)
    return "\n".join(lines)


def table_tex(table: pd.DataFrame, dataset: str, group: str, outputs: dict[str, Output], caption_tail: str,
              suite: str) -> list[str]:
    order = [o for o in table.index if o == REFERENCE] + [o for o in table.index if o != REFERENCE]
    header = " & ".join(["objective", *(escape(m) + (ARROWS.get(outputs[m].better, "") if m in outputs else "")
                                        for m in table.columns)])
    rows = []
    for objective in order:
        cells = []
        for value in table.loc[objective]:
            text, bold = marks.unmark(value)
            text = escape(_short(text))
            cells.append(f"\\textbf{{{text}}}" if bold else text)
        name = f"\\textit{{{escape(objective)}}}" if objective == REFERENCE else escape(objective)
        rows.append(" & ".join([name, *cells]) + r" \\")
    label = "".join(c if c.isalnum() else "-" for c in f"{suite}-{dataset}-{group}")
    return [r"\begin{table}[ht]", r"\centering",
            f"\\caption{{{escape(dataset)}: {escape(group)}. {caption_tail}}}", f"\\label{{tab:{label}}}",
            f"\\begin{{tabular}}{{l{'r' * len(table.columns)}}}", r"\toprule", header + r" \\", r"\midrule",
            *rows, r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]


def _short(value: str) -> str:
    """Table cells keep "n/a" without the note (the note is in summary.md and report.html)."""
    return "n/a" if str(value).startswith("n/a") else value


class Latex(Reporter):
    """Writes ``summary.tex``: booktabs tables, one per dataset and metric group, marked cells bold."""

    name = "latex"

    def report(self, run: RunReport, directory: Path) -> list[Path]:
        path = Path(directory) / "summary.tex"
        atomic_write(path, render(run).encode("utf-8"))
        return [path]


@hookimpl
def benchbench_reporters():
    return [Latex]
