"""The ``html`` (report.html) and ``latex`` (summary.tex) reporters on RunReports built by hand, and
report.html in a real browser (headless Chromium; skipped where it is not installed)."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import shutil
import subprocess
import time

import pytest
from test_reporters import OUTPUTS, TinyImages, make_report, mixtures

from benchbench import NoConfig, comparisons, ranks
from benchbench_plugins.reporters.html import Html, HtmlConfig
from benchbench_plugins.reporters.latex import Latex, escape
from benchbench_plugins.reporters.plots import Plots, PlotsConfig

PNG = b"\x89PNG\r\n\x1a\n"
FIVE = tuple(range(5))  # enough seeds for Mann-Whitney to reach significance: verdicts, so bold cells
ENVIRONMENT = {"created": "2026-01-02T03:04:05+00:00", "device": "cpu (test)", "torch": "2.x", "python": "3.x",
               "cpu_count": 2, "torch_threads": 1, "benchbench": "0.1.0", "platform": "Linux",
               "git": {"commit": "0123456789abcdef", "dirty": True}, "plugins": {"gan": {"version": "0.1.0"}}}


def full_report(tmp_path, seeds=FIVE):
    """Two mixtures and an image dataset, with environment, problems and an unavailable value."""
    report = make_report(tmp_path, {**mixtures(), "tiny-images": TinyImages(NoConfig())}, seeds=seeds)
    records = report.records.assign(note="")
    records.loc[(records["metric"] == "jsd") & (records["dataset"] == "tiny-images"), ["value", "note"]] = \
        (float("nan"), "no density for images")
    return dataclasses.replace(
        report, records=records, environment=ENVIRONMENT, wall_time_s=75.0,
        comparisons=comparisons(records, OUTPUTS), ranks=ranks(records, OUTPUTS),
        problems=["ring/a seed 1: diverged at step 10 (generator_loss became NaN or infinite); its metrics are "
                  "missing", "ring/b: out of memory with 4 stacked members on cuda: retried as 2 + 2"],
        suite_config={"name": "toy", "seeds": list(seeds), "steps": 20,
                      "eval": {"samples": 400, "every": 10, "curve_samples": 100},
                      "objectives": {"a": {"type": "gmmn"}, "b": {}}})


def images(page: str) -> list[str]:
    return re.findall(r'<img [^>]*src="([^"]+)"', page)


def test_page_is_self_contained_and_in_order(tmp_path):
    paths = Html(HtmlConfig()).report(full_report(tmp_path), tmp_path)
    assert paths == [tmp_path / "report.html"]
    page = paths[0].read_text(encoding="utf-8")
    assert "<script" not in page and not re.search(r'(src|href)="(https?:)?//', page)
    sources = images(page)
    # samples + curves + comparisons of 2 mixtures, 3 image grids + curves + comparisons of the images
    assert len(sources) == 3 * 2 + 3 + 1 + 1
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG)
    order = ["run directory", "seeds", "0123456789abcdef (with uncommitted changes)",
             "0:01:15", 'id="dataset-ring"', 'id="dataset-gaussian-1d"', 'id="dataset-tiny-images"',
             'id="ranks"', 'id="throughput"', 'id="problems"', "diverged at step 10", "out of memory",
             "no density for images"]
    positions = [page.index(text) for text in order]
    assert positions == sorted(positions)
    assert f'title="{OUTPUTS["jsd"].doc}"' in page  # column descriptions on hover ...
    assert f"<dd>{OUTPUTS['jsd'].doc}</dd>" in page  # ... and beneath


def test_figures_of_the_plots_reporter_are_embedded_only_when_newer_than_the_cells(tmp_path):
    report = make_report(tmp_path, mixtures(), seeds=(0, 1))
    cell = tmp_path / "cells" / "cell.json"
    cell.parent.mkdir()
    cell.write_text("{}")
    os.utime(cell, (time.time() - 100, time.time() - 100))
    Plots(PlotsConfig()).report(report, tmp_path)
    written = base64.b64encode((tmp_path / "plots" / "curves_ring.png").read_bytes()).decode()
    assert written in Html(HtmlConfig()).report(report, tmp_path)[0].read_text()
    os.utime(cell, (time.time() + 100, time.time() + 100))  # results newer than the plots: render again
    page = Html(HtmlConfig()).report(report, tmp_path)[0].read_text()
    assert written not in page and len(images(page)) == 4


def test_image_grids_are_upscaled_without_smoothing(tmp_path):
    page = Html(HtmlConfig(grid_width=300)).report(full_report(tmp_path), tmp_path)[0].read_text()
    grids = re.findall(r'<img class="grid" width="(\d+)"', page)
    assert len(grids) == 3  # (data), a, b
    # 8 x 8 images of 4 pixels with 1-pixel gaps: 39 pixels wide, shown 8 times larger (>= 300)
    assert {int(w) for w in grids} == {39 * 8}
    assert "image-rendering:pixelated" in page


def test_tied_best_cells_are_bold_where_verdicts_exist(tmp_path):
    report = full_report(tmp_path)
    page = Html(HtmlConfig()).report(report, tmp_path)[0].read_text()
    ring = page.split('id="dataset-ring"')[1].split("<h2")[0]
    divergence = ring.split("<h3>divergence</h3>")[1].split("</table>")[0]
    row_a = divergence.split("<td>a</td>")[1].split("</tr>")[0]
    row_b = divergence.split("<td>b</td>")[1].split("</tr>")[0]
    assert 'class="best"' in row_a and 'class="best"' not in row_b  # a has the lower jsd, 5 seeds each
    assert "Mann-Whitney" in ring  # the footnote says what bold means
    assert "<summary>Pairwise comparisons: 2, of which 2 significant</summary>" in ring  # jsd and modes_covered
    older = dataclasses.replace(report, summary=report.summary.drop(columns=["tied_best", "verdict"]))
    older_page = Html(HtmlConfig()).report(older, tmp_path)[0].read_text()
    assert 'class="best"' not in older_page and 'id="dataset-ring"' in older_page


def test_latex_escapes_special_characters():
    assert escape("a_b & 50% #1 $x {y} ~ ^ \\") == \
        r"a\_b \& 50\% \#1 \$x \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{}"
    assert escape("0.5 ± 0.1 –") == r"0.5 $\pm$ 0.1 --"


def test_latex_has_a_booktabs_table_per_dataset_and_group(tmp_path):
    path = Latex(NoConfig()).report(full_report(tmp_path), tmp_path)[0]
    assert path == tmp_path / "summary.tex"
    text = path.read_text(encoding="utf-8")
    # 3 datasets x (quality, divergence, theory, throughput); the training group is left out
    assert text.count(r"\begin{tabular}") == text.count(r"\toprule") == text.count(r"\bottomrule") == 12
    assert "generator\\_loss" not in text
    ring = text.split(r"\caption{ring: divergence")[1].split(r"\end{table}")[0]
    assert "\na & \\textbf{0.12 $\\pm$ 0.0196} \\\\\n" in ring  # a: lower jsd, significant over 5 seeds
    assert "\nb & 0.32 $\\pm$ 0.0196 \\\\\n" in ring
    assert r"\textit{(data)}" in ring and r"jsd $\downarrow$" in ring
    assert "±" not in text and "_" not in text.replace(r"\_", "")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_page_in_a_real_browser(tmp_path):
    """Headless Chromium loads the page with no console message and every image decoded; a
    screenshot is kept (``report.png`` beside the page)."""
    page = Html(HtmlConfig()).report(full_report(tmp_path), tmp_path)[0]
    probe = tmp_path / "probe.html"  # the page plus a script that records what the browser loaded
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", """<script>
addEventListener("load", () => { const all = [...document.images];
  document.body.dataset.images = all.length;
  document.body.dataset.loaded = all.filter(i => i.complete && i.naturalWidth > 0).length; });
</script></body>"""), encoding="utf-8")
    browser = ["chromium", "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
               "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]
    dom = subprocess.run([*browser, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<body data-images="(\d+)" data-loaded="(\d+)"', dom.stdout)
    assert found, dom.stdout[:500] + dom.stderr[-2000:]
    assert int(found[1]) == len(images(page.read_text())) > 0 and found[2] == found[1]
    assert "CONSOLE" not in dom.stderr, [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    shot = tmp_path / "report.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 20_000
