"""The ``html`` reporter: ``report.html``, the whole run on one self-contained page.

Top to bottom: what was run (suite, budget, seeds, device, versions, commit, wall time); per dataset
its summary tables (mean ± 95% CI half-width or IQM, tied-best cells bold, column descriptions on
hover and beneath), its figures (samples over the true density, metric curves, image grids, quality
against training FLOPs and against sampling cost), the run across compute (ranks by budget rung,
crossovers, compute to a target, anytime score: :mod:`.frontier_text`) and
its pairwise comparisons (probability of improvement, folded); the ranks across datasets; the
throughput tables; every problem and note of the run. CSS is inline and figures are PNGs embedded as ``data:`` URIs:
nothing is fetched, no script runs, so the file opens from disk and can be mailed as it is.

The figures are rendered here from the :class:`~benchbench.RunReport` (with the ``plots``,
``grids`` and ``verdicts`` reporters' drawing functions): reporters run in suite order, and a suite
may list ``html`` without them. A ``plots`` PNG written after every cell file (the ``plots`` reporter
ran on the same results; ``runs_last`` puts this reporter after it) is embedded as it is, which
halves the reporting time. Image grids are embedded at their own resolution
and upscaled by the browser without smoothing (``image-rendering: pixelated``).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchbench import (Output, Reporter, RunReport, atomic_write, describe_budget, file_label, footnote, hookimpl,
                        param)
from benchbench import tables as summary_tables

from . import figures, frontier_text, grids, marks, plots, verdicts
from .tables import EXCLUDED_GROUPS, REFERENCE, _group, _header, chosen_settings, curse_warnings, seeds_phrase
from .time_spent import phases_html

THROUGHPUT = "throughput"
STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2327;margin:0;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:21px;margin:34px 0 8px;border-bottom:2px solid #dde1e6;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px;color:#3a4450}
nav a{margin-right:14px}a{color:#0b5cad}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:6px 0 4px;font-variant-numeric:tabular-nums;font-size:14px}
th,td{padding:4px 8px;border-bottom:1px solid #e3e6ea;text-align:right;white-space:nowrap}
th{background:#f0f2f5;font-weight:600;white-space:normal;vertical-align:bottom}th:first-child,td:first-child{text-align:left}
th[title]{text-decoration:underline dotted;cursor:help}
tr.reference td{font-style:italic;color:#5a6470}
td.best{font-weight:700;background:#e8f3e8}
.about td,.about th{text-align:left;white-space:normal}.about th{width:170px}
.legend{font-size:13px;color:#4c5661;margin:2px 0 10px}.legend dt{font-weight:600;float:left;margin-right:6px}
.legend dd{margin:0 0 2px 0}
figure{margin:10px 0 18px}figcaption{font-size:13px;color:#4c5661}
img.figure{max-width:100%;height:auto;border:1px solid #e3e6ea}
.grids{display:flex;flex-wrap:wrap;gap:18px}
.grids figure{margin:0}img.grid{image-rendering:pixelated;image-rendering:crisp-edges;border:1px solid #ccc}
details{margin:6px 0 16px}summary{cursor:pointer;color:#0b5cad}
ul.problems li{margin-bottom:3px}.ok{color:#2e7d32}.warn{color:#a15c00}
code{font-size:13px;background:#f0f2f5;padding:1px 4px;border-radius:3px}
"""


@dataclasses.dataclass(frozen=True)
class HtmlConfig:
    dpi: int = param(100, "resolution of the embedded figures (dots per inch)", ge=30, le=300)
    max_points: int = param(2000, "most points per panel: samples drawn, or steps per curve", ge=10)
    grid_side: int = param(8, "images per row and per column of an image grid", ge=1, le=64)
    grid_width: int = param(320, "smallest displayed width of an image grid in CSS pixels (upscaled without "
                                 "smoothing)", ge=32, le=2048)


class Html(Reporter):
    """Writes ``report.html``: the run on one page, figures embedded, nothing fetched."""

    name = "html"
    Config = HtmlConfig
    runs_last = True  # so that the plots reporter's PNGs of these results exist and are embedded as they are

    def report(self, run: RunReport, directory: Path) -> list[Path]:
        path = Path(directory) / "report.html"
        atomic_write(path, render(run, self.config).encode("utf-8"))
        return [path]


def render(run: RunReport, config: HtmlConfig = HtmlConfig()) -> str:
    """The text of ``report.html``."""
    summary = run.summary
    shown = summary[summary["metric"].map(lambda m: _group(m, run.outputs) not in EXCLUDED_GROUPS).astype(bool)]
    datasets = list(dict.fromkeys([*run.datasets, *shown["dataset"]]))
    body = [f"<h1>{_e(run.suite)}</h1>", _about(run)]
    if not run.samples:  # no valid cell (each has its samples file): every job failed, or none ran
        body.append(f'<p class="warn">No valid results in this run: {len(run.problems)} problem(s) listed under '
                    f'<a href="#problems">problems and notes</a> say which cells are missing and why.</p>')
    body.append("<nav>" + "".join(f'<a href="#{_anchor(d)}">{_e(d)}</a>' for d in datasets)
                + ('<a href="#ranks">ranks</a>' if not run.ranks.empty else "")
                + '<a href="#throughput">throughput</a><a href="#time">time</a>'
                + '<a href="#problems">problems and notes</a></nav>')
    if not shown.empty:
        body.append(f'<p class="legend">Each cell: mean ± 95% CI half-width over seeds (Student t), '
                    f'{_e(seeds_phrase(shown, run.outputs))}. <b>Bold</b>: tied-best (see beneath each table); '
                    f'↑ higher is better, '
                    f'↓ lower is better. <i>{REFERENCE}</i>: fresh samples of the true data, what a perfect '
                    f'generator scores. Hover a column name for its description.</p>')
    throughput, throughput_metrics = [], []
    compared = improvement_pngs(run, datasets, config)  # drawn at once, in parallel
    for dataset in datasets:
        body.append(f'<h2 id="{_anchor(dataset)}">{_e(dataset)}</h2>' + chosen_html(run, dataset, config))
        rows = shown[shown["dataset"] == dataset]
        for _, group, table in summary_tables(rows, run.outputs) if not rows.empty else []:
            title = f"{dataset} · {group}" if group == THROUGHPUT else group
            marked = footnote(rows[rows["metric"].isin(table.columns)], run.outputs)
            (throughput if group == THROUGHPUT else body).append(
                f"<h3>{_e(title)}</h3>" + table_html(table, run.outputs)
                + (f'<p class="legend">{_e(marks.plain(marked))}</p>' if marked else "")
                + ("" if group == THROUGHPUT else legend_html(list(table.columns), run.outputs)))
            throughput_metrics += list(table.columns) if group == THROUGHPUT else []
        if rows.empty:
            body.append("<p>No results.</p>")
        body += figures_html(run, dataset, config)
        body.append(frontier_text.html_text(run, dataset))  # ranks by rung, crossovers, compute to a target
        body.append(improvement_html(run, dataset, compared.get(dataset)))
    body.append(ranks_html(run))
    body.append('<h2 id="throughput">Throughput</h2>')
    device = run.environment.get("device")
    body += throughput or ["<p>No throughput was measured (the suite has no throughput metric).</p>"]
    body.append(legend_html(list(dict.fromkeys(throughput_metrics)), run.outputs))
    if device:
        body.append(f'<p class="legend">Device: {_e(device)}; torch {_e(run.environment.get("torch", "?"))}; '
                    f'{_e(run.environment.get("cpu_count", "?"))} CPU cores.</p>')
    body.append(phases_html(run))
    body.append('<h2 id="problems">Problems and notes</h2>' + problems_html(run))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(run.suite)} · benchbench report</title><style>{STYLE}</style></head>\n"
            "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n")


# --- what was run ----------------------------------------------------------------------------------

def _about(run: RunReport) -> str:
    """A table of what was run: suite, budget, seeds, evaluation, device, versions, commit, wall time."""
    suite, env = run.suite_config, run.environment
    seeds = suite.get("seeds") or sorted({int(s) for s in run.records.get("seed", [])})
    rows = []
    if suite.get("description"):
        rows.append(("description", suite["description"]))
    rows.append(("run directory", str(run.directory)))
    if env.get("created"):
        rows.append(("started", env["created"]))
    if suite:
        rows.append(("budget", describe_budget(suite)))
    rows.append(("seeds", f"{len(seeds)}: {', '.join(map(str, seeds))}" if seeds else "?"))
    if suite.get("eval"):
        ev = suite["eval"]
        compute = "budget" in suite and "steps" not in suite["budget"]
        every = ("before and after training" if not ev.get("every") else f"at every 1/{ev['every']} of the budget"
                 if compute else f"every {ev.get('every')} steps")
        rows.append(("evaluation", f"{ev.get('samples')} samples per cell; curves {every} on "
                                   f"{ev.get('curve_samples')} samples"))
    for section in ("datasets", "objectives", "metrics", "reporters"):
        if suite.get(section):
            rows.append((section, ", ".join(_component(label, spec) for label, spec in suite[section].items())))
    if env:
        rows.append(("device", f"{env.get('device')} ({env.get('cpu_count')} CPU cores, "
                               f"{env.get('torch_threads')} torch threads)"))
        rows.append(("versions", f"benchbench {env.get('benchbench')} · torch {env.get('torch')}"
                                 f"{' (CUDA ' + str(env['cuda']) + ')' if env.get('cuda') else ''} · "
                                 f"Python {env.get('python')} · {env.get('platform')}"))
        git = env.get("git")
        rows.append(("commit", f"{git['commit']}{' (with uncommitted changes)' if git.get('dirty') else ''}"
                     if isinstance(git, dict) else "not a git checkout"))
        plugins = env.get("plugins") or {}
        if plugins:
            rows.append(("plugins", ", ".join(f"{name} {p.get('version') or ''}".strip()
                                              for name, p in plugins.items())))
    rows.append(("wall time", _duration(run.wall_time_s)))
    return '<table class="about">' + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _component(label: str, spec) -> str:
    kind = spec.get("type") if isinstance(spec, dict) else None
    return label if kind in (None, label) else f"{label} ({kind})"


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    text = str(dt.timedelta(seconds=round(seconds)))
    return f"{text} (from the start to the last cell written)"


# --- tables ----------------------------------------------------------------------------------------

def table_html(table: pd.DataFrame, outputs: dict[str, Output]) -> str:
    """One table of :func:`benchbench.tables` (objectives x metrics): the reference row first,
    tied-best cells bold, column descriptions as ``title`` attributes."""
    order = [o for o in table.index if o == REFERENCE] + [o for o in table.index if o != REFERENCE]
    head = "<tr><th>objective</th>" + "".join(
        f'<th title="{_e(outputs[m].doc)}">{_breakable(_header(m, outputs))}</th>' if m in outputs and outputs[m].doc
        else f"<th>{_breakable(_header(m, outputs))}</th>" for m in table.columns) + "</tr>"
    rows = []
    for objective in order:
        cells = "".join(f'<td class="best">{_cell(text)}</td>' if bold else f"<td>{_cell(text)}</td>"
                        for text, bold in map(marks.unmark, table.loc[objective]))
        css = ' class="reference"' if objective == REFERENCE else ""
        rows.append(f"<tr{css}><td>{_e(objective)}</td>{cells}</tr>")
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def _breakable(header: str) -> str:
    """A metric name that may wrap after its underscores (narrower tables)."""
    return _e(header).replace("_", "_<wbr>")


def _cell(text: str) -> str:
    """A table cell; an interval in brackets ("IQM x [low, high]") goes on its own line."""
    return "<br>[".join(map(_e, str(text).split(" [", 1)))


def legend_html(metrics: list[str], outputs: dict[str, Output]) -> str:
    items = [(m, outputs[m].doc) for m in metrics if m in outputs and outputs[m].doc]
    if not items:
        return ""
    return '<dl class="legend">' + "".join(f"<dt>{_e(m)}</dt><dd>{_e(doc)}</dd>" for m, doc in items) + "</dl>"


# --- figures ---------------------------------------------------------------------------------------

def figures_html(run: RunReport, dataset: str, config: HtmlConfig) -> list[str]:
    """The figures of one dataset: samples (or image grids) and metric curves, embedded. A figure the
    ``plots`` reporter already wrote for these cells (its PNG is newer than every cell file) is
    embedded as it is; otherwise it is rendered here."""
    parts = []
    samples = plots.first_seed_samples(run.samples, dataset)
    shape = next(iter(samples.values())).shape[1:] if samples else ()
    fresh = _newest_cell(run.directory)
    name = file_label(dataset)
    samples = {k: v for k, v in samples.items() if len(v)}  # plot_samples: 0 keeps none
    shape = next(iter(samples.values())).shape[1:] if samples else ()
    if samples and plots.sample_kind(shape) == "image":
        parts.append(grids_html(run, dataset, config))
    elif samples:
        png = _written(run.directory / "plots" / f"samples_{name}.png", fresh) or plots.png(plots.samples_figure(
            f"{run.suite} · {dataset}", run.datasets.get(dataset), samples, config.max_points), config.dpi)
        parts.append(_figure(png, "Samples of the lowest seed of each objective."))
    curves = run.curves[run.curves["dataset"] == dataset] if not run.curves.empty else run.curves
    if not curves.empty and plots.curve_panels(curves, run.outputs):
        summary = run.summary[run.summary["dataset"] == dataset]
        scale = (plots.curve_flops(run, dataset) or None) if plots.flops_axis(run, "auto") else None
        png = _written(run.directory / "plots" / f"curves_{name}.png", fresh) or plots.png(plots.curves_figure(
            f"{run.suite} · {dataset}", curves, summary, run.outputs, config.max_points, scale), config.dpi)
        axis = "" if scale is None else ", against the training FLOPs per model spent so far"
        parts.append(_figure(png, f"Metrics during training{axis}: mean over seeds, band: 95% CI."))
    captions = {"compute": "Score against training FLOPs per model at each budget rung: mean over seeds, band: 95% "
                           "CI; dotted: the (data) reference, dashed: the target.",
                "sampling": "Score at the top budget rung against sampling FLOPs per generated sample (nfe: network "
                            "evaluations per sample); filled and joined: the Pareto set, which no other objective "
                            "beats on both score and cost."}
    for kind, draw in plots.compute_figures(run, dataset):
        png = _written(run.directory / "plots" / f"{kind}_{name}.png", fresh) or plots.png(draw(), config.dpi)
        parts.append(_figure(png, captions[kind]))
    return parts


def _newest_cell(directory: Path) -> float | None:
    """The modification time of the run's newest cell file; None without cell files."""
    times = [p.stat().st_mtime for p in (Path(directory) / "cells").glob("*.json")]
    return max(times) if times else None


def _written(path: Path, newest_cell: float | None) -> bytes | None:
    """The PNG at ``path`` if it was written after every cell file (so from these results)."""
    try:
        if newest_cell is not None and path.stat().st_mtime >= newest_cell:
            data = path.read_bytes()
            return data if data.startswith(b"\x89PNG") else None
    except OSError:
        pass
    return None


def grids_html(run: RunReport, dataset: str, config: HtmlConfig) -> str:
    """One grid per objective of the first ``grid_side``² samples of its lowest seed, at the images'
    own resolution, shown at least ``grid_width`` CSS pixels wide without smoothing."""
    low, high = grids.value_range(run, dataset)
    items = []
    seeds = sorted(grids.lowest_seeds(run.samples).items(), key=lambda item: item[0][1] != REFERENCE)
    for (label, objective), seed in seeds:
        if label != dataset:
            continue
        images = np.asarray(grids._numpy(run.samples[label, objective, seed]), dtype=np.float64)
        if not grids.is_image_batch(images):
            continue
        mosaic = grids.mosaic(images[: config.grid_side**2], low, high, config.grid_side)
        width = mosaic.shape[1] * max(1, math.ceil(config.grid_width / mosaic.shape[1]))
        caption = f"<i>{REFERENCE}</i> reference" if objective == REFERENCE else _e(objective)
        items.append(f'<figure><img class="grid" width="{width}" alt="{_e(objective)} samples" '
                     f'src="{_data_uri(grids.grid_png(mosaic))}"><figcaption>{caption}, seed {seed}</figcaption></figure>')
    return ('<p class="legend">First samples of the lowest seed, at their own resolution, enlarged without smoothing.'
            '</p><div class="grids">' + "".join(items) + "</div>") if items else ""


def _figure(png: bytes, caption: str) -> str:
    return (f'<figure><img class="figure" alt="{_e(caption)}" src="{_data_uri(png)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def chosen_html(run: RunReport, dataset: str, config: HtmlConfig) -> str:
    """The settings an equal-budget search chose for ``dataset`` and its budget curve; "" without a search."""
    chosen = chosen_settings(run, dataset)
    if not chosen:
        return ""
    items = "".join(f"<li><b>{_e(o)}</b>: {_e(text)}</li>" for o, text in chosen.items())
    found = (f"<p>Chosen by an equal-budget search (trials.csv, budget.csv); the tables score each choice "
             f"on the final seeds, which no trial used:</p><ul>{items}</ul>")
    found += "".join(f'<p class="warn">⚠ {_e(text)}</p>' for text in curse_warnings(run, dataset).values())
    budget = run.budget[run.budget["dataset"] == dataset] if not run.budget.empty else run.budget
    if not budget.empty:
        png = _written(run.directory / "plots" / f"budget-{file_label(dataset)}.png", _newest_cell(run.directory)) \
            or plots.png(plots.budget_figure(dataset, budget, run.outputs), config.dpi)
        found += _figure(png, "Expected best selection score of a budget of b trials per objective "
                              "(band: 95% bootstrap interval over the trials).")
    return found


# --- comparisons -----------------------------------------------------------------------------------

def improvement_pngs(run: RunReport, datasets: list[str], config: HtmlConfig) -> dict[str, bytes]:
    """dataset -> the ``verdicts`` reporter's figure of its pairwise comparisons, where it has any."""
    compared = run.comparisons
    if compared.empty or "dataset" not in compared:
        return {}
    makes = {d: functools.partial(verdicts.improvement_figure, f"{run.suite} · {d}",
                                  compared[compared["dataset"] == d]) for d in datasets if (compared["dataset"] == d).any()}
    return figures.render_all(makes, config.dpi, costs={d: (compared["dataset"] == d).sum() for d in makes})


def improvement_html(run: RunReport, dataset: str, png: bytes | None) -> str:
    """The run's pairwise comparisons of ``dataset`` (probability of improvement with intervals, the
    ``verdicts`` reporter's figure ``png``), folded: empty when there are none."""
    compared = run.comparisons
    if png is None or compared.empty or "dataset" not in compared:
        return ""
    compared = compared[compared["dataset"] == dataset]
    significant = int(compared["significant"].astype(bool).sum())
    caption = ("P(first objective better than second) over seeds, 95% bootstrap interval; filled: significant "
               "after Holm (comparisons.csv).")
    return (f"<details><summary>Pairwise comparisons: {len(compared)}, of which {significant} significant</summary>"
            + _figure(png, caption) + "</details>")


def ranks_html(run: RunReport) -> str:
    """Each objective's mean rank over datasets per metric, with its bootstrap interval (ranks.csv)."""
    ranks = run.ranks
    if ranks.empty or "rank" not in ranks:
        return ""
    table = ranks.assign(text=[f"{r.rank:.2f} [{r.rank_low:.2f}, {r.rank_high:.2f}]" if math.isfinite(r.rank_low)
                               else f"{r.rank:.2f}" for r in ranks.itertuples()])
    table = table.pivot(index="objective", columns="metric", values="text").reindex(
        index=list(dict.fromkeys(ranks["objective"])), columns=list(dict.fromkeys(ranks["metric"]))).fillna("–")
    datasets = int(ranks["datasets"].max())
    return ('<h2 id="ranks">Ranks across datasets</h2>' + table_html(table, run.outputs)
            + f'<p class="legend">Mean rank over {datasets} dataset(s) (1 = best), 95% bootstrap interval resampling '
              f"seeds within each dataset and objective (ranks.csv).</p>")


# --- problems and notes ----------------------------------------------------------------------------

def problems_html(run: RunReport) -> str:
    """Every problem the run recorded, then every value a metric declared unavailable, and why."""
    parts = []
    if run.problems:
        parts.append(f'<p class="warn">{len(run.problems)} problem(s):</p><ul class="problems">'
                     + "".join(f"<li>{_e(p)}</li>" for p in run.problems) + "</ul>")
    else:
        parts.append('<p class="ok">No problems recorded: no diverged seeds, metric errors, out-of-memory retries '
                     'or missing cells.</p>')
    records = run.records
    if "note" in records and not records.empty:
        noted = records[records["note"].fillna("").astype(str) != ""]
        if not noted.empty:
            grouped = noted.groupby(["dataset", "objective", "metric", "note"], sort=False)["seed"].apply(list)
            parts.append("<p>Values not available, and why:</p><ul class=\"problems\">" + "".join(
                f"<li>{_e(d)}/{_e(o)} · <code>{_e(m)}</code> (seeds {_e(', '.join(map(str, seeds)))}): {_e(note)}</li>"
                for (d, o, m, note), seeds in grouped.items()) + "</ul>")
    return "".join(parts)


def _anchor(label: str) -> str:
    return "dataset-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in label)


def _e(value) -> str:
    return html.escape(str(value), quote=True)


@hookimpl
def benchbench_reporters():
    return [Html]
