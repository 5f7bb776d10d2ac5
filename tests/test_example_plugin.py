"""The example third-party plugin, examples/benchbench-lsgan, used as a user would: pip-installed
(into a temporary target, so the test environment's plugins stay as they are), listed by
`benchbench plugins`, restricted with --plugins, run through `benchbench run` on its suite, and
tested with its own tests (which use benchbench.testing). Each command is a subprocess; the
restriction by $BENCHBENCH_PLUGINS alone is tested in-process in test_plugins.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "benchbench-lsgan"
SCRIPT = Path(sys.executable).parent / "benchbench"  # the console script beside this interpreter
TIMEOUT = 120  # seconds per command


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(source copy, target directory): the example copied out of the repository (a build writes
    build/ and *.egg-info next to the sources) and pip-installed offline into the target."""
    root = tmp_path_factory.mktemp("example")
    source, target = root / "benchbench-lsgan", root / "site"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info",
                                                                   ".benchmarks", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--no-cache-dir", "--target", str(target), str(source)],
                   check=True, capture_output=True, timeout=TIMEOUT)
    return source, target


def run(installed, *args: str, cwd: Path | None = None, restrict: str | None = None) -> subprocess.CompletedProcess:
    """A command with the example on the path (as after `pip install`), in a clean environment."""
    source, target = installed
    env = {k: v for k, v in os.environ.items() if k not in ("BENCHBENCH_PLUGINS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(target), BENCHBENCH_CACHE=str(target.parent / "cache"), MPLBACKEND="Agg",
               OMP_NUM_THREADS="1")  # as tests/conftest.py: tiny tensors, a shared machine
    if restrict is not None:
        env["BENCHBENCH_PLUGINS"] = restrict
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "benchbench"]
    if args[0] == "pytest":
        command = [sys.executable, "-m", "pytest"]
        args = args[1:]
    return subprocess.run([*command, *args], cwd=cwd or source, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def test_the_package_installs_its_module_and_entry_point(installed):
    _, target = installed
    (dist,) = target.glob("benchbench_lsgan-*.dist-info")
    assert (target / "benchbench_lsgan.py").is_file()
    assert "[benchbench]\nlsgan = benchbench_lsgan" in (dist / "entry_points.txt").read_text()


def test_benchbench_plugins_lists_the_example_and_plugins_restricts_loading(installed):
    """`--plugins` loads only the named entry points (it sets $BENCHBENCH_PLUGINS, which it
    overrides here); the others are listed as skipped, not imported."""
    result = run(installed, "--plugins", "lsgan,mixtures", "plugins", "--params", restrict="gan")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "lsgan  (benchbench-lsgan 0.1.0; benchbench_lsgan)\n  objective: lsgan\n" in out
    assert "fake_target = 0.0  (float) a: the critic's target for generated samples" in out
    assert "mixtures  (benchbench 0.1.0; benchbench_plugins.datasets.mixtures)\n  dataset: " in out
    assert "skipped: gan  (benchbench 0.1.0; benchbench_plugins.objectives.gan): not in $BENCHBENCH_PLUGINS" in out
    assert "\ngan  (" not in out and "failed:" not in out


def test_the_example_suite_runs_through_the_cli(installed, tmp_path):
    result = run(installed, "run", "suite.yaml", "--steps", "20", "--seeds", "2", "--workers", "1",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "| lsgan |" in result.stdout and "lsgan_critic_gap" in result.stdout  # the tables
    cells = [json.loads(p.read_text()) for p in (tmp_path / "run" / "cells").glob("*.json")]
    lsgan = sorted((c for c in cells if c["objective"] == "lsgan"), key=lambda c: c["seed"])
    assert [c["seed"] for c in lsgan] == [0, 1] and not any(c["problems"] for c in lsgan)
    for cell in lsgan:
        assert {"lsgan_critic_gap", "modes_captured", "log_likelihood", "model_steps_per_s"} <= set(cell["scores"])
        objective = cell["config"]["objective"]
        assert objective["plugin"] == "lsgan" and objective["version"] == "0.1.0"
        assert objective["fake_target"] == 0.0 and objective["hidden"] == [64, 64]
    assert "lsgan" in (tmp_path / "run" / "summary.md").read_text()


def test_the_examples_own_tests_pass(installed):
    source, _ = installed
    result = run(installed, "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-disable", cwd=source)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "5 passed" in result.stdout
