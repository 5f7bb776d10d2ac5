"""A tiny image suite end to end through the command line (click's runner, in-process): digits and
stacked digits, the three objectives on DCGAN networks, a few steps and samples. The tables hold the
image metrics, with honest notes where 60 samples cannot support a number (FID, the classifier
score, KID's spread over subsets that are the whole sets), and the grids land in the run folder.
The feature classifiers are trained once, into a cache directory of this module (stacked digits
on a small training split to keep that cheap)."""

import math

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from benchbench.cli import cli

SAMPLES = 60  # > k of the k-NN metrics and >= KID's minimum subset, < the 64 feature dims of FID
OBJECTIVES = {"minimax", "nonsaturating", "gmmn"}
DCGAN = {"architecture": "dcgan", "channels": 4, "noise_dim": 8, "batch_size": 16}
SUITE = {
    "name": "tiny-images",
    "seeds": 1,
    "steps": 5,
    "eval": {"samples": SAMPLES, "every": 0, "curve_samples": 30, "plot_samples": 16},
    "datasets": {"digits": {}, "stacked-digits": {"size": 200, "test_size": 200}},
    "objectives": {name: dict(DCGAN) for name in sorted(OBJECTIVES)},
    # the pixel-space frechet and manifold are listed to check that images leave them to the feature metrics
    "metrics": {"fid": {}, "kid": {"subsets": 10}, "feature-manifold": {}, "classifier-score": {},
                "stacked-modes": {}, "classifier-accuracy": {}, "parzen": {}, "frechet": {}, "manifold": {}},
    "reporters": ["markdown", "grids"],
    "execution": {"workers": 1},
}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(run directory, stdout, summary.csv, cache directory) of one run of the tiny suite."""
    root = tmp_path_factory.mktemp("images-cli")
    suite = root / "tiny-images.yaml"
    suite.write_text(yaml.safe_dump(SUITE))
    out = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCHBENCH_CACHE", str(root / "cache"))
        result = CliRunner().invoke(cli, ["run", str(suite), "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    return out, result.output, pd.read_csv(out / "summary.csv"), root / "cache"


def rows(summary, dataset, metric):
    """The summary rows of one dataset and metric, one per objective (and the (data) reference)."""
    found = summary[(summary.dataset == dataset) & (summary.metric == metric)]
    assert set(found.objective) == OBJECTIVES | {"(data)"}, (dataset, metric, set(found.objective))
    return found


@pytest.mark.parametrize("dataset", ["digits", "stacked-digits"])
def test_tables_hold_the_image_metrics_as_numbers(run, dataset):
    _, stdout, summary, _ = run
    metrics = ["classifier_accuracy", "kid", "kid_subset_size", "parzen_ll", "parzen_ll_se",
               "parzen_sigma", "feature_precision", "feature_recall", "feature_density", "feature_coverage"]
    if dataset == "stacked-digits":
        metrics += ["stacked_modes", "stacked_mode_kl"]
    for metric in metrics:
        found = rows(summary, dataset, metric)
        assert found["mean"].map(math.isfinite).all() and not found["note"].fillna("").any(), (dataset, metric)
        assert f"| {metric} " in stdout or f" {metric} |" in stdout
    assert f"{dataset} - quality (mean ± 95% CI over seeds)" in stdout
    assert (rows(summary, dataset, "kid_subset_size")["mean"] == SAMPLES).all()
    modes = rows(summary, dataset, "stacked_modes")["mean"] if dataset == "stacked-digits" else None
    assert modes is None or modes.between(1, SAMPLES).all()


def test_the_digits_classifier_is_accurate_and_cached(run):
    _, _, summary, cache = run
    accuracy = rows(summary, "digits", "classifier_accuracy")["mean"]
    assert (accuracy > 0.95).all() and accuracy.nunique() == 1  # one classifier behind every row
    assert sorted(p.name.split("-")[0] for p in (cache / "classifiers").glob("*.pt")) == ["digits", "stacked"]


@pytest.mark.parametrize("dataset, dims, classes", [("digits", 64, 10), ("stacked-digits", 192, 1000)])
def test_too_few_samples_give_notes_not_numbers(run, dataset, dims, classes):
    _, stdout, summary, _ = run
    fid = rows(summary, dataset, "fid")
    assert fid["mean"].isna().all()
    assert fid["note"].str.contains(f"{SAMPLES} real, {SAMPLES} generated samples: need more than {dims}").all()
    score = rows(summary, dataset, "classifier_score")
    assert score["mean"].isna().all()
    assert score["note"].str.contains(f"fewer per split than the {classes} classes").all()
    assert f"n/a ({SAMPLES} real, {SAMPLES} generated samples: need more than {dims}" in stdout
    # KID subsets of all 60 samples are the whole sets: one value, and no spread over subsets
    kid_std = rows(summary, dataset, "kid_std")
    assert kid_std["mean"].isna().all() and kid_std["note"].str.contains("whole real and generated sets").all()


def test_pixel_space_frechet_and_manifold_leave_images_to_the_feature_metrics(run):
    _, _, summary, _ = run
    assert not {"frechet_distance", "precision", "recall", "density", "coverage"} & set(summary.metric)


def test_grids_land_in_the_run_folder(run):
    out, _, _, _ = run
    expected = {f"grid_{dataset}_{objective}.png" for dataset in ("digits", "stacked-digits")
                for objective in OBJECTIVES | {"_data_"}}
    found = {p.name for p in (out / "plots").glob("grid_*.png")}
    assert found == expected
    assert all((out / "plots" / name).read_bytes()[:8] == PNG for name in found)
    assert (out / "summary.md").read_text().count("n/a (") >= 2 * 3 * 4  # fid, classifier_score, kid_std; 4 rows
