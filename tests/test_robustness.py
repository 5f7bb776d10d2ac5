"""A hostile user's tries: damaged run directories, killed runs, huge inputs, a full or read-only
disk, two runs on one directory. Each ends in one line and a run directory that still resumes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchbench import run


@pytest.fixture
def quick(tiny):
    """Two cells per job, two jobs: the reference of one dataset and one objective, no metrics."""
    tiny.update(steps=2, datasets={"ring": {}}, metrics=[], reporters=["markdown"],
                objectives={"gmmn": tiny["objectives"]["gmmn"]})
    return tiny


def _damage_json(text):
    return lambda cell: cell.write_text(text)


DAMAGES = {
    "garbage npy": lambda cell: cell.with_suffix(".npy").write_bytes(b"\x93NUMPY garbage"),
    "truncated npy header": lambda cell: cell.with_suffix(".npy").write_bytes(cell.with_suffix(".npy").read_bytes()[:20]),
    "pickled npy": lambda cell: np.save(cell.with_suffix(".npy"), np.array([{"a": 1}], dtype=object)),
    "integer npy": lambda cell: np.save(cell.with_suffix(".npy"), np.zeros((3, 2), dtype=np.int64)),
    "deleted npy": lambda cell: cell.with_suffix(".npy").unlink(),
    "npy a directory": lambda cell: (cell.with_suffix(".npy").unlink(), cell.with_suffix(".npy").mkdir()),
    "empty object": _damage_json("{}"),
    "a list": _damage_json("[]"),
    "NaN": _damage_json("NaN"),
    "truncated json": _damage_json('{"truncated": '),
    "scores text": lambda cell: cell.write_text(json.dumps({**json.loads(cell.read_text()), "scores": "oops"})),
    "score text": lambda cell: cell.write_text(json.dumps({**json.loads(cell.read_text()), "scores": {"x": "1"}})),
    "curves wrong": lambda cell: cell.write_text(json.dumps({**json.loads(cell.read_text()), "curves": [[1, 2]]})),
    "seed missing": lambda cell: cell.write_text(json.dumps({k: v for k, v in json.loads(cell.read_text()).items()
                                                            if k != "seed"})),
    "other cell": lambda cell: cell.write_text(json.dumps({**json.loads(cell.read_text()), "cell": "0" * 16})),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_cell_is_named_once_and_runs_again(quick, write_suite, tmp_path, damage):
    suite = write_suite(quick)
    first = run(suite, out=tmp_path / "r")
    cell = sorted((tmp_path / "r" / "cells").glob("*.json"))[0]
    DAMAGES[damage](cell)
    again = run(suite, out=tmp_path / "r")
    assert again.skipped_cells == 3 and not again.failed_jobs
    named = [p for p in again.problems if cell.stem in p]
    assert len(named) == 1 and "runs again" in named[0], again.problems
    assert len(again.records) == len(first.records)
    third = run(suite, out=tmp_path / "r")  # repaired: nothing left to run, nothing to warn about
    assert third.skipped_cells == 4 and not any(cell.stem in p for p in third.problems)


# ---- workers die with their run ----------------------------------------------------------------

def _children(pid):
    """Pids of the live (not zombie) processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers through /proc")
def test_a_killed_run_takes_its_workers_and_resource_tracker_with_it(tiny, write_suite, tmp_path):
    """One worker trains a long job when the run is killed, the other waits for work (the fast
    jobs are done): both must end within seconds, and so must the resource tracker."""
    tiny.update(steps=500, seeds=1, datasets={"ring": {}}, metrics=[], reporters=[], execution={"workers": 2},
                objectives={"nonsaturating": {"batch_size": 4096, "hidden": [256, 256]}, "gmmn": {"batch_size": 8}})
    tiny["eval"].update(every=0)
    out = tmp_path / "r"
    main = subprocess.Popen([sys.executable, "-m", "benchbench", "run", str(write_suite(tiny)), "--out", str(out),
                             "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("cells/*.json"))) < 2 and time.monotonic() < deadline:  # gmmn and (data) done
            time.sleep(0.1)
        children = _children(main.pid)
        assert len(children) >= 3, children  # two workers and the resource tracker
    finally:
        main.kill()
        main.wait()
    deadline = time.monotonic() + 5
    while any(map(_alive, children)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in children if _alive(pid)]
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running {time.monotonic() - deadline + 5:.1f} s after their run was killed"
