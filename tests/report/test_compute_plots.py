"""Reports read against compute: curves against training FLOPs per model, and the quality-vs-compute
figure, from hand-made throughput records (train_flops, train_steps, flops_per_sample, nfe)."""

from __future__ import annotations

import dataclasses

import pandas as pd
from test_reporters import OUTPUTS, make_report, mixtures

from benchbench import Output, summarize
from benchbench_plugins.reporters import plots
from benchbench_plugins.reporters.html import Html, HtmlConfig, budget_text
from benchbench_plugins.reporters.plots import Plots, PlotsConfig

COMPUTE_OUTPUTS = {**OUTPUTS, **{o.name: o for o in (
    Output("train_flops", "throughput", "none", "FLOPs spent training each model", "job"),
    Output("train_steps", "throughput", "none", "training steps of each model", "job"),
    Output("flops_per_sample", "throughput", "lower", "FLOPs per generated sample", "job"),
    Output("nfe", "throughput", "none", "network evaluations per sample", "job"),
)}}
# a: cheap steps, many of them; b: steps 4x dearer, a quarter as many (equal FLOPs); b samples with 20 evaluations
COST = {"a": {"train_flops": 2e9, "train_steps": 4000, "flops_per_sample": 1e3, "nfe": 1},
        "b": {"train_flops": 2e9, "train_steps": 1000, "flops_per_sample": 2e4, "nfe": 20}}


def compute_report(tmp_path, budget=None):
    report = make_report(tmp_path, mixtures(), seeds=range(5), outputs=COMPUTE_OUTPUTS)
    cells = report.records[report.records["objective"] != "(data)"][["cell", "job", "dataset", "objective", "seed"]]
    extra = [(*cell, metric, value) for cell in cells.drop_duplicates().itertuples(index=False)
             for metric, value in COST[cell[3]].items()]
    records = pd.concat([report.records, pd.DataFrame(extra, columns=report.records.columns)], ignore_index=True)
    config = {"name": "toy", "seeds": list(range(5)), **(budget or {"steps": 20})}
    return dataclasses.replace(report, records=records, summary=summarize(records, COMPUTE_OUTPUTS),
                               suite_config=config)


def test_compute_points_hold_quality_with_its_interval_and_the_costs(tmp_path):
    report = compute_report(tmp_path)
    summary = report.summary[report.summary["dataset"] == "ring"]
    points = plots.compute_points(summary, ("fid", "jsd")).set_index("objective")
    assert list(points.index) == ["a", "b"] and set(points["metric"]) == {"jsd"}  # the first metric present
    assert abs(points.loc["a", "mean"] - 0.12) < 1e-12 and points.loc["a", "low"] < 0.12 < points.loc["a", "high"]
    assert points.loc["b", "train_flops"] == 2e9 and points.loc["b", "flops_per_sample"] == 2e4
    assert points.loc["b", "nfe"] == 20
    assert plots.compute_points(summary, ("fid",)).empty  # no such metric: no figure
    no_flops = summary[summary["metric"] != "train_flops"]
    assert plots.compute_points(no_flops, ("jsd",)).empty


def test_curves_against_flops_scale_each_objectives_steps_by_its_flops_per_step(tmp_path):
    report = compute_report(tmp_path, {"budget": {"flops": 2e9}})
    assert plots.flops_axis(report, "auto") and not plots.flops_axis(report, "steps")
    assert not plots.flops_axis(compute_report(tmp_path), "auto") and plots.flops_axis(compute_report(tmp_path), "flops")
    scale = plots.curve_flops(report, "ring")
    assert scale == {"a": 2e9 / 4000, "b": 2e9 / 1000}
    curves = report.curves[report.curves["dataset"] == "ring"]
    summary = report.summary[report.summary["dataset"] == "ring"]
    figure = plots.curves_figure("t", curves, summary, report.outputs, 100, scale)
    ax = figure.axes[0]
    assert ax.get_xlabel() == "training FLOPs per model"
    ends = sorted(line.get_xdata()[-1] for line in ax.get_lines() if len(line.get_xdata()) == 3)
    assert ends == [20 * 2e9 / 4000, 20 * 2e9 / 1000]  # step 20 of each: FLOPs per step x steps
    plots.plt.close(figure)


def test_plots_and_report_html_show_the_compute_figure_and_the_budget(tmp_path):
    report = compute_report(tmp_path, {"budget": {"flops": 2e9}})
    written = Plots(PlotsConfig()).report(report, tmp_path)
    assert {p.name for p in written} >= {"compute_ring.png", "compute_gaussian-1d.png", "curves_ring.png"}
    page = Html(HtmlConfig()).report(report, tmp_path)[0].read_text()
    assert "Final jsd against compute: training FLOPs per model" in page
    assert "2e+09 training FLOPs per model (each objective trains until it has spent them)" in page
    assert "against the training FLOPs per model spent so far" in page
    assert budget_text({"steps": 300}) == "300 generator steps per model"
    assert budget_text({"budget": {"seconds": 30}}).startswith("30 s of training per model")
