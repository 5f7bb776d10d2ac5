"""The example third-party plugin, examples/benchbench-lsgan, used as a user would: pip-installed
(into a temporary target, so the test environment's plugins stay as they are), listed by
`benchbench plugins`, restricted with --plugins, run through `benchbench run` on its suite, and
tested with its own tests (which use benchbench.testing). Each command is a subprocess; the
restriction by $BENCHBENCH_PLUGINS alone is tested in-process in test_plugins.py."""

from __future__ import annotations

import json

import pytest
from example_packages import install, run

pytestmark = pytest.mark.slow  # spawns processes (pip, Ray, killed runs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(source copy, target directory) of examples/benchbench-lsgan, pip-installed offline."""
    return install("benchbench-lsgan", tmp_path_factory.mktemp("example"))


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
    assert "6 passed" in result.stdout
