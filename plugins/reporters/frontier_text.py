"""A run across compute in words and tables, for ``summary.md`` and ``report.html``: the ranks by
budget rung, the crossovers, the training FLOPs to reach each target and the anytime score
(the numbers are the run's :class:`~benchbench.api.reporter.Frontier`; see its CSV files).

Each section is built once as plain tables (objective or metric rows, text cells; ``**x**`` marks a
tied-best objective) and written as markdown or as HTML.
"""

from __future__ import annotations

import html
import math

import pandas as pd

from benchbench import RunReport, markdown

from .frontier_plots import frontier_metrics

NOT_REACHED = "not reached by the top rung"


def flops_text(x: float) -> str:
    """A FLOP count in two digits, e.g. "3.2e10" ("–" when unknown)."""
    if not math.isfinite(x):
        return "–"
    return f"{x:.2g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def _rows(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    return frame[frame["dataset"] == dataset] if not frame.empty and "dataset" in frame else frame.iloc[0:0]


def rung_label(rows: pd.DataFrame, rung: int) -> str:
    """A rung's column header: its training FLOPs per model (median over objectives), or its number."""
    flops = rows.loc[rows["rung"] == rung, "train_flops"].astype(float)
    flops = flops[flops.notna()]
    return f"{flops_text(flops.median())} FLOPs" if len(flops) else f"rung {rung}"


def ranks_table(run: RunReport, dataset: str) -> pd.DataFrame:
    """Metric rows, rung columns (low to high compute): the objectives from best to worst mean, the
    tied-best ones in bold; empty for a single rung."""
    ranks = _rows(run.frontier.ranks, dataset)
    if ranks.empty or ranks["rung"].nunique() < 2:
        return pd.DataFrame()
    rungs = sorted(ranks["rung"].unique())
    labels = {r: rung_label(ranks, r) for r in rungs}
    cells: dict[str, dict[str, str]] = {}
    for (metric, rung), group in ranks.groupby(["metric", "rung"], sort=False):
        group = group.sort_values("rank", kind="stable")
        cells.setdefault(metric, {})[labels[rung]] = " · ".join(
            f"**{o}**" if v in ("best", "tied") else o for o, v in zip(group["objective"], group["verdict"]))
    metrics = [m for m in run.outputs if m in cells] + [m for m in cells if m not in run.outputs]
    return pd.DataFrame.from_dict({m: cells[m] for m in metrics}, orient="index").reindex(
        columns=[labels[r] for r in rungs]).fillna("–")


def crossover_lines(run: RunReport, dataset: str) -> list[str]:
    """One sentence per crossover of ``dataset``."""
    found = _rows(run.frontier.crossovers, dataset)
    return [f"{r.metric}: {r.winner_before} beat {_other(r, r.winner_before)} at {flops_text(r.flops_before)} FLOPs "
            f"(rung {r.rung_before}), {r.winner_after} beat {_other(r, r.winner_after)} at "
            f"{flops_text(r.flops_after)} FLOPs (rung {r.rung_after})" for r in found.itertuples()]


def _other(row, winner: str) -> str:
    return row.objective_b if winner == row.objective_a else row.objective_a


def target_table(run: RunReport, dataset: str) -> pd.DataFrame:
    """Objective rows, one column per target ("jsd ≤ 0.066"): the median training FLOPs per model to
    reach it with its interval, or "not reached by the top rung"."""
    found = _rows(run.frontier.to_target, dataset)
    if found.empty:
        return pd.DataFrame()
    cells: dict[str, dict[str, str]] = {}
    for row in found.itertuples():
        better = run.outputs[row.metric].better if row.metric in run.outputs else "lower"
        column = f"{row.metric} {'≤' if better == 'lower' else '≥'} {row.target:.3g}"
        cells.setdefault(row.objective, {})[column] = _to_target_text(row)
    return pd.DataFrame.from_dict(cells, orient="index").fillna("–")


def _to_target_text(row) -> str:
    seeds = f"{row.reached}/{row.n} seeds"
    if row.status == NOT_REACHED:
        return f"{NOT_REACHED} ({seeds} reached)"
    prefix = "≤ " if row.status == "by the first rung" else ""
    interval = ""
    if math.isfinite(row.low):
        interval = f" [{flops_text(row.low)}, {'beyond the top' if math.isinf(row.high) else flops_text(row.high)}]"
    return f"{prefix}{flops_text(row.median_flops)}{interval} ({seeds})"


def target_note(run: RunReport, dataset: str) -> str:
    found = _rows(run.frontier.to_target, dataset)
    if found.empty:
        return ""
    levels = found["ci_level"].astype(float)
    levels = levels[levels.notna()]
    level = f"{levels.min():.0%}" if len(levels) else "no"
    sources = _rows(run.frontier.targets, dataset)
    defaults = ", ".join(sources.loc[sources["source"] != "suite", "metric"])
    return (f"Training FLOPs per model to reach each target: median over seeds, interpolated on log-FLOPs between "
            f"the rungs, with a {level} interval from the order statistics (fewer than 6 seeds cannot give 95%); "
            f"\"≤\": reached by the first rung." + (f" Targets of {defaults}: twice the (data) value." if defaults
                                                    else "") + " Per seed: to_target_seeds.csv.")


def anytime_table(run: RunReport, dataset: str) -> pd.DataFrame:
    """Objective rows, metric columns: the mean score over log10 training FLOPs (mean ± 95% CI half-width
    over seeds); empty without two rungs."""
    found = _rows(run.frontier.anytime, dataset)
    if found.empty:
        return pd.DataFrame()
    metrics = frontier_metrics(found, run.outputs)
    cells: dict[str, dict[str, str]] = {}
    for row in found[found["metric"].isin(metrics)].itertuples():
        half = (row.ci95_high - row.ci95_low) / 2
        cells.setdefault(row.objective, {})[row.metric] = f"{row.mean:.3g}" + (
            f" ± {half:.2g}" if math.isfinite(half) else "")
    return pd.DataFrame.from_dict(cells, orient="index").reindex(columns=metrics).fillna("–")


def anytime_note(run: RunReport, dataset: str) -> str:
    found = _rows(run.frontier.anytime, dataset)
    if found.empty:
        return ""
    low, high = float(found["log10_flops_low"].iloc[0]), float(found["log10_flops_high"].iloc[0])
    return (f"Anytime score: the area under each seed's score against log10(training FLOPs per model) from "
            f"{flops_text(10**low)} to {flops_text(10**high)} FLOPs, divided by the span (the mean score over "
            f"log-compute); mean ± 95% CI half-width over seeds (anytime.csv).")


def sections(run: RunReport, dataset: str) -> list[tuple[str, pd.DataFrame | list[str], str]]:
    """(heading, table or sentences, note) of each section that applies to ``dataset``."""
    found = []
    ranks = ranks_table(run, dataset)
    if not ranks.empty:
        found.append(("ranks by budget rung", ranks, "Objectives from best to worst mean at each rung; bold: "
                      "tied-best at that rung (Holm within each metric and rung). Verdicts per rung: "
                      "rung_summary.csv, rung_comparisons.csv."))
        crossings = crossover_lines(run, dataset)
        found.append(("crossovers", crossings or ["none: no pair's significant order flips between rungs"],
                      "A crossover: a pair whose order is significant (Holm within the rung) at two rungs and flips "
                      "between them (crossovers.csv)."))
    targets = target_table(run, dataset)
    if not targets.empty:
        found.append(("compute to reach a target", targets, target_note(run, dataset)))
    area = anytime_table(run, dataset)
    if not area.empty:
        found.append(("anytime score", area, anytime_note(run, dataset)))
    return found


def markdown_lines(run: RunReport, dataset: str) -> list[str]:
    """The sections of ``dataset`` for ``summary.md``."""
    lines = []
    for heading, content, note in sections(run, dataset):
        lines += [f"### {heading}", ""]
        if isinstance(content, list):
            lines += [f"- {text}" for text in content]
        else:
            lines.append(markdown(content.rename_axis(None)).replace("| objective |", "| |", 1))
        lines += ["", note, ""] if note else [""]
    return lines


def html_text(run: RunReport, dataset: str) -> str:
    """The sections of ``dataset`` for ``report.html``."""
    parts = []
    for heading, content, note in sections(run, dataset):
        parts.append(f"<h3>{_e(heading)}</h3>")
        if isinstance(content, list):
            parts.append("<ul>" + "".join(f"<li>{_e(text)}</li>" for text in content) + "</ul>")
        else:
            head = "<tr><th></th>" + "".join(f"<th>{_e(c)}</th>" for c in content.columns) + "</tr>"
            rows = "".join("<tr><td>" + _e(index) + "</td>" + "".join(f"<td>{_bold(c)}</td>" for c in row) + "</tr>"
                           for index, row in zip(content.index, content.itertuples(index=False)))
            parts.append(f'<div class="scroll"><table>{head}{rows}</table></div>')
        if note:
            parts.append(f'<p class="legend">{_e(note)}</p>')
    return "".join(parts)


def _bold(text) -> str:
    """Escaped ``text`` with its ``**x**`` spans in bold."""
    pieces = _e(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(pieces))


def _e(value) -> str:
    return html.escape(str(value), quote=True)
