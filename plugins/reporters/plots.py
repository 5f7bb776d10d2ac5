"""The ``plots`` reporter: PNGs under ``<run>/plots/``.

- ``samples_<dataset>.png``: one panel per objective (the ``(data)`` reference first) with the
  generated samples of the lowest seed over the true density: dots over log-density contours in
  2-D, a histogram under the density curve in 1-D, a grid of the first 64 samples for images.
- ``curves_<dataset>.png``: one panel per metric recorded during training, one line per objective
  (mean over seeds) with its 95% CI band; the critic's ``jsd_lower_bound`` is drawn dashed in the
  ``jsd`` panel, where it should stay below the density-based value. Against training steps, or
  (``curve_axis: flops``, the default for runs with a FLOP or seconds budget) against the training
  FLOPs per model spent so far: step x the cell's ``train_flops / train_steps`` (throughput metric).
- ``compute_<dataset>.png``: quality against training FLOPs per model, a line per objective through
  the budget rungs (band: 95% CI over seeds), log x, with the ``(data)`` reference and the targets;
  ``sampling_<dataset>.png``: quality at the top rung against FLOPs per generated sample, the
  Pareto set marked (:mod:`.frontier_plots`). Both need the throughput metric (train_flops).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd
import torch

from . import figures, frontier_plots
from benchbench import (
    REFERENCE,
    Dataset,
    Output,
    Reporter,
    RunReport,
    atomic_write,
    file_label,
    hookimpl,
    interval,
    param,
)

CURVE_GROUPS = ("quality", "divergence", "theory", "training")  # panel order; others follow
SKIPPED_GROUPS = ("throughput",)  # measured once at the end, not a curve
PAIRED = {"jsd_lower_bound": "jsd"}  # metric -> the metric whose panel it is drawn in (dashed)
LOG_SPAN = 12.0  # nats of log-density below the peak shown by the contours
GRID_POINTS = 240  # per axis of the density grid
IMAGES = 64  # samples in an image grid


@dataclasses.dataclass(frozen=True)
class PlotsConfig:
    dpi: int = param(110, "resolution of the PNG files (dots per inch)", ge=30, le=600)
    max_points: int = param(2000, "most points per panel: samples drawn, or steps per curve", ge=10)
    curve_axis: Literal["auto", "steps", "flops"] = param(
        "auto", "x axis of the metric curves: training steps, or training FLOPs per model; auto: FLOPs when the "
                "suite's budget is in FLOPs or seconds")
    compute_metrics: tuple[str, ...] = param((), "metrics of the quality-vs-compute figures, those the run has "
                                                 "(default: every quality and divergence metric with a direction)")
    processes: int = param(0, "processes that draw the figures at once (0: one per core this process may use; "
                              "1: this process alone); the files are the same", ge=0)


class Plots(Reporter):
    """Writes ``plots/samples_<dataset>.png``, ``plots/curves_<dataset>.png``,
    ``plots/compute_<dataset>.png``, ``plots/sampling_<dataset>.png`` and, for a search,
    ``plots/budget-<dataset>.png``."""

    name = "plots"
    Config = PlotsConfig

    def report(self, run: RunReport, directory: Path) -> list[Path]:
        folder = Path(directory) / "plots"
        makes, costs = {}, {}  # path -> draws the figure, its rough cost (panels)
        for path, make, cost in self.to_draw(run, folder):
            makes[path], costs[path] = make, cost
        try:
            drawn = figures.render_all(makes, self.config.dpi, self.config.processes, costs)
        except figures.FigureError as error:
            write_all(error.drawn)  # the figures that could be drawn
            raise
        return write_all(drawn)

    def to_draw(self, run: RunReport, folder: Path) -> list[tuple[Path, Callable, int]]:
        """(path, draws its figure, panels) of every figure of the run, in file order."""
        labels = list(dict.fromkeys([*run.datasets, *(d for d, _, _ in run.samples),
                                     *(run.curves["dataset"] if not run.curves.empty else [])]))
        found = []
        for label in labels:
            dataset = run.datasets.get(label)
            samples = {o: x for o, x in first_seed_samples(run.samples, label).items() if len(x)}  # plot_samples: 0
            if samples:
                found.append((folder / f"samples_{file_label(label)}.png", functools.partial(
                    samples_figure, f"{run.suite} · {label}", dataset, samples, self.config.max_points), len(samples)))
            curves = run.curves[run.curves["dataset"] == label] if not run.curves.empty else run.curves
            summary = run.summary[run.summary["dataset"] == label] if not run.summary.empty else run.summary
            panels = curve_panels(curves, run.outputs) if not curves.empty else []
            if panels:
                scale = (curve_flops(run, label) or None) if flops_axis(run, self.config.curve_axis) else None
                found.append((folder / f"curves_{file_label(label)}.png", functools.partial(
                    curves_figure, f"{run.suite} · {label}", curves, summary, run.outputs, self.config.max_points,
                    scale), len(panels)))
            for name, draw in compute_figures(run, label, self.config.compute_metrics):
                found.append((folder / f"{name}_{file_label(label)}.png", draw, len(draw.args[3])))  # a panel a metric
        for label, budget in (run.budget.groupby("dataset", sort=False) if not run.budget.empty else ()):
            found.append((folder / f"budget-{file_label(label)}.png", functools.partial(
                budget_figure, label, budget, run.outputs), 1))
        return found


def write_all(drawn: dict[Path, bytes]) -> list[Path]:
    """Write each PNG atomically (never a truncated file)."""
    for path, data in drawn.items():
        atomic_write(path, data)
    return list(drawn)


# --- search budgets ------------------------------------------------------------------------------

def budget_figure(dataset: str, budget: pd.DataFrame, outputs: dict[str, Output]):
    """Expected best selection score vs search budget (``budget.csv`` rows of one dataset): one curve
    and 95% band per objective, as in Lucic et al. 2018's figures."""
    metric = budget["metric"].iloc[0]
    figure, ax = figures.subplots(figsize=(5, 3.5))
    for objective, curve in budget.groupby("objective", sort=False):
        ax.plot(curve["budget"], curve["expected_best"], marker="o", markersize=3, label=objective)
        ax.fill_between(curve["budget"], curve["ci95_low"], curve["ci95_high"], alpha=0.2)
    ax.set_xlabel("budget (trials)")
    better = outputs[metric].better if metric in outputs else "none"
    direction = {"lower": " (lower is better)", "higher": " (higher is better)"}.get(better, "")
    ax.set_ylabel(f"expected best {metric}{direction}")
    ax.set_title(f"{dataset}: expected best vs search budget")
    ax.legend()
    figure.tight_layout()
    return figure


# --- compute -------------------------------------------------------------------------------------

def flops_axis(run: RunReport, axis: str) -> bool:
    """Whether curves are drawn against training FLOPs (``axis``: auto, steps or flops)."""
    if axis == "auto":
        return "budget" in run.suite_config and next(iter(run.suite_config["budget"]), "steps") != "steps"
    return axis == "flops"


def curve_flops(run: RunReport, dataset: str) -> dict[str, float]:
    """objective -> training FLOPs per model per step on ``dataset`` (median over its cells of
    ``train_flops / train_steps``); objectives without both records are left out."""
    records = run.records
    if records.empty:
        return {}
    rows = records[(records["dataset"] == dataset) & records["metric"].isin(["train_flops", "train_steps"])]
    wide = rows.pivot_table(index=["objective", "cell"], columns="metric", values="value", aggfunc="first")
    if not {"train_flops", "train_steps"} <= set(wide.columns):
        return {}
    ratio = (wide["train_flops"] / wide["train_steps"]).replace([np.inf, -np.inf], np.nan).dropna()
    return {o: float(v) for o, v in ratio.groupby(level="objective").median().items() if v > 0}


def compute_figures(run: RunReport, dataset: str, metrics: tuple[str, ...] = ()) -> list[tuple[str, Callable]]:
    """("compute", draw quality vs training FLOPs) and ("sampling", draw quality vs sampling cost with
    the Pareto set) of ``dataset`` (:mod:`.frontier_plots`), each where the run has what it draws;
    drawing is left to the caller (``html`` embeds a PNG the ``plots`` reporter already wrote)."""
    found = getattr(run, "frontier", None)
    figures = []
    if found is None:
        return figures
    title = f"{run.suite} · {dataset}"
    by_rung = found.by_rung[found.by_rung["dataset"] == dataset] if not found.by_rung.empty else found.by_rung
    if not by_rung.empty and np.isfinite(by_rung["train_flops"].astype(float)).any():
        chosen = frontier_plots.frontier_metrics(by_rung, run.outputs, metrics)
        targets = found.targets[found.targets["dataset"] == dataset] if not found.targets.empty else None
        if chosen:
            figures.append(("compute", functools.partial(frontier_plots.compute_figure, title, by_rung, run.outputs,
                                                         chosen, targets)))
    sampling = found.sampling[found.sampling["dataset"] == dataset] if not found.sampling.empty else found.sampling
    if not sampling.empty and np.isfinite(sampling["flops_per_sample"].astype(float)).any():
        chosen = frontier_plots.frontier_metrics(sampling, run.outputs, metrics)
        if chosen:
            figures.append(("sampling", functools.partial(frontier_plots.sampling_figure, title, sampling,
                                                          run.outputs, chosen)))
    return figures


# --- samples -------------------------------------------------------------------------------------

def first_seed_samples(samples: dict[tuple[str, str, int], torch.Tensor], dataset: str) -> dict[str, np.ndarray]:
    """objective -> samples of its lowest seed as float64 ``[n, *shape]``, the reference first."""
    seeds: dict[str, int] = {}
    for d, objective, seed in samples:
        if d == dataset and (objective not in seeds or seed < seeds[objective]):
            seeds[objective] = seed
    order = sorted(seeds, key=lambda o: o != REFERENCE)  # stable: otherwise first-seen order
    return {o: samples[dataset, o, seeds[o]].detach().cpu().double().numpy() for o in order}


def sample_kind(shape: tuple[int, ...]) -> str:
    """"1d", "2d", "image" (``(C, H, W)`` or ``(H, W)``) or "scatter" (first two coordinates)."""
    if len(shape) >= 2:
        return "image"
    return {1: "1d", 2: "2d"}.get(shape[0], "scatter")


def plot_limits(dataset: Dataset | None, reference: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """``[d, 2]`` axis limits: the modes' centres ± 4 stds, else the 0.5-99.5% quantiles of
    ``reference`` ``[n, d]``; widened by ``margin`` of the span on each side."""
    modes = dataset.modes() if dataset is not None else None
    if modes is not None:
        centers = modes.centers.reshape(len(modes.centers), -1).double().numpy()
        spread = 4 * modes.stds.double().numpy()[:, None]
        low, high = (centers - spread).min(0), (centers + spread).max(0)
    else:
        finite = reference[np.isfinite(reference).all(1)]
        if len(finite) == 0:
            low, high = -np.ones(reference.shape[1]), np.ones(reference.shape[1])
        else:
            low, high = np.quantile(finite, 0.005, axis=0), np.quantile(finite, 0.995, axis=0)
    pad = margin * np.maximum(high - low, 1e-6)
    return np.stack([low - pad, high + pad], axis=1)


def fraction_outside(points: np.ndarray, limits: np.ndarray) -> float:
    """Share of ``points`` ``[n, d]`` that are non-finite or outside ``limits`` ``[d, 2]``."""
    inside = np.isfinite(points).all(1) & ((points >= limits[:, 0]) & (points <= limits[:, 1])).all(1)
    return 1.0 - inside.mean() if len(points) else 0.0


def log_density(dataset: Dataset, points: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """``dataset.log_prob`` of ``points`` ``[n, *shape]``, in chunks, non-finite as -inf."""
    x = torch.as_tensor(points, dtype=torch.float32)
    with torch.no_grad():
        values = torch.cat([dataset.log_prob(part) for part in x.split(chunk)]).double().numpy()
    return np.where(np.isnan(values), -np.inf, values)


def clip_log_density(values: np.ndarray, span: float = LOG_SPAN) -> tuple[np.ndarray, float]:
    """``values`` clipped to ``[peak - span - 1, peak]`` (the floor lies below the lowest contour
    level, so it stays blank), and the peak."""
    finite = values[np.isfinite(values)]
    peak = float(finite.max()) if len(finite) else 0.0
    return np.clip(values, peak - span - 1, peak), peak


def image_mosaic(images: np.ndarray, low: float, high: float, columns: int = 8) -> np.ndarray:
    """``images`` ``[n, C, H, W]`` or ``[n, H, W]`` scaled from [low, high] to [0, 1] and tiled
    ``columns`` wide with 1-pixel white gaps: ``[rows, cols]`` (grey) or ``[rows, cols, 3]`` (RGB)."""
    if images.ndim == 3:
        images = images[:, None]
    images = images if images.shape[1] in (1, 3) else images[:, :1]
    images = np.clip((np.nan_to_num(images, nan=low) - low) / max(high - low, 1e-12), 0, 1)
    n, c, h, w = images.shape
    rows = math.ceil(n / columns)
    mosaic = np.ones((rows * (h + 1) - 1, columns * (w + 1) - 1, c))
    for i, image in enumerate(images):
        r, k = divmod(i, columns)
        mosaic[r * (h + 1): r * (h + 1) + h, k * (w + 1): k * (w + 1) + w] = image.transpose(1, 2, 0)
    return mosaic[..., 0] if c == 1 else mosaic


def samples_figure(title: str, dataset: Dataset | None, samples: dict[str, np.ndarray], max_points: int):
    """One row of panels, one per objective, for the samples of one dataset."""
    reference = samples.get(REFERENCE, np.concatenate(list(samples.values())))
    kind = sample_kind(reference.shape[1:])
    density = dataset is not None and dataset.has_log_prob and kind in ("1d", "2d")
    n = len(samples)
    figure, axes = figures.subplots(1, n, figsize=(2.7 * n, 3.0), layout="constrained", squeeze=False)
    if kind == "image":
        low, high = float(np.nanmin(reference)), float(np.nanmax(reference))
        for ax, (objective, x) in zip(axes[0], samples.items()):
            ax.imshow(image_mosaic(x[:IMAGES], low, high), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            _panel_title(ax, objective)
        figure.suptitle(f"{title}: first {IMAGES} samples (lowest seed)", fontsize=10)
        return figure
    limits = plot_limits(dataset, reference.reshape(len(reference), -1)[:, :2])[:2]
    grid = _density_grid(dataset, limits) if density and kind == "2d" else None
    rng = np.random.default_rng(0)
    for ax, (objective, x) in zip(axes[0], samples.items()):
        x = x.reshape(len(x), -1)[:, :2] if kind != "1d" else x.reshape(len(x), 1)
        outside = fraction_outside(x, limits)
        if kind == "1d":
            _density_1d(ax, dataset if density else None, x[:, 0], limits[0], objective)
        else:
            if grid is not None:
                levels = np.linspace(grid[3] - LOG_SPAN, grid[3], 13)
                ax.contourf(grid[0], grid[1], grid[2], levels=levels, cmap="Blues")
                ax.contour(grid[0], grid[1], grid[2], levels=levels[1::3], colors="steelblue", linewidths=0.5)
            shown = x[rng.permutation(len(x))[:max_points]] if len(x) > max_points else x
            ax.scatter(shown[:, 0], shown[:, 1], s=2.5, linewidths=0, alpha=0.7,
                       color="black" if objective == REFERENCE else "tab:red")
            ax.set_xlim(*limits[0]), ax.set_ylim(*limits[1])
            ax.set_aspect("equal", adjustable="box")
        if outside > 0:
            ax.text(0.02, 0.98, f"{_percent(outside)} off-plot", transform=ax.transAxes, va="top", fontsize=7,
                    color="tab:red", bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0, "pad": 1})
        ax.tick_params(labelsize=7)
        _panel_title(ax, objective)
    what = "" if not density else " (line: true density)" if kind == "1d" else " (contours: true log-density)"
    figure.suptitle(f"{title}: samples of the lowest seed{what}", fontsize=10)
    return figure


def _density_grid(dataset: Dataset, limits: np.ndarray):
    xs, ys = (np.linspace(*limits[i], GRID_POINTS) for i in range(2))
    gx, gy = np.meshgrid(xs, ys)
    values = log_density(dataset, np.stack([gx.ravel(), gy.ravel()], axis=1)).reshape(gx.shape)
    clipped, peak = clip_log_density(values)
    return gx, gy, clipped, peak


def _density_1d(ax, dataset: Dataset | None, x: np.ndarray, limits: np.ndarray, objective: str) -> None:
    finite, bins = x[np.isfinite(x)], 60
    weight = bins / ((limits[1] - limits[0]) * max(len(x), 1))  # density of all samples, off-plot ones too
    ax.hist(finite, bins=bins, range=tuple(limits), weights=np.full(len(finite), weight), alpha=0.6,
            color="grey" if objective == REFERENCE else "tab:red")
    if dataset is not None:
        grid = np.linspace(*limits, 400)
        ax.plot(grid, np.exp(log_density(dataset, grid[:, None])), color="black", linewidth=1)
    ax.set_xlim(*limits)


def _percent(fraction: float) -> str:
    text = f"{fraction:.0%}"
    return {"0%": "<1%", "100%": ">99%"}.get(text, text) if 0 < fraction < 1 else text


def _panel_title(ax, objective: str) -> None:
    if objective == REFERENCE:
        ax.set_title(f"{REFERENCE} reference", fontsize=9, style="italic")
    else:
        ax.set_title(objective, fontsize=9)


# --- curves --------------------------------------------------------------------------------------

def curve_panels(curves: pd.DataFrame, outputs: dict[str, Output]) -> list[list[str]]:
    """The metrics to draw, one list per panel (a metric, then those drawn with it), by group."""
    group = {m: outputs[m].group if m in outputs else "other" for m in dict.fromkeys(curves["metric"])}
    keep = [m for m, g in group.items() if g not in SKIPPED_GROUPS]
    group_rank, metric_rank = {g: i for i, g in enumerate(CURVE_GROUPS)}, {m: i for i, m in enumerate(outputs)}
    keep.sort(key=lambda m: (group_rank.get(group[m], len(group_rank)), group[m],
                             metric_rank.get(m, len(metric_rank)), m))
    return [[m, *(p for p in keep if PAIRED.get(p) == m)] for m in keep if PAIRED.get(m) not in keep]


def curve_stats(values: pd.DataFrame) -> pd.DataFrame:
    """Per step of ``values`` (step, value; one row per seed): mean, 95% CI low/high and n over
    the finite values."""
    rows = []
    for step, at_step in values.groupby("step", sort=True):
        finite = [v for v in at_step["value"].astype(float) if math.isfinite(v)]
        mean, _, low, high, n = interval(finite)
        rows.append((step, mean, low, high, n))
    return pd.DataFrame(rows, columns=["step", "mean", "low", "high", "n"])


def thin(stats: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """At most ``max_points`` rows, evenly spaced, first and last kept."""
    if len(stats) <= max_points:
        return stats
    return stats.iloc[np.unique(np.linspace(0, len(stats) - 1, max_points).round().astype(int))]


def use_log_scale(values: np.ndarray, decades: float = 2.0) -> bool:
    """True when the finite ``values`` are all positive and span more than ``decades``."""
    finite = values[np.isfinite(values)]
    return len(finite) > 0 and bool((finite > 0).all()) and finite.max() / finite.min() > 10**decades


def curves_figure(title: str, curves: pd.DataFrame, summary: pd.DataFrame, outputs: dict[str, Output],
                  max_points: int, flops_per_step: dict[str, float] | None = None):
    """A grid of panels, one per metric (see :func:`curve_panels`), for the curves of one dataset;
    against training FLOPs per model when ``flops_per_step`` (objective -> FLOPs per step, from
    :func:`curve_flops`) is given, leaving out objectives it lacks."""
    if flops_per_step is not None:
        curves = curves[curves["objective"].isin(list(flops_per_step))]
    panels = curve_panels(curves, outputs)
    objectives = sorted(dict.fromkeys(curves["objective"]), key=lambda o: o != REFERENCE)
    colors = {o: "black" if o == REFERENCE else f"C{i % 10}"
              for i, o in enumerate(o for o in objectives if o != REFERENCE)}
    colors[REFERENCE] = "black"
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes = figures.subplots(rows, columns, figsize=(3.3 * columns + 1.6, 2.5 * rows + 0.5),
                                layout="constrained", squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    has_reference_line = False
    for ax, metrics in zip(axes.flat, panels):
        in_panel = curves[curves["metric"].isin(metrics)]
        for metric, style in zip(metrics, ("-", "--", ":", "-.")):
            for objective in objectives:
                values = in_panel[(in_panel["metric"] == metric) & (in_panel["objective"] == objective)]
                if values.empty:
                    continue
                stats = thin(curve_stats(values), max_points)
                marker = "o" if len(stats) <= 25 else None  # a single point shows as a dot
                x = stats["step"] * flops_per_step[objective] if flops_per_step is not None else stats["step"]
                ax.plot(x, stats["mean"], style, color=colors[objective], linewidth=1.2,
                        marker=marker, markersize=3)
                ax.fill_between(x, stats["low"], stats["high"], color=colors[objective], alpha=0.2, linewidth=0)
        final = summary[(summary["objective"] == REFERENCE) & (summary["metric"] == metrics[0])]["mean"]
        scored = metrics[0] not in outputs or outputs[metrics[0]].group != "training"  # no losses for data
        if scored and len(final) and math.isfinite(float(final.iloc[0])):
            ax.axhline(float(final.iloc[0]), color="grey", linestyle=":", linewidth=1)
            has_reference_line = True
        if use_log_scale(in_panel["value"].astype(float).to_numpy()):
            ax.set_yscale("log")
        ax.set_title(metrics[0] + "".join(f"  (dashed: {m})" for m in metrics[1:2]), fontsize=9)
        ax.set_xlabel("step" if flops_per_step is None else "training FLOPs per model", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, linewidth=0.5)
    handles = [figures.line(color=colors[o], label=o) for o in objectives]
    if has_reference_line:
        handles.append(figures.line(color="grey", linestyle=":", label=f"{REFERENCE} final value"))
    figure.legend(handles=handles, loc="outside right upper", fontsize=8, title="objective", title_fontsize=8)
    figure.suptitle(f"{title}: metrics during training (mean over seeds, band: 95% CI)", fontsize=10)
    return figure


# --- files ---------------------------------------------------------------------------------------


def png(figure, dpi: int) -> bytes:
    """``figure`` rendered to PNG in memory: for files and for pages that embed it."""
    return figures.png(figure, dpi)


def save(figure, path: Path, dpi: int) -> Path:
    """Write ``figure`` as a PNG atomically (never a truncated file)."""
    atomic_write(path, png(figure, dpi))
    return path


@hookimpl
def benchbench_reporters():
    return [Plots]
