"""Run jobs on this machine (:class:`LocalEngine`): in this process, or in a pool of worker
processes with one intra-op thread each (oversubscribed threads make small models several times
slower).

A sweep too big for one machine belongs on a distributed engine: jobs and cells are independent
and keyed, so such an engine only needs to call :func:`benchbench.train.trainer.run_job` for each.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue as queue_module
import signal
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import torch

from ..config.suite import Suite, load_suite
from ..plan.cells import Job
from ..plan.preflight import preflight
from ..registry.components import Registry, default_registry
from ..rundir.environment import environment
from ..train.step_cost import check_budget
from ..train.trainer import JobOutcome, run_job
from .base import Done, Progress
from .parent_watch import die_with_parent

_messages = None  # set in each worker process: the queue of its pid and its progress


class LocalEngine:
    """This machine: the suite checked against its memory and data files (preflight), jobs run in
    ``execution.workers`` processes (0: as many as cores and jobs allow, one on CUDA)."""

    def prepare(self, suite: str | Path | Suite, registry: Registry, device: str | None = None,
                **overrides: Any) -> Suite:
        if not isinstance(suite, Suite):
            suite = load_suite(suite, registry)
        suite = suite.with_overrides(device=device, **overrides)
        preflight(suite, registry)  # data files there, sizes that fit this machine
        check_budget(suite, registry)  # a FLOP or seconds budget pays for one step of every objective
        return suite

    def environment(self, registry: Registry, device: str) -> dict[str, Any]:
        return environment(registry, device)

    def execute(self, jobs: Sequence[Job], registry: Registry, on_done: Done, progress: Progress | None = None) -> None:
        if not jobs:
            return
        suite = jobs[0].suite
        execute(jobs, registry, suite.execution.workers or default_workers(suite.device, len(jobs)), on_done, progress)

    def close(self) -> None:
        """Nothing outlives :meth:`execute`: its pool is shut down when it returns or raises."""


def default_workers(device: str, jobs: int) -> int:
    if torch.device(device).type == "cuda":
        return 1
    return max(1, min(os.cpu_count() or 1, jobs))


def execute(jobs: Sequence[Job], registry: Registry, workers: int, on_done: Done,
            progress: Progress | None = None) -> None:
    """Run every job; ``on_done`` gets each outcome (or the exception it raised) as it finishes."""
    if workers <= 1 or len(jobs) <= 1 or registry is not default_registry():
        for job in jobs:  # in-process: also the way to run plugins that are not installed
            try:
                outcome = run_job(job, registry, progress)
            except Exception as exc:  # noqa: BLE001 - reported by on_done, the other jobs go on
                outcome = exc
            on_done(job, outcome)
        return

    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()  # from the workers: ("pid", pid) once, then ("steps", n) as they train
    pids: set[int] = set()
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(messages, threads, os.getpid())) as pool:
        pending = {pool.submit(_run_in_worker, job): job for job in jobs}
        try:
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(messages, progress, pids)
                for future in done:
                    job = pending.pop(future)
                    error = future.exception()
                    on_done(job, error if error is not None else future.result())
            _drain(messages, progress, pids)
        except BaseException:  # Ctrl-C, SIGTERM: stop the workers now; finished cells are already saved
            _drain(messages, None, pids)
            for pid in pids:
                with contextlib.suppress(OSError):  # already gone
                    os.kill(pid, signal.SIGTERM)
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _init_worker(messages, threads: int, parent_pid: int) -> None:
    global _messages
    die_with_parent(parent_pid)
    _messages = messages
    messages.put(("pid", os.getpid()))
    torch.set_num_threads(threads)


def _run_in_worker(job: Job) -> JobOutcome:
    return run_job(job, default_registry(), lambda steps: _messages.put(("steps", steps)))


def _drain(messages, progress: Progress | None, pids: set[int]) -> None:
    """Take every message the workers sent: their pids (to stop them on an interrupt) and progress."""
    while True:
        try:
            kind, value = messages.get_nowait()
        except queue_module.Empty:
            return
        if kind == "pid":
            pids.add(value)
        elif progress is not None:
            progress(value)
