"""Reports of runs that went wrong, and of plugins that supply hostile text: a run with no valid cell
still gets every report (report.html saying what is missing and why), a reporter that fails makes
`benchbench report` exit 1 naming it, a cell whose labels were edited is named and left out, and a
note or doc holding `|`, HTML or LaTeX specials can neither split a table cell nor inject markup."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from clirun import invoke

from benchbench import Metric, Output, Reporter, Unavailable, hookimpl, parse_suite, registry_with, run
from benchbench.report.reporting import rebuild
from benchbench_plugins.objectives.gan import NonSaturating
from benchbench_plugins.reporters.latex import table_tex

HOSTILE = 'a | b <script>alert(1)</script> & <b>bold</b> 50% $x_1$ #{}~^\\'


class AlwaysRaises(NonSaturating):
    name = "always-raises"

    def generator_loss(self, critic, real, fake):
        raise RuntimeError("this objective never trains")


class HostileNote(Metric):
    name = "hostile-note"
    outputs = (Output("hostile", "quality", "higher", f"a doc with {HOSTILE}"),)

    def compute(self, evaluation):
        return {"hostile": Unavailable(HOSTILE)}


class Broken(Reporter):
    name = "broken"

    def report(self, run, directory):
        raise ValueError("this reporter always fails")


SMALL = {"batch_size": 16, "hidden": [8], "critic_hidden": [8]}


def registry():
    plugin = type("Hostile", (), {
        "benchbench_objectives": staticmethod(hookimpl(lambda: [AlwaysRaises])),
        "benchbench_metrics": staticmethod(hookimpl(lambda: [HostileNote])),
        "benchbench_reporters": staticmethod(hookimpl(lambda: [Broken])),
    })
    return registry_with([("hostile", plugin)])


def quick(tiny, objectives, **extra):
    reg = registry()
    tiny.update({"steps": 2, "datasets": {"ring": {}}, "metrics": [], "reporters": [], "objectives": objectives,
                 **extra})
    tiny["eval"].update(every=0)
    return parse_suite(tiny, reg, source="tiny"), reg


def test_every_reporter_copes_with_no_valid_cell_and_the_page_says_what_is_missing_and_why(tiny, tmp_path):
    tiny["eval"]["reference"] = False
    suite, reg = quick(tiny, {"always-raises": SMALL})
    outcome = run(suite, out=tmp_path / "r", registry=reg)
    assert len(outcome.failed_jobs) == 1 and not any(tmp_path.glob("r/cells/*.json"))
    builtin = ["grids", "html", "latex", "markdown", "plots", "verdicts"]
    report, failed = rebuild(tmp_path / "r", reg, builtin)
    assert failed == []
    page = (tmp_path / "r" / "report.html").read_text()
    assert "No valid results in this run" in page
    for seed in (0, 1):
        assert (f"ring/always-raises seed {seed}: no result in {tmp_path / 'r' / 'cells'} (its job failed: "
                f"RuntimeError: this objective never trains)") in page
    assert "No results." in (tmp_path / "r" / "summary.md").read_text()


def test_a_reporter_that_fails_makes_report_exit_1_naming_it(tiny, tmp_path, capsys, monkeypatch):
    suite, reg = quick(tiny, {"nonsaturating": SMALL}, seeds=1)
    run(suite, out=tmp_path / "r", registry=reg)
    monkeypatch.setattr("benchbench.cli.default_registry", lambda: reg)
    code, out, err = invoke(["report", str(tmp_path / "r"), "--reporters", "markdown,broken"], capsys)
    assert code == 1
    assert "error: reporter 'broken' (plugin 'hostile') failed: ValueError: this reporter always fails" in err
    assert (tmp_path / "r" / "summary.md").exists()  # the other reports are written
    assert invoke(["report", str(tmp_path / "r"), "--reporters", "markdown"], capsys)[0] == 0


@pytest.mark.parametrize("field, value", [("objective", "(data)"), ("seed", 1), ("dataset", "elsewhere")])
def test_a_cell_whose_labels_were_edited_is_named_left_out_and_run_again(tiny, tmp_path, field, value):
    suite, reg = quick(tiny, {"nonsaturating": SMALL}, seeds=2, metrics=["modes"])
    first = run(suite, out=tmp_path / "r", registry=reg)
    (path,) = [p for p in (tmp_path / "r" / "cells").glob("*.json")
               if json.loads(p.read_text())["objective"] == "nonsaturating" and json.loads(p.read_text())["seed"] == 0]
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, field: value}))
    report, _ = rebuild(tmp_path / "r", reg)
    named = [p for p in report.problems if path.name in p]
    assert len(named) == 1 and "left out" in named[0], report.problems
    assert len(report.records) == len(first.records) - len(first.records[first.records.cell == path.stem])
    again = run(suite, out=tmp_path / "r", registry=reg)
    warned = [p for p in again.problems if path.stem in p]
    assert len(warned) == 1 and "runs again" in warned[0] and "but its key is that of ring/nonsaturating seed 0" in \
        warned[0], again.problems
    assert again.skipped_cells == 3 and len(again.records) == len(first.records)


def test_hostile_text_cannot_split_a_table_cell_or_inject_markup(tiny, tmp_path):
    suite, reg = quick(tiny, {"nonsaturating": SMALL}, seeds=2, metrics=["hostile-note", "modes"],
                       reporters=["markdown", "latex", "html"])
    run(suite, out=tmp_path / "r", registry=reg)
    markdown = (tmp_path / "r" / "summary.md").read_text()
    assert "<script>" not in markdown and "<b>" not in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    width = 0
    for line in rows:  # a table's header, then its rows: each as many cells as the header
        cells = len(re.split(r"(?<!\\)\|", line))
        if line.startswith("| objective"):
            width = cells
        assert cells == width, line  # a note's | splits no cell
    assert "a \\| b &lt;script&gt;" in markdown
    latex = (tmp_path / "r" / "summary.tex").read_text()
    assert "<script>" not in latex and "hostile" in latex  # its cells are "n/a", the note left to the other reports
    table = pd.DataFrame({"hostile": [f"1 ± 0 (n = 1; {HOSTILE})"]}, index=["nonsaturating"])
    row = table_tex(table, "ring", "quality", {}, "", "tiny")[8]
    assert row == ("nonsaturating & 1 $\\pm$ 0 (n = 1; a \\textbar{} b \\textless{}script\\textgreater{}alert(1)"
                   "\\textless{}/script\\textgreater{} \\& \\textless{}b\\textgreater{}bold\\textless{}/b"
                   "\\textgreater{} 50\\% \\$x\\_1\\$ \\#\\{\\}\\textasciitilde{}\\textasciicircum{}"
                   "\\textbackslash{}) \\\\")
    page = (tmp_path / "r" / "report.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
