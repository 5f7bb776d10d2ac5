"""End to end through the command line, in-process and as a subprocess, as a user would."""

import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from clirun import invoke


def test_run_in_process_writes_every_file(tiny, write_suite, tmp_path, capsys):
    suite = write_suite(tiny)
    out = tmp_path / "run"
    code, stdout, stderr = invoke(["run", str(suite), "--out", str(out), "--seeds", "2", "--steps", "20"], capsys)
    assert code == 0, stderr
    for name in ("records.csv", "curves.csv", "summary.csv", "summary.md", "suite.yaml", "environment.json",
                 "comparisons.csv", "ranks.csv", "plots/probability_of_improvement.png"):
        assert (out / name).is_file(), name
    assert list((out / "plots").glob("samples_*.png")) and list((out / "plots").glob("curves_*.png"))
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["dataset", "objective", "metric", "mean", "std", "ci95_low", "ci95_high", "n", "note",
                                     "median", "median_low", "median_high", "iqm", "iqm_low", "iqm_high", "tied_best",
                                     "verdict", "still_improving"]
    assert {"(data)", "minimax", "nonsaturating", "gmmn"} == set(summary.objective)
    assert yaml.safe_load((out / "suite.yaml").read_text())["steps"] == 20
    assert "ring - quality (mean ± 95% CI over seeds)" in stdout and f"results: {out}" in stdout
    assert "No verdict for" in stdout  # 2 seeds cannot tell objectives apart, and the terminal says so
    assert "\ntime: " in stdout and "phases.csv" in stdout and (out / "phases.csv").is_file()  # where it went


@pytest.mark.slow
def test_run_as_a_subprocess(tiny, write_suite, tmp_path):
    tiny["execution"] = {"workers": 2}  # the process pool, as a user's run uses it
    tiny["datasets"] = {"ring": {}}
    suite = write_suite(tiny)
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "benchbench", "run", str(suite), "--out", str(out), "-q"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(str(out))
    records = pd.read_csv(out / "records.csv")
    assert len(records.cell.unique()) == 4 * 2  # (data) + 3 objectives, 2 seeds
    phases = pd.read_csv(out / "phases.csv").set_index(["scope", "phase"])
    assert phases.loc[("run", "start-up"), "cpu_s"] > 0 and phases.loc[("run", "worker start"), "wall_s"] > 0
    assert phases.loc[("jobs", "worker start"), "count"] == 2 and phases.loc[("jobs", "worker start"), "cpu_s"] > 0


@pytest.mark.parametrize("edit, args, message", [
    (None, ["--steps", "many"], "error: Invalid value for '--steps': 'many' is not a valid integer."),
    (None, ["--seeds", "0"], "error: --seeds: must be >= 1"),
    (None, ["--device", "tpu"], "error: --device: got 'tpu'; allowed: auto, cpu, cuda, cuda:N"),
    ({"steps": -3}, [], "tiny.yaml: steps: must be >= 1, got -3"),
    ({"objectives": {"nope": {}}}, [], "tiny.yaml: objectives.nope: unknown objective 'nope'; available: "),
    ({"datasets": {"ring": {"radius": "big"}}}, [], "tiny.yaml: datasets.ring.radius: expected a number, got 'big'"),
    ({"colour": "blue"}, [], "tiny.yaml: colour: unknown key; allowed: "),
])
def test_bad_input_exits_2_with_one_line(tiny, write_suite, tmp_path, capsys, edit, args, message):
    tiny.update(edit or {})
    suite = write_suite(tiny)
    code, stdout, stderr = invoke(["run", str(suite), "--out", str(tmp_path / "r"), *args], capsys)
    assert code == 2
    assert message in stderr and stderr.count("\n") == 1, stderr
    assert not (tmp_path / "r" / "cells").exists() or not list((tmp_path / "r" / "cells").iterdir())


def test_missing_suite_file_exits_2(tmp_path, capsys):
    code, _, stderr = invoke(["run", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "nope.yaml: no such suite file" in stderr and stderr.count("\n") == 1


def test_plugins_lists_distribution_version_and_components(capsys):
    code, stdout, _ = invoke(["plugins", "--params"], capsys)
    assert code == 0
    assert "gan  (benchbench 0.1.0; benchbench_plugins.objectives.gan)" in stdout
    assert "  objective: minimax" in stdout and "critic_steps = 1" in stdout
