"""Worker processes that run jobs, one job each at a time, and that fail alone.

Each worker is a spawned process with a pipe of its own to the run (no lock shared between
workers, so a worker killed in the middle of a message harms no other). The run hands a job to an
idle worker and reads, on that worker's pipe, its progress and then its outcome. A worker that
dies (the OOM killer's SIGKILL, a plugin's ``os._exit``, a crash in native code) loses only the job
it held: a fresh worker takes its place, the job is tried once more, and a second death fails it
with the exit code or signal and the likely cause. A job that runs past ``execution.job_timeout``
fails alone, its worker ended; one with no training step reported for :data:`STALL_WARNING_S` is
named in a warning line. Workers stay warm between calls of :meth:`WorkerPool.run` (a search's
selection and final phases), until :meth:`WorkerPool.close`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import multiprocessing
import os
import pickle
import signal
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

import torch

from ..plan.cells import Job
from ..registry.components import default_registry
from ..train.trainer import run_job
from .base import Done, Progress
from .failures import JobTimedOut, RemoteTraceback, WorkerDied, format_traceback
from .parent_watch import die_with_parent

STALL_WARNING_S = 300.0  # no training step reported for this long: a warning line naming the job
POLL_S = 0.2  # how often timeouts and stalls are looked at while every worker is busy
ATTEMPTS = 2  # a job whose worker dies is tried once more


@dataclasses.dataclass
class Worker:
    process: Any  # multiprocessing's SpawnProcess
    conn: Connection
    job: int | None = None  # index of the job it runs
    started: float = math.inf  # when it began the job (it says so once started up): timeouts count from there
    last_step: float = math.inf
    steps: int = 0  # member-steps reported: a job that reported all of them is scoring, not stalled
    warned: bool = False


class WorkerPool:
    """``size`` spawned worker processes with ``threads`` intra-op threads each, started as jobs need them."""

    def __init__(self, size: int, threads: int):
        self.size, self.threads = size, threads
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[Worker] = []

    def run(self, jobs: Sequence[Job], on_done: Done, progress: Progress | None, timeout: float = 0.0) -> None:
        """Run every job; ``on_done`` gets each outcome (or the exception it raised, or why its worker
        was lost) as it finishes. Interrupted, the workers are ended and the interruption re-raised."""
        todo = collections.deque(range(len(jobs)))
        deaths: collections.Counter[int] = collections.Counter()
        try:
            while todo or self._busy():
                self._hand_out(jobs, todo)
                wait([w.conn for w in self._busy()] + [w.process.sentinel for w in self._busy()], timeout=POLL_S)
                now = time.monotonic()
                for worker in self._busy():
                    index = worker.job
                    answer = self._read(worker, progress, now)
                    if answer is not None:
                        worker.job = None
                        on_done(jobs[index], answer)
                    elif not worker.process.is_alive():
                        self._replace(worker)
                        deaths[index] += 1
                        if deaths[index] < ATTEMPTS:
                            todo.appendleft(index)  # once more, in a fresh worker
                        else:
                            on_done(jobs[index], WorkerDied(worker.process.exitcode))
                    elif timeout and now - worker.started > timeout:
                        self._replace(worker)
                        on_done(jobs[index], JobTimedOut(timeout))
                    elif not worker.warned and now - worker.last_step > stall_warning(timeout) and training(
                            jobs[index], worker.steps):
                        worker.warned = True
                        job = jobs[index]
                        print(f"warning: {job.label} (seeds {', '.join(map(str, job.seeds))}): no training step "
                              f"reported for {now - worker.last_step:.0f} s (stalled? execution.job_timeout ends "
                              f"such a job)", file=sys.stderr, flush=True)
        except BaseException:  # Ctrl-C, SIGTERM: end the workers now; finished cells are already saved
            self.close()
            raise

    def close(self) -> None:
        """End every worker (idle ones are told to stop; busy ones are killed)."""
        for worker in self.workers:
            with contextlib.suppress(OSError, ValueError):
                if worker.job is None:
                    worker.conn.send(None)
        for worker in self.workers:
            worker.process.join(timeout=1 if worker.job is None else 0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self.workers = []

    def _busy(self) -> list[Worker]:
        return [w for w in self.workers if w.job is not None]

    def _hand_out(self, jobs: Sequence[Job], todo: collections.deque) -> None:
        while todo:
            idle = [w for w in self.workers if w.job is None]
            if not idle and len(self.workers) >= self.size:
                return
            worker = idle[0] if idle else self._start()
            index = todo.popleft()
            try:
                worker.conn.send(jobs[index])
            except (OSError, ValueError):  # it died while idle: a fresh one takes the job
                self._replace(worker)
                todo.appendleft(index)
                continue
            worker.job, worker.warned, worker.steps = index, False, 0
            worker.started = worker.last_step = math.inf

    def _start(self) -> Worker:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=serve, args=(theirs, self.threads, os.getpid()),
                                       name="benchbench-worker")
        process.start()
        theirs.close()
        worker = Worker(process, ours)
        self.workers.append(worker)
        return worker

    def _replace(self, worker: Worker) -> None:
        """End ``worker`` (dead, or to be ended) and forget it; a fresh one starts when a job needs it."""
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        worker.conn.close()
        worker.job = None
        self.workers.remove(worker)

    def _read(self, worker: Worker, progress: Progress | None, now: float) -> Any:
        """Every message ``worker`` has sent: progress is passed on; its answer (an outcome or an
        exception) returned; None while it runs, or when it died before answering."""
        try:
            while worker.conn.poll():
                kind, value = worker.conn.recv()
                if kind == "started":
                    worker.started = worker.last_step = now
                elif kind == "steps":
                    worker.last_step, worker.steps = now, worker.steps + value
                    if progress is not None:
                        progress(value)
                elif kind == "done":
                    return value
                else:  # "failed": the exception, with the worker's traceback as its cause
                    exc, text = value
                    exc.__cause__ = RemoteTraceback(text)
                    return exc
        except (EOFError, OSError, pickle.UnpicklingError):  # it died in the middle of a message, or cannot talk
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        return None


def training(job: Job, steps: int) -> bool:
    """Whether ``job`` still has training steps to report, having reported ``steps`` member-steps."""
    return job.objective is not None and steps < job.suite.steps * len(job.cells)


def stall_warning(timeout: float) -> float:
    """Seconds without a training step before the warning line: :data:`STALL_WARNING_S`, or half the timeout."""
    return min(STALL_WARNING_S, timeout / 2) if timeout else STALL_WARNING_S


def serve(conn: Connection, threads: int, parent_pid: int) -> None:
    """A worker process: run each job the run sends, until it sends None or goes away."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the run, which ends its workers
    torch.set_num_threads(threads)
    registry = default_registry()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(("started", None))
        answer = _run_in_worker(job, registry, conn)
        try:
            conn.send(answer)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:  # an outcome that cannot travel
            conn.send(_failed(exc))


def _run_in_worker(job: Job, registry, conn: Connection) -> tuple[str, Any]:
    try:
        return "done", run_job(job, registry, lambda steps: conn.send(("steps", steps)))
    except BaseException as exc:  # noqa: BLE001 - sys.exit in a plugin included: the job fails, the worker goes on
        return _failed(exc)


def _failed(exc: BaseException) -> tuple[str, Any]:
    """The answer for a job that raised ``exc``: the exception (its text if it cannot be pickled) and its traceback."""
    text = format_traceback(exc)
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - an exception that cannot travel is sent as its text
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    return "failed", (exc, text)

