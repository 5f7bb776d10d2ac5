"""Fashion-MNIST end to end on the real files, as Debian's ``dataset-fashion-mnist`` installs them in
/usr/share/datasets/fashion-mnist (recompressed: they pass by their content, not by the published
MD5s): a few training steps through the command line, the feature classifier's test accuracy, a
``(data)`` FID near 0, the sample grid. Skipped, with the reason, where the package is not installed
(``.ci/run`` installs it). Cheap to repeat: the decoded data and the trained classifier live in
pytest's cache directory (``.pytest_cache``), so only the first run decodes and trains them."""

from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from benchbench import default_registry, load_suite
from benchbench.api import datafiles
from benchbench.api.download import content_checksum, file_checksum, verify
from benchbench.cli import cli
from benchbench_plugins.datasets.images import FashionMnist

SYSTEM = datafiles.SYSTEM_DATASETS / "fashion-mnist"
needs_files = pytest.mark.skipif(not all((SYSTEM / f.name).is_file() for f in FashionMnist.files),
                                reason=f"no Fashion-MNIST files in {SYSTEM} (apt-get install dataset-fashion-mnist)")

SAMPLES = 300  # > the 64 feature dimensions of FID
ACCURACY_FLOOR = 0.90  # published small CNNs reach 90-93%; ours 0.9128 (README: Fashion-MNIST on a CPU)
DATA_FID_CEILING = 2.0  # fresh training images against the test split: 1.13 with 300 samples (small-sample bias)
SUITE = {
    "name": "fashion-e2e",
    "seeds": 1,
    "steps": 3,
    "eval": {"samples": SAMPLES, "every": 0, "curve_samples": 100, "plot_samples": 16},
    "datasets": {"fashion-mnist": {}},  # no root: found in the system's dataset directory (the skip makes sure)
    "objectives": {"nonsaturating": {"architecture": "dcgan", "channels": 4, "noise_dim": 8, "batch_size": 16}},
    "metrics": {"fid": {}, "classifier-accuracy": {}},
    "reporters": ["markdown", "grids"],
    "execution": {"workers": 1},
}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory, pytestconfig):
    """(run directory, summary.csv) of the suite, with the cache in pytest's cache directory."""
    root = tmp_path_factory.mktemp("fashion")
    (root / "suite.yaml").write_text(yaml.safe_dump(SUITE))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCHBENCH_CACHE", str(pytestconfig.cache.mkdir("benchbench-cache")))
        result = CliRunner().invoke(cli, ["run", str(root / "suite.yaml"), "--out", str(root / "run")])
    assert result.exit_code == 0, (result.output, result.exception)
    return root / "run", pd.read_csv(root / "run" / "summary.csv")


@needs_files
def test_the_system_files_pass_by_their_content():
    for file in FashionMnist.files:
        path = SYSTEM / file.name
        verify(path, file)  # raises unless the file or its content is the published one
        assert content_checksum(path) == file.content or file_checksum(path, "md5") == file.checksum


def metric(summary, name: str) -> dict[str, float]:
    rows = summary[(summary.dataset == "fashion-mnist") & (summary.metric == name)]
    return dict(zip(rows.objective, rows["mean"], strict=True))


@needs_files
def test_the_classifier_is_accurate_and_the_data_scores_near_zero(run):
    _, summary = run
    accuracy = metric(summary, "classifier_accuracy")
    assert set(accuracy) == {"(data)", "nonsaturating"} and min(accuracy.values()) >= ACCURACY_FLOOR, accuracy
    fid = metric(summary, "fid")
    assert 0 <= fid["(data)"] < DATA_FID_CEILING and fid["(data)"] < 0.1 * fid["nonsaturating"], fid  # 3 steps: far


@needs_files
def test_the_sample_grids_are_written(run):
    directory, _ = run
    for name in ("grid_fashion-mnist__data_.png", "grid_fashion-mnist_nonsaturating.png"):
        assert (directory / "plots" / name).read_bytes()[:8] == PNG


def test_the_cpu_suite_trains_the_six_objectives_at_equal_training_flops():
    suite = load_suite(Path(__file__).parents[2] / "suites" / "fashion-mnist-cpu.yaml", default_registry())
    assert {o.label for o in suite.objectives} == {"minimax", "nonsaturating", "gmmn", "flow", "ddpm", "vae"}
    assert suite.budget.unit == "flops" and [d.type for d in suite.datasets] == ["fashion-mnist"]
