"""The second example package, examples/benchbench-wgan-gp (a gradient penalty inside the
critic loss, randomness from the members' own streams), used as a user would: pip-installed
offline, run through `benchbench run` on ring and grid stacked and unstacked, twice, with
bit-identical per-seed records and curves, and tested with its own tests."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from example_packages import install, run

pytestmark = pytest.mark.slow  # spawns processes (pip, Ray, killed runs)

TIMED = {"train_time_s", "model_steps_per_s", "samples_per_s", "peak_memory_mb", "gflop_per_s", "eval_time_s"}
SUITE = {
    "name": "wgan-gp-tiny", "seeds": 2, "steps": 6,
    "eval": {"samples": 200, "every": 3, "curve_samples": 100, "plot_samples": 20, "reference": False},
    "datasets": {"ring": {}, "grid": {}},
    "objectives": {"wgan-gp": {"batch_size": 32, "hidden": [32, 32], "critic_hidden": [32, 32]}},
    "metrics": ["modes", "throughput"], "reporters": ["markdown"], "execution": {"workers": 1},
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return install("benchbench-wgan-gp", tmp_path_factory.mktemp("example"))


def train(installed, tmp_path, name: str, stack_seeds: bool) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(records, curves) of `benchbench run` on the tiny suite, values keyed per seed, timings left out."""
    suite = tmp_path / f"{name}.yaml"
    suite.write_text(yaml.safe_dump({**SUITE, "execution": {"workers": 1, "stack_seeds": stack_seeds}}))
    result = run(installed, "run", str(suite), "--out", str(tmp_path / name))
    assert result.returncode == 0, result.stderr
    keys = ["dataset", "objective", "seed", "metric"]
    records = pd.read_csv(tmp_path / name / "records.csv")
    curves = pd.read_csv(tmp_path / name / "curves.csv")
    rows = lambda frame, k: frame[~frame.metric.isin(TIMED)].sort_values(k)[[*k, "value"]].reset_index(drop=True)  # noqa: E731
    return rows(records, keys), rows(curves, [*keys[:3], "step", "metric"]), result.stdout + records.to_csv()


def test_trains_on_ring_and_grid_bit_identical_stacked_unstacked_and_across_runs(installed, tmp_path):
    stacked, stacked_curves, output = train(installed, tmp_path, "stacked", stack_seeds=True)
    again, again_curves, _ = train(installed, tmp_path, "again", stack_seeds=True)
    alone, alone_curves, _ = train(installed, tmp_path, "alone", stack_seeds=False)
    assert set(stacked.dataset) == {"ring", "grid"} and set(stacked.seed) == {0, 1}
    assert {"wasserstein_estimate", "modes_captured", "critic_loss", "generator_loss"} <= set(stacked_curves.metric)
    pd.testing.assert_frame_equal(stacked, again, check_exact=True)  # two identical runs
    pd.testing.assert_frame_equal(stacked_curves, again_curves, check_exact=True)
    pd.testing.assert_frame_equal(stacked, alone, check_exact=True)  # a seed alone = the same seed stacked
    pd.testing.assert_frame_equal(stacked_curves, alone_curves, check_exact=True)
    seeds = stacked_curves[stacked_curves.metric == "critic_loss"].groupby("seed").value.apply(list)
    assert seeds[0] != seeds[1]  # the seeds differ from each other
    assert "| wgan-gp |" in output and ",gflop_per_s," in output  # FLOPs counted through the penalty


def test_the_examples_own_tests_pass(installed):
    source, _ = installed
    result = run(installed, "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-disable", cwd=source)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "7 passed" in result.stdout
