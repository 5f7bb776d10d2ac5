"""The built-in reporters on a RunReport built by hand: ``markdown`` (summary.md) and ``plots`` (PNGs)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from benchbench import Dataset, NoConfig, Output, RunReport, summarize
from benchbench_plugins.datasets.mixtures import Gaussian1d, Ring
from benchbench_plugins.reporters import plots, tables, verdicts

PNG = b"\x89PNG\r\n\x1a\n"
OBJECTIVES = ("(data)", "a", "b")
SEEDS = (0, 1, 2)
OUTPUTS = {o.name: o for o in (
    Output("modes_covered", "quality", "higher", "modes with a sample nearby"),
    Output("jsd", "divergence", "lower", "Jensen-Shannon divergence from densities"),
    Output("jsd_lower_bound", "theory", "none", "the critic's lower bound on the JSD"),
    Output("samples_per_s", "throughput", "higher", "generated samples per second", scope="job"),
    Output("generator_loss", "training", "none", "mean generator loss"),
)}
# Final values per objective: "(data)" scores best but never counts; a wins jsd, b wins modes_covered.
FINAL = {"modes_covered": {"(data)": 8.0, "a": 5.0, "b": 7.0},
         "jsd": {"(data)": 0.0, "a": 0.1, "b": 0.3},
         "jsd_lower_bound": {"(data)": 0.0, "a": 0.05, "b": 0.2},
         "samples_per_s": {"(data)": 1e6, "a": 2e4, "b": 3e4},
         "generator_loss": {"(data)": 0.0, "a": 0.7, "b": 0.6}}


class TinyImages(Dataset):
    """Random 4x4 grey images: no density, no modes."""

    name = "tiny-images"
    shape = (1, 4, 4)

    def sample(self, n, generator):
        return torch.rand(n, *self.shape, generator=generator)


def make_report(tmp_path, datasets: dict[str, Dataset], with_curves: bool = True, seeds=SEEDS,
                outputs=OUTPUTS) -> RunReport:
    records, curves, samples = [], [], {}
    for label, dataset in datasets.items():
        for objective in OBJECTIVES:
            for seed in seeds:
                cell = f"{label}/{objective}/{seed}"
                for metric, values in FINAL.items():
                    value = values[objective] + 0.01 * seed
                    records.append((cell, f"{label}/{objective}", label, objective, seed, metric, value))
                    if objective != "(data)" and with_curves:
                        curves += [(cell, label, objective, seed, step, metric, value * (1 + 100 * (20 - step)))
                                   for step in (0, 10, 20)]
                x = dataset.sample(400, torch.Generator().manual_seed(seed))
                samples[label, objective, seed] = x if objective == "(data)" else x * 1.1 + 0.05
    records = pd.DataFrame(records, columns=["cell", "job", "dataset", "objective", "seed", "metric", "value"])
    curves = pd.DataFrame(curves, columns=["cell", "dataset", "objective", "seed", "step", "metric", "value"])
    return RunReport(suite="toy", directory=tmp_path, records=records, curves=curves,
                     summary=summarize(records, outputs), outputs=outputs, datasets=datasets, samples=samples)


def mixtures():
    return {"ring": Ring(Ring.Config()), "gaussian-1d": Gaussian1d(Gaussian1d.Config())}


def table_rows(text: str, dataset: str, group: str) -> dict[str, list[str]]:
    """objective -> cells of the table of ``group`` under ``## dataset`` in summary.md."""
    section = text.split(f"## {dataset}\n", 1)[1].split("\n## ", 1)[0]
    table = section.split(f"### {group}\n", 1)[1].split("\n### ", 1)[0]
    rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


# --- markdown --------------------------------------------------------------------------------------

def test_markdown_has_a_table_per_dataset_and_group(tmp_path):
    paths = tables.Markdown(NoConfig()).report(make_report(tmp_path, mixtures()), tmp_path)
    assert paths == [tmp_path / "summary.md"]
    text = paths[0].read_text()
    assert text.startswith("# toy\n") and "95% CI half-width" in text and "n = 3 seeds" in text
    for dataset in ("ring", "gaussian-1d"):
        assert f"## {dataset}\n" in text
        for group in ("quality", "divergence", "theory", "throughput"):
            rows = table_rows(text, dataset, group)
            assert list(rows)[0] == "*(data)*" and set(rows) == {"*(data)*", "a", "b"}
    assert "### training" not in text and "generator_loss" not in text
    assert "*jsd*: Jensen-Shannon divergence from densities" in text


def test_markdown_bolds_the_tied_best_by_direction_never_the_reference(tmp_path):
    report = make_report(tmp_path, mixtures(), seeds=range(5))
    text = tables.Markdown(NoConfig()).report(report, tmp_path)[0].read_text()
    for dataset in ("ring", "gaussian-1d"):
        divergence, quality = table_rows(text, dataset, "divergence"), table_rows(text, dataset, "quality")
        assert divergence["a"][0].startswith("**") and "**" not in divergence["b"][0]  # lower is better
        assert quality["b"][0].startswith("**") and "**" not in quality["a"][0]  # higher is better
        assert not any("**" in cell for cell in table_rows(text, dataset, "theory")["a"])  # better: none
        for group in ("quality", "divergence", "theory", "throughput"):
            assert not any("**" in cell for cell in table_rows(text, dataset, group)["*(data)*"])
    assert ("**Bold**: tied-best, not significantly worse than the best objective (two-sided Mann-Whitney U test "
            "over seeds, Holm-corrected within each column, alpha = 0.05, n = 5 seeds).") in text
    assert "No verdict" not in text


def test_markdown_says_when_three_seeds_cannot_decide(tmp_path):
    """a and b are completely separated, but 3 vs 3 seeds cannot reach p < 0.05: no bold, and the
    table says why instead of silently marking nothing."""
    text = tables.Markdown(NoConfig()).report(make_report(tmp_path, mixtures()), tmp_path)[0].read_text()
    divergence = table_rows(text, "ring", "divergence")
    assert not any("**" in cell for row in divergence.values() for cell in row)
    assert ("No verdict for jsd: with 3 seeds no difference can reach significance (the smallest possible "
            "p-value is 0.1 before correction); run more seeds.") in text


def test_markdown_bolds_every_objective_tied_with_the_best(tmp_path):
    report = make_report(tmp_path, mixtures(), seeds=range(6))
    # b's jsd seeds overlap a's: a still has the best mean, b is not significantly worse
    jsd = (report.records["metric"] == "jsd") & (report.records["objective"] == "b")
    report.records.loc[jsd, "value"] = [0.1, 0.12, 0.14, 0.11, 0.16, 0.18] * 2
    report.summary = summarize(report.records, OUTPUTS)
    text = tables.Markdown(NoConfig()).report(report, tmp_path)[0].read_text()
    divergence = table_rows(text, "ring", "divergence")
    assert divergence["a"][0].startswith("**") and divergence["b"][0].startswith("**")


def test_markdown_shows_the_iqm_of_heavy_tailed_metrics(tmp_path):
    outputs = {**OUTPUTS, "jsd": Output("jsd", "divergence", "lower", "a heavy-tailed divergence", heavy_tailed=True)}
    report = make_report(tmp_path, mixtures(), seeds=range(5), outputs=outputs)
    text = tables.Markdown(NoConfig()).report(report, tmp_path)[0].read_text()
    row = report.summary[(report.summary["dataset"] == "ring") & (report.summary["objective"] == "a")
                         & (report.summary["metric"] == "jsd")].iloc[0]
    assert table_rows(text, "ring", "divergence")["a"][0] == (
        f"**IQM {row.iqm:.3g} [{row.iqm_low:.3g}, {row.iqm_high:.3g}]**")
    assert "jsd: heavy-tailed, so the interquartile mean with a 95% percentile-bootstrap interval." in text


def test_markdown_without_results(tmp_path):
    report = make_report(tmp_path, {})
    assert "No results." in tables.Markdown(NoConfig()).report(report, tmp_path)[0].read_text()


# --- plots -----------------------------------------------------------------------------------------

def assert_png(path, smallest=5_000, largest=600_000):
    data = path.read_bytes()
    assert data[:8] == PNG and smallest < len(data) < largest, (path, len(data))


def test_plots_write_samples_and_curves(tmp_path):
    paths = plots.Plots(plots.PlotsConfig()).report(make_report(tmp_path, mixtures()), tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["curves_gaussian-1d.png", "curves_ring.png", "samples_gaussian-1d.png", "samples_ring.png"]
    for path in paths:
        assert path.parent == tmp_path / "plots"
        assert_png(path)


def test_plots_of_images_and_without_curves(tmp_path):
    report = make_report(tmp_path, {"tiny": TinyImages(NoConfig())}, with_curves=False)
    paths = plots.Plots(plots.PlotsConfig(dpi=60)).report(report, tmp_path)
    assert [p.name for p in paths] == ["samples_tiny.png"]
    assert_png(paths[0], smallest=1_000)


def test_image_mosaic_tiles_and_scales():
    images = np.stack([np.full((1, 4, 4), v) for v in np.linspace(0, 2, 10)])
    mosaic = plots.image_mosaic(images, low=0.0, high=2.0, columns=8)
    assert mosaic.shape == (2 * 5 - 1, 8 * 5 - 1) and mosaic.min() == 0 and mosaic.max() == 1


def test_plot_limits_from_modes_and_quantiles():
    limits = plots.plot_limits(Ring(Ring.Config()), np.zeros((1, 2)))
    assert limits.shape == (2, 2) and np.allclose(limits[:, 0], -limits[:, 1]) and 1.0 < limits[0, 1] < 1.3
    data = np.random.default_rng(0).uniform(-3, 5, size=(2000, 1))
    low, high = plots.plot_limits(None, data)[0]
    assert low < -3 < 5 < high < 6
    assert plots.fraction_outside(np.array([[0.0], [10.0], [np.nan], [1.0]]), np.array([[-1.0, 2.0]])) == 0.5


def test_curve_stats_panels_and_scale():
    values = pd.DataFrame({"step": [0, 0, 0, 10, 10, 10], "value": [1.0, 2.0, 3.0, 5.0, 5.0, float("nan")]})
    stats = plots.curve_stats(values)
    assert list(stats["mean"]) == [2.0, 5.0] and list(stats["n"]) == [3, 2]
    assert stats["low"][0] < 2.0 < stats["high"][0]
    assert len(plots.thin(pd.DataFrame({"step": range(100)}), 10)) == 10
    curves = pd.DataFrame({"metric": ["generator_loss", "jsd_lower_bound", "samples_per_s", "jsd", "modes_covered"]})
    assert plots.curve_panels(curves, OUTPUTS) == [["modes_covered"], ["jsd", "jsd_lower_bound"], ["generator_loss"]]
    assert plots.use_log_scale(np.array([1e-3, 1.0])) and not plots.use_log_scale(np.array([0.1, 1.0]))
    assert not plots.use_log_scale(np.array([-1e-3, 1.0]))


@pytest.mark.parametrize("shape, kind", [((1,), "1d"), ((2,), "2d"), ((5,), "scatter"), ((3, 8, 8), "image")])
def test_sample_kind(shape, kind):
    assert plots.sample_kind(shape) == kind


def test_markdown_names_the_device_under_throughput(tmp_path):
    (tmp_path / "environment.json").write_text(json.dumps({"device": "cuda:0 NVIDIA H100", "torch": "2.13.0",
                                                           "cpu_count": 16}))
    text = tables.Markdown(NoConfig()).report(make_report(tmp_path, mixtures()), tmp_path)[0].read_text()
    throughput = text.split("## ring\n", 1)[1].split("### throughput\n", 1)[1].split("\n### ", 1)[0]
    assert "Device: cuda:0 NVIDIA H100 · torch 2.13.0 · 16 CPU cores" in throughput


# --- verdicts --------------------------------------------------------------------------------------

def test_verdicts_draw_probability_of_improvement(tmp_path):
    report = make_report(tmp_path, mixtures(), with_curves=False, seeds=range(5))
    paths = verdicts.ImprovementPlot(verdicts.VerdictsConfig()).report(report, tmp_path)
    assert paths == [tmp_path / "plots" / "probability_of_improvement.png"]
    assert_png(paths[0])
    everything = paths[0].stat().st_size
    only_jsd = verdicts.ImprovementPlot(verdicts.VerdictsConfig(metrics=("jsd",))).report(report, tmp_path)
    assert only_jsd == paths and paths[0].stat().st_size < everything
    assert not list((tmp_path / "plots").glob("*.tmp*"))  # written atomically, nothing left behind


def test_verdicts_without_pairs_write_nothing(tmp_path):
    report = make_report(tmp_path, {})
    assert verdicts.ImprovementPlot(verdicts.VerdictsConfig()).report(report, tmp_path) == []
    assert not (tmp_path / "plots").exists()
