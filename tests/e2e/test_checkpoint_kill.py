"""A job killed with SIGKILL part-way through its training continues from its last checkpoint on --resume and
gives the records and curves of an uninterrupted run, timings apart."""

import io
import signal
import subprocess
import sys
import time

import pytest
import torch

from benchbench import run
from benchbench.train import checkpoint, trainer

pytestmark = pytest.mark.slow  # spawns a run and kills it

TIMED = {"train_time_s", "model_steps_per_s", "samples_per_s", "peak_memory_mb", "gflop_per_s", "eval_time_s"}
STEPS = 1500


def comparable(frame, columns):
    frame = frame[~frame.metric.isin(TIMED)]
    return frame.set_index(columns)["value"].sort_index()


def test_a_job_killed_mid_training_resumes_from_its_checkpoint_to_the_same_records(tiny, write_suite, tmp_path,
                                                                                   monkeypatch):
    tiny.update(steps=STEPS, seeds=2, datasets={"ring": {}}, metrics=["modes", "kde-divergence"], reporters=[])
    tiny["eval"].update(every=300, reference=False)
    tiny["objectives"] = {"flow": {"batch_size": 32, "hidden": [32], "ema": 0.99, "grad_clip": 1.0}}
    tiny["execution"] = {"workers": 1, "checkpoint_every": "100 steps"}
    suite = write_suite(tiny)
    results = tmp_path / "results"
    process = subprocess.Popen([sys.executable, "-m", "benchbench", "run", str(suite), "--results", str(results),
                                "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(results.glob("tiny/*/checkpoints/*.pt")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    (directory,) = results.glob("tiny/*")
    assert not list(directory.glob("cells/*.json")), "the kill should land during training"
    (saved,) = directory.glob("checkpoints/*.pt")
    data = saved.read_bytes()
    step = torch.load(io.BytesIO(data[len(checkpoint.MAGIC) + 65:]), weights_only=True)["step"]
    assert 0 < step < STEPS

    steps = []
    training_step = trainer.training_step
    monkeypatch.setattr(trainer, "training_step", lambda *a, **k: (steps.append(1), training_step(*a, **k))[1])
    resumed = run(suite, resume=True, results_root=results)
    assert resumed.directory == directory and len(steps) == 1 + STEPS - step  # the FLOP count, then what was left
    assert not list(directory.glob("checkpoints/*.pt"))
    monkeypatch.undo()
    whole = run(suite, out=tmp_path / "whole")
    assert set(resumed.records.objective) == {"flow", "flow.raw"}
    for frame, columns in (("records", ["objective", "seed", "metric"]),
                           ("curves", ["objective", "seed", "step", "metric"])):
        pd_resumed, pd_whole = (comparable(getattr(r, frame), columns) for r in (resumed, whole))
        assert pd_resumed.equals(pd_whole), frame
