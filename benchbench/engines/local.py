"""Run jobs on this machine: in this process, or in a pool of worker processes with one
intra-op thread each (oversubscribed threads make small models several times slower).

A sweep too big for one machine belongs on a distributed engine: jobs and cells are independent
and keyed, so such an engine only needs to call :func:`benchbench.train.trainer.run_job` for each.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import torch

from ..plan.cells import Job
from ..registry.components import Registry, default_registry
from ..train.trainer import JobOutcome, run_job
from .parent_watch import die_with_parent

Done = Callable[[Job, "JobOutcome | BaseException"], None]

_progress_queue = None  # set in each worker process


def default_workers(device: str, jobs: int) -> int:
    if torch.device(device).type == "cuda":
        return 1
    return max(1, min(os.cpu_count() or 1, jobs))


def execute(jobs: Sequence[Job], registry: Registry, workers: int, on_done: Done,
            progress: Callable[[int], None] | None = None) -> None:
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
    progress_queue = context.Queue()
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(progress_queue, threads, os.getpid())) as pool:
        pending = {pool.submit(_run_in_worker, job): job for job in jobs}
        try:
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress_queue, progress)
                for future in done:
                    job = pending.pop(future)
                    error = future.exception()
                    on_done(job, error if error is not None else future.result())
            _drain(progress_queue, progress)
        except BaseException:  # Ctrl-C, SIGTERM: stop the workers now; finished cells are already saved
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _init_worker(progress_queue, threads: int, parent_pid: int) -> None:
    global _progress_queue
    die_with_parent(parent_pid)
    _progress_queue = progress_queue
    torch.set_num_threads(threads)


def _run_in_worker(job: Job) -> JobOutcome:
    return run_job(job, default_registry(), _progress_queue.put)


def _drain(progress_queue, progress: Callable[[int], None] | None) -> None:
    while True:
        try:
            steps = progress_queue.get_nowait()
        except queue_module.Empty:
            return
        if progress is not None:
            progress(steps)
