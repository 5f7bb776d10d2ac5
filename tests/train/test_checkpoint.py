"""Checkpoints: a job interrupted and run again continues from its last checkpoint and writes the cells an
uninterrupted run writes (timings apart); a damaged checkpoint, or one of other settings or code, is refused in
one line and the job starts over; checkpoints go once the cells are written, unless the suite keeps them."""

import copy
import hashlib
import io
import json

import pytest
import torch

from benchbench import default_registry, parse_suite, run
from benchbench.train import checkpoint, trainer

SUITE = {
    "name": "resume",
    "seeds": 2,
    "steps": 23,
    "eval": {"samples": 120, "every": 4, "curve_samples": 50, "plot_samples": 10, "reference": False},
    "datasets": {"ring": {}},
    "objectives": {"flow": {"batch_size": 16, "hidden": [16], "ema": 0.9, "lr_schedule": "cosine", "warmup": 2,
                            "grad_clip": 1.0}},
    "metrics": ["modes", "kde-divergence"],
    "reporters": [],
    "execution": {"workers": 1, "checkpoint_every": 5},
}
TIMED = ("train_time_s", "eval_time_s", "model_steps_per_s", "samples_per_s", "gflop_per_s", "peak_memory_mb")


def suite(**execution):
    return parse_suite({**SUITE, "execution": {**SUITE["execution"], **execution}}, default_registry(), source="s")


def cells(directory):
    """Every cell file's content, timings apart (the samples too)."""
    found = {}
    for path in sorted((directory / "cells").glob("*.json")):
        d = json.loads(path.read_text())
        d["scores"] = {k: v for k, v in d["scores"].items() if k not in TIMED}
        found[path.name] = (d, path.with_suffix(".npy").read_bytes())
    return found


class Killed(BaseException):
    """Stands for a kill: nothing of the run handles it."""


def interrupted(monkeypatch, out, after_saves: int):
    """Run SUITE into ``out`` until ``after_saves`` checkpoints are written, then stop it dead."""
    save, saves = checkpoint.Checkpoints.save, []

    def save_then_die(self, step, training, finished=False):
        save(self, step, training, finished)
        saves.append(step)
        if len(saves) == after_saves:
            raise Killed
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint.Checkpoints, "save", save_then_die)
        with pytest.raises(Killed):
            run(suite(), out=out)
    assert not list((out / "cells").glob("*.json"))  # killed before any cell was written
    return saves


def counting_steps(monkeypatch):
    steps = []
    step = trainer.training_step
    monkeypatch.setattr(trainer, "training_step", lambda *a, **k: (steps.append(1), step(*a, **k))[1])
    return steps


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    run(suite(), out=out)
    return cells(out)


def test_a_killed_job_resumes_from_its_checkpoint_and_writes_the_same_cells(monkeypatch, tmp_path, uninterrupted):
    assert interrupted(monkeypatch, tmp_path, after_saves=2) == [5, 10]
    steps = counting_steps(monkeypatch)
    outcome = run(suite(), out=tmp_path)
    assert len(steps) == 1 + SUITE["steps"] - 10  # the FLOP count's step, then the steps after the checkpoint
    assert cells(tmp_path) == uninterrupted
    assert not any("checkpoint" in p for p in outcome.problems)
    assert not list((tmp_path / "checkpoints").glob("*"))  # deleted once the cells are written


@pytest.mark.parametrize("damage", ["truncated", "flipped", "other settings"])
def test_a_checkpoint_not_to_trust_is_refused_in_one_line_and_the_job_starts_over(monkeypatch, tmp_path,
                                                                                  uninterrupted, damage):
    interrupted(monkeypatch, tmp_path, after_saves=1)
    (path,) = (tmp_path / "checkpoints").glob("*.pt")
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif damage == "flipped":
        path.write_bytes(data[:-100] + bytes([data[-100] ^ 1]) + data[-99:])
    else:  # a whole checkpoint, as another code version would write it
        state = torch.load(io.BytesIO(data[len(checkpoint.MAGIC) + 65:]), weights_only=True)
        buffer = io.BytesIO()
        torch.save({**state, "fingerprint": "another version"}, buffer)
        payload = buffer.getvalue()
        path.write_bytes(checkpoint.MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    steps = counting_steps(monkeypatch)
    outcome = run(suite(), out=tmp_path)
    assert len(steps) == 1 + SUITE["steps"]  # from the start
    (line,) = {p.split(": ", 1)[1] for p in outcome.problems if "checkpoint" in p}  # one line, for every row
    assert str(path) in line and "started over" in line and "\n" not in line
    assert ("other settings" in line) == (damage == "other settings")
    expected = copy.deepcopy(uninterrupted)
    for d, _ in expected.values():  # the same cells, the warning among their problems apart
        d["problems"] = sorted({*d["problems"], line})
    again = cells(tmp_path)
    for d, _ in again.values():
        d["problems"] = sorted(d["problems"])
    assert again == expected


def test_the_final_weights_are_kept_when_the_suite_asks(tmp_path):
    run(suite(keep_weights=True, checkpoint_every="never"), out=tmp_path)
    (path,) = (tmp_path / "checkpoints").glob("*.pt")
    data = path.read_bytes()
    state = torch.load(io.BytesIO(data[len(checkpoint.MAGIC) + 65:]), weights_only=True)
    assert state["step"] == SUITE["steps"] and state["finished"]
    assert set(state["modules"]) == {"velocity"} and state["ema"]["updates"] == SUITE["steps"]
