"""Mean, standard deviation and 95% confidence interval over seeds, robust aggregates and tied-best
marks (:mod:`benchbench.stats.verdicts`), and tables of them."""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats

from ..api.outputs import Output, job_scoped
from .verdicts import (
    ALPHA,
    ROBUST_COLUMNS,
    TEST,
    TEST_NAMES,
    Verdicts,
    comparisons,
    min_p_value,
    ranks,
    usable,
    with_verdicts,
)

SUMMARY_COLUMNS = ["dataset", "objective", "metric", "mean", "std", "ci95_low", "ci95_high", "n", "note",
                   *ROBUST_COLUMNS, "tied_best", "verdict"]
INTERVAL_COLUMNS = SUMMARY_COLUMNS[:SUMMARY_COLUMNS.index("note") + 1]
GROUP_ORDER = ("quality", "divergence", "theory", "throughput")
IMPROVING_MARK = "↗"  # after a cell whose curve was still improving at the end of the budget (stats.improving)


def summarize(records: pd.DataFrame, outputs: dict[str, Output], compared: pd.DataFrame | None = None,
              seed: int = 0) -> pd.DataFrame:
    """One row per (dataset, objective, metric): Student-t 95% interval of the mean over seeds, then
    the median and IQM with bootstrap intervals, ``tied_best`` and ``verdict`` from the pairwise
    comparisons ``compared`` (:func:`benchbench.stats.verdicts.comparisons`, computed when not given).

    Non-finite values and values outside their output's declared range are left out and ``n`` says
    how many counted; a metric with no finite value
    but a note (an output a metric declared unavailable) keeps a row with the note. Job-scoped
    outputs (throughput shared by seeds trained together) count once per job; "sum" outputs (e.g.
    diverged seeds) are totals, without an interval.
    """
    if records.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    if "note" not in records:
        records = records.assign(note="")
    all_records = records
    noted = records[records["note"].fillna("").astype(bool)].drop_duplicates(["dataset", "objective", "metric"])
    notes = {(r.dataset, r.objective, r.metric): r.note for r in noted.itertuples()}
    order = {(d, o): i for i, (d, o) in enumerate(dict.fromkeys(zip(records["dataset"], records["objective"])))}
    records = records[usable(records, outputs)]
    is_job = records["metric"].isin(job_scoped(outputs))
    once = records[is_job].drop_duplicates(["dataset", "objective", "job", "metric"])  # per row of a copied job
    records = pd.concat([records[~is_job], once])
    rows = []
    for (dataset, objective, metric), group in records.groupby(["dataset", "objective", "metric"], sort=False):
        values = group["value"].astype(float).tolist()
        if metric in outputs and outputs[metric].summary == "sum":
            numbers = (sum(values), math.nan, math.nan, math.nan, len(values))
        else:
            numbers = interval(values)
        rows.append((dataset, objective, metric, *numbers, notes.pop((dataset, objective, metric), "")))
    rows += [(d, o, m, math.nan, math.nan, math.nan, math.nan, 0, note) for (d, o, m), note in notes.items()]
    frame = pd.DataFrame(rows, columns=INTERVAL_COLUMNS)
    frame["_order"] = [order[d, o] for d, o in zip(frame["dataset"], frame["objective"])]
    metric_rank = {name: i for i, name in enumerate(outputs)}
    frame["_metric"] = frame["metric"].map(lambda m: metric_rank.get(m, len(metric_rank)))
    frame = frame.sort_values(["_order", "_metric"]).drop(columns=["_order", "_metric"]).reset_index(drop=True)
    compared = comparisons(all_records, outputs, seed=seed) if compared is None else compared
    return with_verdicts(frame, all_records, outputs, compared, seed)


def interval(values: list[float], level: float = 0.95) -> tuple[float, float, float, float, int]:
    """(mean, std, low, high, n) with the Student-t interval; std and bounds are NaN for n < 2."""
    n = len(values)
    if n == 0:
        return (math.nan,) * 4 + (0,)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, math.nan, math.nan, n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half, n


def tables(summary: pd.DataFrame, outputs: dict[str, Output]) -> list[tuple[str, str, pd.DataFrame]]:
    """(dataset, group, table) with objectives as rows and metrics as columns, cells "mean ± ci", or
    "IQM x [low, high]" (bootstrap interval) for heavy-tailed metrics; tied-best cells in bold
    (``verdict`` "best" or "tied"; see :func:`footnote` for what the marks mean)."""
    found = []
    for dataset, by_dataset in summary.groupby("dataset", sort=False):
        groups = {outputs[m].group if m in outputs else "other" for m in by_dataset["metric"]}
        for group in [g for g in GROUP_ORDER if g in groups] + sorted(groups - set(GROUP_ORDER)):
            rows = by_dataset[by_dataset["metric"].map(lambda m: (outputs[m].group if m in outputs else "other")
                                                       == group)]
            cells = rows.assign(text=[cell_text(r, outputs) for r in rows.itertuples()])
            table = cells.pivot(index="objective", columns="metric", values="text")
            table = table.reindex(index=list(dict.fromkeys(rows["objective"])),
                                  columns=list(dict.fromkeys(rows["metric"]))).fillna("–")
            found.append((dataset, group, table))
    return found


def cell_text(row, outputs: dict[str, Output]) -> str:
    """One summary row as a table cell: "mean ± half-width" (IQM for heavy-tailed metrics), bold if
    the row is tied-best; "n/a (note)" when no seed has a value, and "(n = 4; note)" appended when
    some seeds' values are missing with a note (an estimator failure, an unavailable output); "↗" after
    a score whose curve was still improving at the end of the budget (column ``still_improving``)."""
    note = getattr(row, "note", "")
    if row.metric in outputs and outputs[row.metric].heavy_tailed and _finite(getattr(row, "iqm", math.nan)):
        text = f"IQM {format_number(row.iqm)}"
        if _finite(row.iqm_low):
            text += f" [{format_number(row.iqm_low)}, {format_number(row.iqm_high)}]"
    else:
        text = format_interval(row.mean, row.ci95_low, row.ci95_high, note)
    if isinstance(note, str) and note and _finite(row.mean):  # some seeds missing: say why and how many count
        text += f" (n = {row.n}; {note})"
    if _true(getattr(row, "still_improving", False)):
        text += f" {IMPROVING_MARK}"
    return f"**{text}**" if getattr(row, "verdict", "") in ("best", "tied") else text


def footnote(summary: pd.DataFrame, outputs: dict[str, Output]) -> str:
    """What the marks of :func:`tables` mean for ``summary`` (one dataset and group, or more): the
    test, alpha and n, the columns where these n cannot reach significance, and the IQM label."""
    compared = summary[summary.get("verdict", pd.Series("", index=summary.index)).fillna("").astype(bool)]
    parts = []
    if not compared.empty:
        low, high = int(compared["n"].min()), int(compared["n"].max())
        seeds = f"n = {high}" if low == high else f"n = {low}–{high}"
        parts.append(f"**Bold**: tied-best, not significantly worse than the best objective "
                     f"({TEST_NAMES[TEST]} test over seeds, Holm-corrected within each column, alpha = {ALPHA}, "
                     f"{seeds} seeds).")
        weak = compared[compared["verdict"] == "underpowered"]
        if not weak.empty:
            n = int(weak["n"].min())
            metrics = ", ".join(dict.fromkeys(weak["metric"]))
            parts.append(f"No verdict for {metrics}: with {n} seeds no difference can reach significance "
                         f"(the smallest possible p-value is {min_p_value(n, n, TEST):.2g} before correction); "
                         f"run more seeds.")
    improving = summary[summary["still_improving"].fillna(False).astype(bool)] if "still_improving" in summary else []
    if len(improving):
        parts.append(f"{IMPROVING_MARK}: still improving at the end of the budget (the curve's slope over the last "
                     f"quarter of training is above 0 by a one-sided t-test over seeds, alpha = {ALPHA}): the "
                     f"verdicts on these cells are about this budget, and more training may change them.")
    heavy = [m for m in dict.fromkeys(summary["metric"]) if m in outputs and outputs[m].heavy_tailed]
    if heavy:
        parts.append(f"{', '.join(heavy)}: heavy-tailed, so the interquartile mean with a 95% percentile-bootstrap "
                     f"interval.")
    return " ".join(parts)


def format_interval(mean: float, low: float, high: float, note: str = "") -> str:
    if math.isnan(mean):
        return f"n/a ({note})" if isinstance(note, str) and note else "–"
    if math.isnan(low):
        return format_number(mean)
    return f"{format_number(mean)} ± {format_number((high - low) / 2)}"


def _true(flag) -> bool:
    """A bool column's value (NaN where a frame was joined without it: False)."""
    return bool(pd.notna(flag) and flag)


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def format_number(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        return str(x)
    magnitude = abs(x)
    if magnitude >= 1000:
        return f"{x:,.0f}"
    if magnitude >= 100:
        return f"{x:.1f}"
    if magnitude == 0 or magnitude >= 1e-3:
        return f"{x:.3g}"
    return f"{x:.2e}"


MARKDOWN_SPECIAL = {"|": "\\|", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\n": " ", "\r": " "}


def escape_markdown(text) -> str:
    """``text`` safe in a markdown table cell: ``|`` escaped, HTML's ``&``, ``<`` and ``>`` as entities
    (a plugin's note cannot split a cell or inject markup), line breaks as spaces."""
    return "".join(MARKDOWN_SPECIAL.get(c, c) for c in str(text))


def markdown(table: pd.DataFrame) -> str:
    """``table`` as a markdown table, every header and cell escaped (:func:`escape_markdown`)."""
    header = ["objective", *table.columns]
    lines = ["| " + " | ".join(map(escape_markdown, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(escape_markdown, [index, *row])) + " |" for index, row in table.iterrows()]
    return "\n".join(lines)


def compute_verdicts(records: pd.DataFrame, outputs: dict[str, Output], test: str = TEST,
                     alpha: float = ALPHA, seed: int = 0) -> Verdicts:
    """Comparisons, ranks and the summary (with robust aggregates and tied-best marks) of records."""
    compared = comparisons(records, outputs, test, alpha, seed)
    return Verdicts(compared, ranks(records, outputs, seed), summarize(records, outputs, compared, seed))
