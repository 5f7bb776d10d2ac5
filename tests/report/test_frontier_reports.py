"""Reports across compute from a RunReport built by hand with budget rungs (records carrying
``rung`` and ``train_flops``): the quality-vs-FLOPs and sampling-cost figures, the ranks by rung,
crossovers, compute to a target and the still-improving marks in summary.md, report.html and the
CSV files; and a single-rung run, whose reports stay sensible."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_reporters import PNG, mixtures

from benchbench import NoConfig, Output, RunReport
from benchbench.report.reporting import write_reports
from benchbench.stats.frontier import frontier, mark_improving
from benchbench.stats.rungs import top_rung
from benchbench.stats.summary import compute_verdicts
from benchbench_plugins.reporters import frontier_text, tables
from benchbench_plugins.reporters.html import Html, HtmlConfig
from benchbench_plugins.reporters.latex import Latex
from benchbench_plugins.reporters.plots import Plots, PlotsConfig

OUTPUTS = {o.name: o for o in (
    Output("high_quality_pct", "quality", "higher", "percent of samples near a mode", range=(0.0, 100.0)),
    Output("jsd", "divergence", "lower", "Jensen-Shannon divergence", range=(0.0, math.log(2))),
    Output("train_flops", "throughput", "none", "FLOPs spent training each model", "job"),
    Output("flops_per_sample", "throughput", "lower", "FLOPs per generated sample", "job"),
    Output("nfe", "throughput", "none", "network evaluations per sample", "job"),
    Output("generator_loss", "training", "none", "mean generator loss"),
)}
FLOPS = (1e9, 3e9, 1e10, 3e10, 1e11)
SEEDS = range(5)
# jsd falls with log-compute at each objective's own rate; "gan" starts best and ends worst (crossovers),
# "flow" keeps improving to the end; "gmmn" flattens early
START_END = {"gan": (0.30, 0.25), "gmmn": (0.45, 0.12), "flow": (0.60, 0.03)}
SAMPLING = {"gan": (2e4, 1), "gmmn": (2e4, 1), "flow": (8e5, 40)}


def jsd(objective: str, fraction: float, seed: int) -> float:
    start, end = START_END[objective]
    return start + (end - start) * fraction + 0.002 * seed


def ladder_report(tmp_path, rungs=range(5), targets=None) -> RunReport:
    rows, curves = [], []
    top = max(rungs)
    for label in ("ring",):
        for objective in ("(data)", *START_END):
            for seed in SEEDS:
                cell = f"{label}/{objective}/{seed}"
                for rung in rungs:
                    fraction = rung / 4
                    if objective == "(data)":
                        scores = {"jsd": 0.02, "high_quality_pct": 99.0}
                    else:
                        value = jsd(objective, fraction, seed)
                        scores = {"jsd": value, "high_quality_pct": 100 * (1 - value / 0.7),
                                  "train_flops": FLOPS[rung], "flops_per_sample": SAMPLING[objective][0],
                                  "nfe": SAMPLING[objective][1]}
                    rows += [(cell, f"{label}/{objective}", label, objective, seed, m, v, "", rung)
                             for m, v in scores.items()]
                if objective != "(data)":
                    steps = range(0, 1001, 50)
                    flat = objective == "gmmn"
                    curves += [(cell, label, objective, seed, step, "jsd",
                                jsd(objective, min(step / 600, 1.0) if flat else step / 1000, seed) * (4 - top) / 4
                                + jsd(objective, min(step / 600, 1.0) if flat else step / 1000, seed) * top / 4)
                               for step in steps]
    records = pd.DataFrame(rows, columns=["cell", "job", "dataset", "objective", "seed", "metric", "value", "note",
                                          "rung"])
    curves = pd.DataFrame(curves, columns=["cell", "dataset", "objective", "seed", "step", "metric", "value"])
    found = compute_verdicts(top_rung(records), OUTPUTS)
    across = frontier(records, curves, OUTPUTS, targets, (found.summary, found.comparisons))
    return RunReport(suite="ladder", directory=tmp_path, records=records, curves=curves,
                     summary=mark_improving(found.summary, across.improving), outputs=OUTPUTS,
                     datasets={"ring": mixtures()["ring"]}, samples={}, comparisons=found.comparisons,
                     ranks=found.ranks, frontier=across, suite_config={"name": "ladder", "seeds": list(SEEDS)})


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    return ladder_report(tmp_path_factory.mktemp("ladder"), targets={"high_quality_pct": 90})


def test_the_ladder_has_the_crossovers_its_curves_were_built_with(ladder):
    pairs = set(zip(ladder.frontier.crossovers["metric"], ladder.frontier.crossovers["objective_a"],
                    ladder.frontier.crossovers["objective_b"]))
    assert ("jsd", "gan", "flow") in pairs and ("jsd", "gan", "gmmn") in pairs
    improving = ladder.frontier.improving.set_index("objective")["improving"]
    assert improving["flow"] and improving["gan"] and not improving["gmmn"]  # gmmn flat after 60% of training


def test_summary_md_has_ranks_by_rung_crossovers_targets_and_the_budget_footnote(ladder, tmp_path):
    text = tables.Markdown(NoConfig()).report(ladder, tmp_path)[0].read_text()
    across = text.split("### ranks by budget rung", 1)[1]
    header = across.split("\n")[2]
    assert header.startswith("| | 1e9 FLOPs | 3e9 FLOPs |") and "1e11 FLOPs" in header
    jsd_row = next(line for line in across.splitlines() if line.startswith("| jsd |"))
    assert jsd_row.split("|")[2].strip().startswith("**gan**") and jsd_row.split("|")[-2].strip().startswith("**flow**")
    assert "- jsd: gan beat flow at 1e10 FLOPs (rung 2), flow beat gan at 3e10 FLOPs (rung 3)" in text
    assert "### compute to reach a target" in text and "jsd ≤ 0.04" in text and "high_quality_pct ≥ 90" in text
    gan_targets = next(line for line in text.splitlines() if line.startswith("| gan |") and "not reached" in line)
    assert "not reached by the top rung (0/5 seeds reached)" in gan_targets
    assert "Targets of jsd: twice the (data) value." in text
    flow = [line for line in text.splitlines() if line.startswith("| flow |") and "±" in line]
    assert flow[0] == "| flow | **95.1 ± 0.561** |"  # high_quality_pct has no curve: no mark
    assert flow[1] == "| flow | **0.034 ± 0.00393 ↗** |"
    assert "the verdicts on these cells are about this budget" in text
    assert "### anytime score" in text


def test_plots_draw_quality_against_training_flops_and_the_sampling_pareto_set(ladder, tmp_path):
    written = {p.name: p for p in Plots(PlotsConfig()).report(ladder, tmp_path)}
    assert {"compute_ring.png", "sampling_ring.png"} <= set(written)
    assert all(p.read_bytes().startswith(PNG) for p in written.values())
    sampling = ladder.frontier.sampling.set_index(["metric", "objective"])
    assert sampling.loc[("jsd", "flow"), "pareto"] and sampling.loc[("jsd", "gmmn"), "pareto"]
    assert not sampling.loc[("jsd", "gan"), "pareto"]  # as cheap as gmmn, worse at the top rung


def test_compute_figure_draws_a_line_per_objective_through_the_rungs(ladder):
    from benchbench_plugins.reporters import frontier_plots
    figure = frontier_plots.compute_figure("t", ladder.frontier.by_rung, OUTPUTS, ["jsd"], ladder.frontier.targets)
    ax = figure.axes[0]
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 5]
    assert len(lines) == 3 and ax.get_xscale() == "log"
    assert list(lines[0].get_xdata()) == list(FLOPS)
    flat = [line.get_ydata()[0] for line in ax.get_lines() if len(line.get_xdata()) == 2]  # reference, target
    assert flat == pytest.approx([0.02, 0.04])


def test_report_html_and_the_csv_files_hold_the_frontier(ladder, tmp_path):
    page = Html(HtmlConfig()).report(ladder, tmp_path)[0].read_text()
    assert "Score against training FLOPs per model at each budget rung" in page
    assert "filled and joined: the Pareto set" in page
    assert "<h3>ranks by budget rung</h3>" in page and "<b>flow</b>" in page and "<h3>crossovers</h3>" in page
    assert "not reached by the top rung" in page
    report = ladder.__class__(**{**ladder.__dict__, "directory": tmp_path})
    write_reports(report, (), None)
    for name in ("crossovers.csv", "rung_summary.csv", "to_target.csv", "to_target_seeds.csv", "anytime.csv",
                 "improving.csv", "sampling.csv"):
        assert (tmp_path / name).is_file(), name
    assert np.isinf(pd.read_csv(tmp_path / "to_target.csv").query("objective == 'gan'")["median_flops"]).all()
    latex = Latex(NoConfig()).report(ladder, tmp_path)[0].read_text()
    assert r"$\nearrow$" in latex and "↗" not in latex


def test_a_single_rung_run_reports_without_rung_sections_and_without_breaking(tmp_path):
    single = ladder_report(tmp_path, rungs=(4,))
    assert single.frontier.rungs == 1
    assert frontier_text.ranks_table(single, "ring").empty and frontier_text.anytime_table(single, "ring").empty
    text = tables.Markdown(NoConfig()).report(single, tmp_path)[0].read_text()
    assert "### ranks by budget rung" not in text and "### crossovers" not in text
    assert "### compute to reach a target" in text and "≤ 1e11" in text  # flow's jsd meets 0.04 at its one rung
    written = {p.name for p in Plots(PlotsConfig()).report(single, tmp_path)}
    assert {"compute_ring.png", "sampling_ring.png"} <= written
    page = Html(HtmlConfig()).report(single, tmp_path)[0].read_text()
    assert "<h3>crossovers</h3>" not in page and "Pareto set" in page
