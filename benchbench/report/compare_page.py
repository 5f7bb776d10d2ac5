"""What ``benchbench compare`` shows and writes: the printed table, ``compare.csv`` (every row of
:data:`benchbench.report.compare.COLUMNS`) and ``compare.html`` (one self-contained page: inline CSS, no
script, nothing fetched)."""

from __future__ import annotations

import html
import io
import math
from pathlib import Path

import pandas as pd

from ..api.cache import atomic_write
from ..stats.summary import format_number
from .compare import BETTER, WORSE, Comparison

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2327;margin:0;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px;background:#fff}
h1{font-size:25px}h2{font-size:20px;margin-top:30px;border-bottom:2px solid #dde1e6}
table{border-collapse:collapse;font-size:14px;font-variant-numeric:tabular-nums;margin:6px 0}
th,td{padding:3px 8px;border-bottom:1px solid #e3e6ea;text-align:right;white-space:nowrap}
th{background:#f0f2f5}th:nth-child(-n+3),td:nth-child(-n+3){text-align:left}
tr.worse td{background:#fde7e7}tr.better td{background:#e6f4e6}.scroll{overflow-x:auto}
.about th,.about td{text-align:left;white-space:normal}p.note{font-size:13px;color:#4c5661}
"""
SHOWN = ["dataset", "objective", "metric", "base", "new", "change", "interval", "ratio", "p_holm", "verdict"]


def text(comparison: Comparison) -> str:
    """The printed summary: quality regressions and improvements, the throughput rates (steps/s,
    samples/s, GFLOP/s) and any other throughput regression, the counts."""
    table = comparison.table
    quality = table[table["kind"] == "quality"]
    changed = quality[quality["verdict"].isin([WORSE, BETTER])]
    lines = [f"{comparison.suite}: {comparison.new} against {comparison.base}"]
    if not changed.empty:
        lines += ["", "Quality changes (significant after Holm within each dataset and metric):",
                  _display(changed).to_string(index=False)]
    rates = table[(table["kind"] == "throughput") & ((table["better"] == "higher") | table["regression"])]
    if not rates.empty:
        lines += ["", f"Throughput (new / base; regression below {1 - comparison.threshold:.0%}):",
                  _display(rates)[["dataset", "objective", "metric", "base", "new", "ratio", "verdict"]]
                  .to_string(index=False)]
    counts = quality["verdict"].value_counts()
    slower = table[(table["kind"] == "throughput") & table["regression"]]
    lines += ["", f"{len(quality)} quality comparisons: {counts.get(WORSE, 0)} worse, {counts.get(BETTER, 0)} better, "
                  f"{counts.get('~', 0)} unchanged; {len(slower)} throughput regressions "
                  f"(threshold {comparison.threshold:.0%})."]
    return "\n".join(lines)


def write(comparison: Comparison, directory: str | Path) -> list[Path]:
    """``compare.csv`` and ``compare.html`` in ``directory``, each written atomically."""
    directory = Path(directory)
    buffer = io.StringIO()
    comparison.table.to_csv(buffer, index=False)
    written = []
    for name, data in (("compare.csv", buffer.getvalue()), ("compare.html", page(comparison))):
        atomic_write(directory / name, data.encode("utf-8"))
        written.append(directory / name)
    return written


def page(comparison: Comparison) -> str:
    """The text of ``compare.html``: what was compared, then regressions, all quality rows, throughput."""
    table = comparison.table
    quality, throughput = table[table["kind"] == "quality"], table[table["kind"] == "throughput"]
    worse = table[table["regression"]]
    body = [f"<h1>{_e(comparison.suite)}: new run against baseline</h1>", _about(comparison),
            f'<p class="note">Quality: change = new - base of the mean over seeds, 95% percentile-bootstrap '
            f'interval, Mann-Whitney U over seeds, Holm-adjusted within each dataset and metric; significant at '
            f'{comparison.alpha:g}. Throughput: ratio new / base of the means over jobs; a regression when it is '
            f'worse by more than {comparison.threshold:.0%}. Red: worse; green: better.</p>',
            f"<h2>Regressions ({len(worse)})</h2>",
            _table(worse) if len(worse) else "<p>None.</p>",
            f"<h2>Quality ({len(quality)} comparisons)</h2>", _table(quality),
            f"<h2>Throughput ({len(throughput)} comparisons)</h2>", _table(throughput)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(comparison.suite)} · benchbench compare</title><style>{STYLE}</style></head>\n"
            "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n")


def _about(comparison: Comparison) -> str:
    def describe(env: dict) -> str:
        git = env.get("git")
        commit = (git.get("commit", "?")[:12] + (" (dirty)" if git.get("dirty") else "")) if isinstance(git, dict) \
            else "no git"
        return (f"{env.get('created', '?')} · {env.get('device', '?')} · torch {env.get('torch', '?')} · "
                f"benchbench {env.get('benchbench', '?')} · commit {commit}")
    rows = [("baseline", f"{comparison.base}", describe(comparison.base_environment)),
            ("new", f"{comparison.new}", describe(comparison.new_environment))]
    return '<table class="about">' + "".join(f"<tr><th>{_e(a)}</th><td>{_e(b)}</td><td>{_e(c)}</td></tr>"
                                              for a, b, c in rows) + "</table>"


def _table(rows: pd.DataFrame) -> str:
    shown = _display(rows)
    head = "".join(f"<th>{_e(c)}</th>" for c in SHOWN)
    body = "".join(f'<tr class="{_e(r["verdict"])}">' + "".join(f"<td>{_e(r[c])}</td>" for c in SHOWN) + "</tr>"
                   for _, r in shown.iterrows())
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _display(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows formatted for reading: numbers shortened, the interval as [low, high]."""
    shown = pd.DataFrame({
        "dataset": rows["dataset"], "objective": rows["objective"],
        "metric": [m + {"higher": " ↑", "lower": " ↓"}.get(b, "") for m, b in zip(rows["metric"], rows["better"])],
        "base": rows["base"].map(_number), "new": rows["new"].map(_number), "change": rows["change"].map(_number),
        "interval": [f"[{_number(lo)}, {_number(hi)}]" if math.isfinite(lo) else "" for lo, hi in
                     zip(rows["change_low"].astype(float), rows["change_high"].astype(float))],
        "ratio": rows["ratio"].map(lambda r: f"{r:.3f}" if math.isfinite(r) else ""),
        "p_holm": rows["p_holm"].map(lambda p: f"{p:.3g}" if math.isfinite(p) else ""),
        "verdict": rows["verdict"]})
    return shown.reset_index(drop=True)


def _number(x) -> str:
    x = float(x)
    return format_number(x) if math.isfinite(x) else ""


def _e(value) -> str:
    return html.escape(str(value), quote=True)
