"""A hostile user's tries: damaged run directories, killed runs, huge inputs, a full or read-only
disk, two runs on one directory. Each ends in one line and a run directory that still resumes."""

import json

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
