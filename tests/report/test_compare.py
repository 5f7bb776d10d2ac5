"""``benchbench compare`` and ``benchbench report`` on real tiny runs.

Three runs of one suite (5 seeds, so that Mann-Whitney can reach significance after Holm): a
baseline, a second run of the same code, and a run where the ``gmmn`` objective's code was
changed (an injected bug: its generator loss is multiplied by zero, so its generator never learns;
the suite file and every configuration stay the same, only the plugin providing ``gmmn`` differs).
"""

from __future__ import annotations

import json
import shutil
from importlib.metadata import entry_points

import pandas as pd
import pytest
import yaml
from clirun import invoke

from benchbench import hookimpl, registry_with, run
from benchbench_plugins.objectives.gmmn import GMMN

SMALL = {"batch_size": 64, "hidden": [32, 32]}
SUITE = {
    "name": "cmp", "seeds": 5, "steps": 150,
    "eval": {"samples": 300, "every": 0, "curve_samples": 100, "plot_samples": 100},
    "datasets": {"ring": {}},
    "objectives": {"nonsaturating": {**SMALL, "critic_hidden": [32, 32]}, "gmmn": SMALL},
    "metrics": ["mmd", "sliced-wasserstein", "modes", "throughput"],
    "reporters": ["markdown", "latex", "html"],
    "execution": {"workers": 1},
}
NOISE = "99%"  # throughput on a shared 2-core machine varies by more than 10%: these tests judge quality


class StalledGMMN(GMMN):
    """The injected change: same name, same configuration, a generator that gets no gradient."""

    def generator_loss(self, critic, real, fake):
        return super().generator_loss(critic, real, fake) * 0.0


class Stalled:
    @hookimpl
    def benchbench_objectives(self):
        return [StalledGMMN]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    suite = root / "cmp.yaml"
    suite.write_text(yaml.safe_dump(SUITE))
    base = run(suite, out=root / "base").directory
    same = run(suite, out=root / "same").directory
    others = ",".join(e.name for e in entry_points(group="benchbench") if e.name != "gmmn")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENCHBENCH_PLUGINS", others)
        registry = registry_with([("stalled-gmmn", Stalled())])
    changed = run(suite, out=root / "changed", registry=registry).directory
    return {"base": base, "same": same, "changed": changed, "root": root}


def read_compare(directory) -> pd.DataFrame:
    table = pd.read_csv(directory / "compare.csv")
    return table.assign(verdict=table["verdict"].fillna(""))


def test_an_injected_regression_is_flagged_for_that_objective_only(runs, capsys):
    code, out, err = invoke(["compare", str(runs["base"]), str(runs["changed"]), "--fail-on", "regression",
                             "--threshold", NOISE], capsys)
    assert code == 1, err
    assert "regression(s)" in err
    table = read_compare(runs["changed"])
    quality = table[table["kind"] == "quality"]
    worse = quality[quality["verdict"] == "worse"]
    assert set(worse["objective"]) == {"gmmn"}
    assert {"mmd2", "sliced_w2"} <= set(worse["metric"])
    assert (worse["p_holm"] < 0.05).all() and worse["regression"].all()
    # mmd2 is "lower is better": it went up, and the whole interval of the change is above 0
    mmd = worse[worse["metric"] == "mmd2"].iloc[0]
    assert mmd["change"] > 0 and mmd["change_low"] > 0
    untouched = quality[quality["objective"] != "gmmn"]
    assert set(untouched["verdict"]) <= {"~", ""} and not untouched["regression"].any()
    assert "gmmn" in out and "worse" in out
    page = (runs["changed"] / "compare.html").read_text()
    assert "Regressions (" in page and "<script" not in page and "http" not in page.split("</title>", 1)[1]


def test_identical_code_flags_nothing(runs, capsys, tmp_path):
    code, out, err = invoke(["compare", str(runs["base"]), str(runs["same"]), "--fail-on", "regression",
                             "--threshold", NOISE, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    table = read_compare(tmp_path)
    assert not table["regression"].any()
    quality = table[table["kind"] == "quality"]
    assert len(quality) > 10 and set(quality["verdict"]) <= {"~", ""}
    assert (quality["change"] == 0).all()  # on one CPU machine the same code gives bit-identical cells
    assert set(table.loc[table["kind"] == "throughput", "metric"]) >= {"model_steps_per_s"}
    assert "0 worse, 0 better" in out


def test_runs_of_different_suites_are_refused(runs, capsys, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(runs["base"], other)
    resolved = yaml.safe_load((other / "suite.yaml").read_text())
    (other / "suite.yaml").write_text(yaml.safe_dump({**resolved, "name": "not-cmp"}, sort_keys=False))
    code, out, err = invoke(["compare", str(runs["base"]), str(other)], capsys)
    assert code == 2 and "different suites" in err and len(err.strip().splitlines()) == 1


def test_runs_configured_differently_are_refused(runs, capsys, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(runs["base"], other)
    resolved = yaml.safe_load((other / "suite.yaml").read_text())
    resolved["objectives"]["gmmn"]["lr"] = 1e-5
    (other / "suite.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    code, out, err = invoke(["compare", str(runs["base"]), str(other)], capsys)
    assert code == 2 and "objectives.gmmn.lr" in err and len(err.strip().splitlines()) == 1


def test_bad_threshold_is_one_line(runs, capsys):
    code, _, err = invoke(["compare", str(runs["base"]), str(runs["same"]), "--threshold", "ten"], capsys)
    assert code == 2 and "--threshold" in err


# --- benchbench report -----------------------------------------------------------------------------

REBUILT = ("records.csv", "curves.csv", "summary.csv", "comparisons.csv", "ranks.csv", "summary.md", "summary.tex")


def test_report_rebuilds_byte_identical_tables(runs, capsys, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(runs["base"], copy)
    before = {name: (copy / name).read_bytes() for name in REBUILT}
    for name in (*REBUILT, "report.html"):
        (copy / name).unlink()
    code, out, err = invoke(["report", str(copy)], capsys)
    assert code == 0, err
    assert {name: (copy / name).read_bytes() for name in REBUILT} == before
    assert (copy / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_report_with_other_reporters(runs, capsys, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(runs["base"], copy)
    code, _, err = invoke(["report", str(copy), "--reporters", "plots"], capsys)
    assert code == 0, err
    assert (copy / "plots" / "samples_ring.png").exists()


def test_report_refuses_another_schema_in_one_line(runs, capsys, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(runs["base"], copy)
    cell = sorted((copy / "cells").glob("*.json"))[0]
    document = json.loads(cell.read_text())
    cell.write_text(json.dumps({**document, "schema": 0}))
    code, _, err = invoke(["report", str(copy)], capsys)
    assert code == 2 and "schema 0" in err and len(err.strip().splitlines()) == 1


def test_report_of_a_directory_that_is_no_run(capsys, tmp_path):
    code, _, err = invoke(["report", str(tmp_path)], capsys)
    assert code == 2 and "not a run directory" in err
