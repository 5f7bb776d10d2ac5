"""phases.csv: the runner's laps add up to the run's wall time, jobs' phases are summed, a line and an HTML section."""

import time

import pandas as pd

from benchbench import default_registry, parse_suite, run
from benchbench.report import phases
from benchbench.report.phases import JOBS, TOTAL, RunClock
from benchbench.train.phases import WORKER_START
from benchbench_plugins.reporters.time_spent import phases_html


def test_laps_add_up_to_the_total_and_a_workers_start_is_the_wait_for_the_first_job():
    clock = RunClock()
    time.sleep(0.02)
    clock.lap("planning")
    lap_start = time.time()
    time.sleep(0.03)  # the workers starting
    clock.add_job({"training": [0.5, 0.4, 1], WORKER_START: [0.0, 0.2, 1]}, time.time())
    clock.add_job({"training": [0.25, 0.2, 1]}, time.time())
    time.sleep(0.01)
    clock.lap(JOBS)
    frame = clock.frame().set_index(["scope", "phase"])
    laps = frame.loc["run"].drop(TOTAL)
    assert list(laps.index) == ["planning", WORKER_START, JOBS]
    assert abs(laps["wall_s"].sum() - frame.loc[("run", TOTAL), "wall_s"]) < 0.005
    assert 0.03 <= laps.loc[WORKER_START, "wall_s"] < laps.loc[WORKER_START, "wall_s"] + laps.loc[JOBS, "wall_s"]
    assert frame.loc[("jobs", "training"), "wall_s"] == 0.75 and frame.loc[("jobs", "training"), "count"] == 2
    worker = frame.loc[("jobs", WORKER_START)]
    assert worker["cpu_s"] == 0.2 and 0.03 <= worker["wall_s"] <= time.time() - lap_start


def test_the_line_names_the_laps_and_the_jobs_shares():
    frame = pd.DataFrame([("run", "planning", 1.0, 1.0, 1), ("run", JOBS, 8.0, 7.0, 1),
                          ("run", "reporter plots", 2.0, 2.0, 1), ("run", TOTAL, 11.0, 10.0, 1),
                          ("jobs", "training", 12.0, 12.0, 3), ("jobs", "final evaluation", 1.0, 1.0, 2),
                          ("jobs", "final evaluation/metric kde", 3.0, 3.0, 2)], columns=phases.COLUMNS)
    assert phases.line(frame) == ("time: 11.0 s (planning 1.0 s, jobs 8.0 s, reports 2.0 s; of the jobs' 16.0 "
                                  "worker-s: training 75%, final evaluation 25%); phases.csv")
    assert phases.line(pd.DataFrame(columns=phases.COLUMNS)) == ""


def test_a_run_writes_its_phases_and_the_html_report_shows_them(tiny, tmp_path):
    tiny.update(datasets={"ring": {}}, metrics=["mmd"], reporters=["markdown", "html"])
    tiny["objectives"] = {"gmmn": tiny["objectives"]["gmmn"]}
    outcome = run(parse_suite(tiny, default_registry(), source="tiny"), out=tmp_path / "r")
    written = phases.read(outcome.directory)
    assert written.equals(outcome.report.phases)
    laps = written[written["scope"] == "run"].set_index("phase")["wall_s"]
    assert {"planning", JOBS, "loading results", "tables", "reporter markdown", "reporter html"} <= set(laps.index)
    assert abs(laps.drop(TOTAL).sum() - laps[TOTAL]) < 0.05
    jobs = set(written.loc[written["scope"] == "jobs", "phase"])
    assert {"training", "data reference/metric mmd", "final evaluation/metric mmd"} <= jobs
    page = (outcome.directory / "report.html").read_text()
    assert 'id="time"' in page and "reporter markdown" in page and "metric mmd" in page
    assert "reporter html" not in page  # the page is written by that reporter, before its own time is known
    assert "no phases" in phases_html(outcome.report.__class__(**{**vars(outcome.report),
                                                                  "phases": pd.DataFrame()}))
