"""Run jobs on this machine (:class:`LocalEngine`): in this process, or in warm worker processes
with one intra-op thread each (oversubscribed threads make small models several times slower),
each job failing alone (:mod:`.workers`).

A sweep too big for one machine belongs on a distributed engine: jobs and cells are independent
and keyed, so such an engine only needs to call :func:`benchbench.train.trainer.run_job` for each.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from ..config.suite import Suite, load_suite
from ..plan.cells import Job
from ..registry.components import Registry, default_registry
from ..rundir.environment import environment
from ..train.trainer import run_job
from . import workers as workers_module
from .base import Done, Progress
from .check import check, local_resources
from .failures import JobTimedOut
from .workers import WorkerPool


class LocalEngine:
    """This machine: the suite checked against it (:func:`.check.check`), jobs run in
    ``execution.workers`` processes (0: as many as cores and jobs allow, one on CUDA), kept warm
    from one :meth:`execute` to the next (a search's two phases) until :meth:`close`."""

    def __init__(self) -> None:
        self.pool: WorkerPool | None = None

    def prepare(self, suite: str | Path | Suite, registry: Registry, device: str | None = None,
                **overrides: Any) -> Suite:
        if not isinstance(suite, Suite):
            suite = load_suite(suite, registry)
        suite = suite.with_overrides(device=device, **overrides)
        check(suite, registry, local_resources(suite))  # data, declarations, sizes and budgets, before any work
        return suite

    def environment(self, registry: Registry, device: str) -> dict[str, Any]:
        return environment(registry, device)

    def execute(self, jobs: Sequence[Job], registry: Registry, on_done: Done, progress: Progress | None = None) -> None:
        if not jobs:
            return
        suite = jobs[0].suite
        workers = suite.execution.workers or default_workers(suite.device, len(jobs))
        timeout = suite.execution.job_timeout
        if registry is not default_registry() or (workers <= 1 and not timeout) or (len(jobs) <= 1 and not self.pool
                                                                                   and not timeout):
            run_in_process(jobs, registry, on_done, progress, timeout)  # also the way to run plugins not installed
            return
        if self.pool is None:  # one thread per worker's core share; kept for the next phase
            self.pool = WorkerPool(workers, max(1, (os.cpu_count() or 1) // workers))
        self.pool.run(jobs, on_done, progress, timeout)

    def close(self) -> None:
        """End the worker processes (idempotent): nothing outlives the run."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None


def default_workers(device: str, jobs: int) -> int:
    if torch.device(device).type == "cuda":
        return 1
    return max(1, min(os.cpu_count() or 1, jobs))


class PluginExit(Exception):
    """A plugin tried to end the process (``os._exit``, ``sys.exit``) while a job ran in it."""


class _Stopped(BaseException):
    """Ends a job run in this process (past its timeout, or at a plugin's ``os._exit``): a
    BaseException, so that no ``except Exception`` of a plugin or of the trainer takes it for a
    failed step and goes on. Carries the error to report."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def run_in_process(jobs: Sequence[Job], registry: Registry, on_done: Done, progress: Progress | None = None,
                   timeout: float = 0.0) -> None:
    """Each job in this process, in turn. A plugin that calls ``os._exit`` or ``sys.exit`` fails its
    own job; so does one that runs past ``timeout`` seconds (ended by an alarm signal where this is
    the main thread); a stalled job is named in a warning line."""
    for job in jobs:
        try:
            with guarded(job, timeout) as stepped:
                outcome = run_job(job, registry, _noting(progress, stepped))
        except Exception as exc:  # noqa: BLE001 - reported by on_done, the other jobs go on
            outcome = exc
        except _Stopped as stopped:
            outcome = stopped.error
        except SystemExit as exc:
            outcome = PluginExit(f"a plugin called sys.exit({exc.code!r}) in the run's own process; the job stopped "
                                 f"there and the other jobs ran")
        on_done(job, outcome)


def _noting(progress: Progress | None, stepped: list) -> Progress:
    def noted(steps: int) -> None:
        stepped[0], stepped[1] = time.monotonic(), stepped[1] + steps
        if progress is not None:
            progress(steps)
    return noted


@contextlib.contextmanager
def guarded(job: Job, timeout: float) -> Iterator[list]:
    """While one job runs in this process: ``os._exit`` raises :class:`PluginExit` (in this process
    only: forked children exit as they should), an alarm ends the job past ``timeout`` (main thread
    only), and a watchdog thread warns when no training step is reported for long. Yields [the time
    of the last step, member-steps so far], for the caller to update."""
    stepped, done = [time.monotonic(), 0], threading.Event()  # the last step's time, member-steps so far
    pid, real_exit = os.getpid(), os._exit

    def refuse_exit(code: int) -> None:
        if os.getpid() != pid:
            real_exit(code)
        raise _Stopped(PluginExit(f"a plugin called os._exit({code}) in the run's own process; the job stopped there "
                                  f"and the other jobs ran (with workers >= 2 it would have ended only its worker)"))

    def watch() -> None:
        limit = workers_module.stall_warning(timeout)
        while not done.wait(min(limit, 1.0)):
            if time.monotonic() - stepped[0] > limit and workers_module.training(job, stepped[1]):
                print(f"warning: {job.label} (seeds {', '.join(map(str, job.seeds))}): no training step reported "
                      f"for {time.monotonic() - stepped[0]:.0f} s (stalled? execution.job_timeout ends such a job)",
                      file=sys.stderr, flush=True)
                return

    def alarm(signum, frame) -> None:
        raise _Stopped(JobTimedOut(timeout))

    alarmed = bool(timeout) and threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    previous = signal.signal(signal.SIGALRM, alarm) if alarmed else None
    if alarmed:
        signal.setitimer(signal.ITIMER_REAL, timeout, 1.0)  # again each second, should something swallow it
    watchdog = threading.Thread(target=watch, name="benchbench-stall-watch", daemon=True)
    os._exit = refuse_exit
    watchdog.start()
    try:
        yield stepped
    finally:
        os._exit = real_exit
        done.set()
        if alarmed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
