"""Reports read against compute: curves against training FLOPs per model, and the quality-vs-compute
figure, from hand-made throughput records (train_flops, train_steps, flops_per_sample, nfe)."""

from __future__ import annotations

import dataclasses

import pandas as pd
from test_reporters import OUTPUTS, make_report, mixtures

from benchbench import Output, describe_budget, summarize
from benchbench.stats.frontier import frontier
from benchbench_plugins.reporters import plots
from benchbench_plugins.reporters.html import Html, HtmlConfig
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
                               suite_config=config, frontier=frontier(records, report.curves, COMPUTE_OUTPUTS))


def test_a_single_budget_gives_one_point_per_objective_and_the_sampling_costs(tmp_path):
    report = compute_report(tmp_path)
    by_rung = report.frontier.by_rung.query("dataset == 'ring' and metric == 'jsd'").set_index("objective")
    assert set(by_rung["rung"]) == {0} and by_rung.loc["b", "train_flops"] == 2e9
    assert abs(by_rung.loc["a", "mean"] - 0.12) < 1e-12 and by_rung.loc["a", "ci95_low"] < 0.12
    sampling = report.frontier.sampling.query("dataset == 'ring' and metric == 'jsd'").set_index("objective")
    assert sampling.loc["b", "flops_per_sample"] == 2e4 and sampling.loc["b", "nfe"] == 20
    assert sampling.loc["a", "pareto"] and not sampling.loc["b", "pareto"]  # a: better jsd and cheaper samples
    kinds = [kind for kind, _ in plots.compute_figures(report, "ring")]
    assert kinds == ["compute", "sampling"] and plots.compute_figures(report, "ring", ("fid",)) == []
    no_flops = dataclasses.replace(report, frontier=frontier(report.records.query("metric != 'train_flops'"),
                                                             report.curves, COMPUTE_OUTPUTS))
    assert [kind for kind, _ in plots.compute_figures(no_flops, "ring")] == ["sampling"]


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


def test_plots_and_report_html_show_the_compute_figure_and_the_budget(tmp_path):
    report = compute_report(tmp_path, {"budget": {"flops": 2e9}})
    written = Plots(PlotsConfig()).report(report, tmp_path)
    assert {p.name for p in written} >= {"compute_ring.png", "compute_gaussian-1d.png", "curves_ring.png"}
    page = Html(HtmlConfig()).report(report, tmp_path)[0].read_text()
    assert "Score against training FLOPs per model at each budget rung" in page
    assert {p.name for p in written} >= {"sampling_ring.png"}
    assert "2e+09 training FLOPs per model (each objective trains until it has spent them)" in page
    assert "against the training FLOPs per model spent so far" in page
    assert describe_budget({"steps": 300}) == "300 training steps per model"
    assert describe_budget({"budget": {"seconds": 30}}).startswith("30 s of training per model")
