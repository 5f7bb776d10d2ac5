"""A run killed part-way keeps its finished cells; resuming runs only the missing ones and gives
the same tables as an uninterrupted run. A run directory never takes in another suite's run."""

import os
import signal
import subprocess
import sys
import time

import pytest

from benchbench import ConfigError, run

pytestmark = pytest.mark.slow  # spawns processes (pip, Ray, killed runs)

TIMED = {"train_time_s", "model_steps_per_s", "samples_per_s", "peak_memory_mb", "gflop_per_s", "eval_time_s"}


@pytest.fixture
def slow(tiny):
    """Three jobs (the data reference, then two objectives) slow enough to be killed in between."""
    tiny.update(steps=400, datasets={"ring": {}}, metrics=["modes", "mmd"], reporters=["markdown"])
    tiny["objectives"] = {k: tiny["objectives"][k] for k in ("nonsaturating", "gmmn")}
    return tiny


def comparable(records):
    records = records[~records.metric.isin(TIMED)]
    return records.set_index(["dataset", "objective", "seed", "metric"])["value"].sort_index()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "killed"])
def test_killed_run_resumes_to_the_same_tables(slow, write_suite, tmp_path, how):
    suite = write_suite(slow)
    results = tmp_path / "results"
    process = subprocess.Popen([sys.executable, "-m", "benchbench", "run", str(suite), "--results", str(results),
                                "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(results.glob("tiny/*/cells/*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=30)
    (directory,) = results.glob("tiny/*")
    saved = len(list((directory / "cells").glob("*.json")))
    assert 0 < saved < 6, "the kill should land between the first and the last job"
    if how == signal.SIGTERM:
        assert process.returncode == 130 and "--resume" in stderr and "Traceback" not in stderr

    resumed = run(suite, resume=True, results_root=results)
    assert resumed.directory == directory and resumed.skipped_cells == saved
    uninterrupted = run(suite, out=tmp_path / "whole")
    assert comparable(resumed.records).equals(comparable(uninterrupted.records))
    assert len(resumed.records.cell.unique()) == 6


def test_resume_without_an_earlier_run_is_a_clear_error(slow, write_suite, tmp_path):
    with pytest.raises(ConfigError, match="no earlier run of suite 'tiny'"):
        run(write_suite(slow), resume=True, results_root=tmp_path)


def test_a_run_directory_never_takes_in_another_suite(slow, write_suite, tmp_path):
    slow.update(steps=2, metrics=[], reporters=[])
    run(write_suite(slow), out=tmp_path / "r")
    with pytest.raises(ConfigError, match=r"holds a run of a different suite \(differs in: steps\)"):
        run(write_suite(slow), out=tmp_path / "r", steps=3)
    before = sorted(os.listdir(tmp_path / "r" / "cells"))
    again = run(write_suite(slow), out=tmp_path / "r", workers=1)  # scheduling settings may change
    assert again.skipped_cells == 6 and sorted(os.listdir(tmp_path / "r" / "cells")) == before


def test_a_damaged_cell_file_is_run_again(slow, write_suite, tmp_path):
    slow.update(steps=2, metrics=[], reporters=[])
    first = run(write_suite(slow), out=tmp_path / "r")
    damaged = next((tmp_path / "r" / "cells").glob("*.json"))
    damaged.write_text('{"truncated": ')
    again = run(write_suite(slow), out=tmp_path / "r")
    assert again.skipped_cells == 5 and comparable(again.records).equals(comparable(first.records))
