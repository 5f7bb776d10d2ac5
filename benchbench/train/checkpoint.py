"""Training state that survives a kill: a job's checkpoint, ``checkpoints/<job key>.pt`` in the run directory.

Every ``execution.checkpoint_every`` (steps or wall time, :mod:`benchbench.config.checkpoints`) the trainer
writes, atomically (a temporary file renamed over the old one), everything its loop carries from one step
to the next (:class:`Resumable`): the networks' weights and buffers, the EMA weights, each optimizer's state
(the learning rate schedule is a function of the step), every random stream still in use (the members'
"train" and "loss" streams; the others are made afresh at each use), the step, the curves so far with the
loss sums since the last curve point, divergence marks, problems, the clocks, and the lower rungs of a
budget ladder scored so far. A job given its directory
(:attr:`benchbench.plan.cells.Job.checkpoints`) resumes from the checkpoint it finds there, so a job killed
(even with SIGKILL) and run again (``--resume``) writes the cells an uninterrupted run writes, timings apart.

A checkpoint is trusted only whole and only by the same job: the file starts with a header and the SHA-256
of its payload, and the payload carries a fingerprint of the job's cells, its execution settings, torch's
version and the source of benchbench and of the job's plugins. A damaged or truncated file, or one written
for other settings or by other code, is refused in one line (among the job's problems) and the job starts
over. Once the job's cells are written the runner deletes it (:func:`discard`), unless the suite keeps the
final weights (``execution.keep_weights``): then the job writes a last one when training ends.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..api.cache import atomic_write
from ..config.checkpoints import Interval, parse_interval
from ..plan.cells import Job, digest
from .ema import EMA
from .outcome import JobOutcome
from .schedule import Schedule
from .stack import Networks
from .timing import Stopwatch

MAGIC = b"benchbench checkpoint 1\n"
DIGEST_BYTES = 64  # the payload's SHA-256, hex
LOOP_FIELDS = ("losses", "diverged_at", "curves", "problems", "last_curve")  # of the trainer's LoopState


@dataclasses.dataclass
class Resumable:
    """What a job's training loop carries from step to step, by reference: saving reads it, resuming writes
    into it."""

    nets: Networks
    ema: EMA | None
    train_rng: Sequence[torch.Generator]
    loop: Any  # the trainer's LoopState (LOOP_FIELDS)
    schedule: Schedule
    train_clock: Stopwatch
    eval_clock: Stopwatch
    rungs: list[JobOutcome] = dataclasses.field(default_factory=list)  # a ladder's lower rungs scored so far

    def state(self, step: int, finished: bool) -> dict[str, Any]:
        return {
            "step": step, "finished": finished,
            "modules": {name: module.state_dict() for name, module in self.nets.modules.items()},
            "optimizers": [optimizer.state_dict() for optimizer in self.nets.optimizers],
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": {"train": [g.get_state() for g in self.train_rng],
                    "loss": [g.get_state() for g in self.nets.loss_rng]},
            "loop": {name: getattr(self.loop, name) for name in LOOP_FIELDS},
            "next_curve": self.schedule.next_curve,
            "rungs": [outcome.state() for outcome in self.rungs], "next_rung": self.schedule.next_rung,
            "seconds": {"train": self.train_clock.elapsed(), "eval": self.eval_clock.elapsed()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        for name, module in self.nets.modules.items():
            module.load_state_dict(state["modules"][name])
        for optimizer, saved in zip(self.nets.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        for streams, saved in ((self.train_rng, state["rng"]["train"]), (self.nets.loss_rng, state["rng"]["loss"])):
            for g, rng_state in zip(streams, saved, strict=True):
                g.set_state(rng_state)
        loop = state["loop"]
        self.loop.losses.copy_(loop["losses"])
        self.loop.diverged_at.copy_(loop["diverged_at"])
        self.loop.curves[:] = [[tuple(point) for point in curve] for curve in loop["curves"]]
        self.loop.problems[:] = list(loop["problems"])
        self.loop.last_curve = int(loop["last_curve"])
        self.schedule.next_curve = int(state["next_curve"])
        self.rungs[:] = [JobOutcome.from_state(outcome) for outcome in state["rungs"]]
        self.schedule.next_rung = int(state["next_rung"])
        self.train_clock.seconds = float(state["seconds"]["train"])
        self.eval_clock.seconds = float(state["seconds"]["eval"])


class Checkpoints:
    """The checkpoint of one job: when one is due, writing it, and resuming from it (a job without a
    directory has none: nothing is ever due)."""

    def __init__(self, path: Path | None, fingerprint: str, interval: Interval | None, keep: bool):
        self.path, self.fingerprint, self.interval, self.keep = path, fingerprint, interval, keep
        self.last_write = time.monotonic()
        self.written = False  # by this process
        self.problem: str | None = None  # why a write failed (writes then stop)

    @classmethod
    def of(cls, job: Job, components: Sequence[object]) -> Checkpoints:
        """The checkpoint of ``job``, whose training runs the code of ``components`` (objective, dataset...)."""
        execution = job.suite.execution
        if job.checkpoints is None:
            return cls(None, "", None, False)
        return cls(Path(job.checkpoints) / f"{job.key}.pt", fingerprint(job, components),
                   parse_interval(execution.checkpoint_every), execution.keep_weights)

    def due(self, step: int) -> bool:
        """Whether to write a checkpoint after ``step``."""
        if self.path is None or self.interval is None or self.problem:
            return False
        if self.interval.unit == "steps":
            return step % int(self.interval.amount) == 0
        return time.monotonic() - self.last_write >= self.interval.amount

    def save(self, step: int, training: Resumable, finished: bool = False) -> None:
        """Write the state after ``step`` (a failure stops further writes and is among the job's problems)."""
        if self.path is None or self.problem:
            return
        buffer = io.BytesIO()
        torch.save({"fingerprint": self.fingerprint, **training.state(step, finished)}, buffer)
        payload = buffer.getvalue()
        try:
            atomic_write(self.path, MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
        except OSError as exc:
            self.problem = f"checkpoint {self.path} not written ({exc.strerror or exc}): the job cannot resume"
            training.loop.problems.append(self.problem)
            return
        self.written, self.last_write = True, time.monotonic()

    def save_final(self, step: int, training: Resumable) -> None:
        """When training ends: the final weights (``keep_weights``), or, when the job wrote checkpoints, the end
        of training, so that a kill during the final evaluation does not train again."""
        if self.keep or self.written:
            self.save(step, training, finished=True)

    def resume(self, training: Resumable) -> tuple[int, bool]:
        """(The step to continue after, whether training had finished) from this job's checkpoint, restored into
        ``training``; (0, False) when there is none, or none to trust (said among the job's problems)."""
        if self.path is None:
            return 0, False
        state, refused = self.read()
        if refused:
            training.loop.problems.append(refused)
            self.path.unlink(missing_ok=True)
        if state is None:
            return 0, False
        training.restore(state)
        return int(state["step"]), bool(state["finished"])

    def read(self) -> tuple[dict[str, Any] | None, str | None]:
        """(The saved state, None) or (None, why it is refused; None when there is no checkpoint)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"checkpoint {self.path} cannot be read ({exc.strerror or exc}): the job started over"
        damaged = f"checkpoint {self.path} is damaged or truncated: the job started over"
        start = len(MAGIC) + DIGEST_BYTES + 1
        if not data.startswith(MAGIC) or len(data) < start:
            return None, damaged
        payload = data[start:]
        if hashlib.sha256(payload).hexdigest().encode() != data[len(MAGIC):start - 1]:
            return None, damaged
        try:
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - whatever a bad payload raises, it is not trusted
            return None, damaged
        if not isinstance(state, dict) or state.get("fingerprint") != self.fingerprint:
            return None, (f"checkpoint {self.path} was written for other settings or by another code version: "
                          f"refused, the job started over")
        return state, None


def fingerprint(job: Job, components: Sequence[object]) -> str:
    """What a checkpoint must have been written by: the job's cells, the execution settings that change results,
    torch's version, and the source of benchbench and of the components' modules."""
    execution = job.suite.execution
    files = tuple(sorted({source_file(c) for c in components} - {""}))
    return digest({"cells": [c.key for c in job.cells], "precision": execution.precision,
                   "compile": execution.compile, "torch": torch.__version__, "code": source_digest(files)})


def source_file(component: object) -> str:
    """The file that defines ``component``'s class, or "" where there is none (a class Ray shipped to its worker
    by value, whose module has no file: then the source of benchbench alone is fingerprinted)."""
    try:
        return inspect.getsourcefile(type(component)) or ""
    except (TypeError, OSError):
        return ""


@functools.lru_cache(maxsize=32)
def source_digest(files: tuple[str, ...]) -> str:
    """SHA-256 of the source of benchbench and of ``files``."""
    package = Path(__file__).resolve().parent.parent
    paths = sorted(package.rglob("*.py")) + [Path(f) for f in files]
    sha = hashlib.sha256()
    for path in paths:
        sha.update(str(path.relative_to(package) if path.is_relative_to(package) else path.name).encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


def discard(job: Job) -> None:
    """Delete ``job``'s checkpoint once its cells are written, unless the suite keeps the final weights."""
    if job.checkpoints is not None and not job.suite.execution.keep_weights:
        (Path(job.checkpoints) / f"{job.key}.pt").unlink(missing_ok=True)
