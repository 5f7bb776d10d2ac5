"""The "Where the time went" section of ``report.html``: the run's ``phases.csv`` (``RunReport.phases``) as
two tables, the runner's laps (they add up to the run's wall time) and the phases inside the jobs (summed
over jobs: worker-seconds), each phase followed by its parts (sampling, each metric)."""

from __future__ import annotations

import html

import pandas as pd

from benchbench import RunReport

TOTAL = "total"


def phases_html(run: RunReport) -> str:
    """The section, or a note that the run recorded no phases (runs of older versions)."""
    title = '<h2 id="time">Where the time went</h2>'
    frame = run.phases
    if frame is None or frame.empty or not {"scope", "phase", "wall_s", "cpu_s"} <= set(frame.columns):
        return title + "<p>This run recorded no phases (phases.csv).</p>"
    run_rows, job_rows = frame[frame["scope"] == "run"], frame[frame["scope"] == "jobs"]
    total = run_rows.loc[run_rows["phase"] == TOTAL, "wall_s"].sum()
    laps = _table(run_rows[run_rows["phase"] != TOTAL], total, "wall s")
    text = (f'<p class="legend">The run took {total:.1f} s of wall time. Its steps, one after the other '
            f'(start-up: this process importing torch and the plugins; worker start: the first job waiting for '
            f'worker processes; CPU: this process and its finished workers):</p>' + laps)
    if not job_rows.empty:
        ordered = _grouped(job_rows)
        text += ('<p class="legend">Inside the jobs, summed over them (workers run at once: worker-seconds). '
                 'A phase\'s own row leaves out its parts (sampling, each metric, diagnostics), listed under it; '
                 'set-up: building networks and data, counting FLOPs.</p>'
                 + _table(ordered, ordered["wall_s"].sum(), "worker-s"))
    return title + text


def _grouped(rows: pd.DataFrame) -> pd.DataFrame:
    """Phases longest first (their parts included), each followed by its parts, longest first."""
    rows = rows.assign(top=rows["phase"].str.split("/").str[0])
    order = rows.groupby("top")["wall_s"].sum().sort_values(ascending=False).index
    return pd.concat([rows[rows["top"] == top].assign(own=lambda r: r["phase"] != top)
                      .sort_values(["own", "wall_s"], ascending=[True, False]) for top in order])


def _table(rows: pd.DataFrame, total: float, unit: str) -> str:
    head = f"<tr><th>phase</th><th>{unit}</th><th>share</th><th>CPU s</th></tr>"
    body = "".join(
        f"<tr><td>{'&emsp;' * row.phase.count('/')}{html.escape(row.phase.split('/')[-1])}</td>"
        f"<td>{row.wall_s:.2f}</td><td>{row.wall_s / total:.0%}</td><td>{row.cpu_s:.2f}</td></tr>"
        if total > 0 else "" for row in rows.itertuples())
    return f"<table>{head}{body}</table>"
