"""Where a job's time goes: wall and CPU seconds of each phase, accumulated as the job runs.

A job records into the :class:`Phases` that :func:`recording` makes active; code anywhere below it
opens a :func:`phase` ("training", "curve points", "final evaluation", "data reference") or a
:func:`part` of the phase it runs in ("sampling", "metric <label>": named ``"curve points/metric
kde"``). Times are exclusive: a phase's own time leaves out the phases and parts opened inside it, so
the entries of a job add up to its time. With no recorder active both are a no-op (a test scoring a
metric alone). The cost is two clock reads per boundary, never inside a training step.

CPU time is the process's (:func:`time.process_time`): a worker runs one job at a time.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import multiprocessing
import time
from collections.abc import Callable, Iterator

WORKER_START = "worker start"  # a worker process's start-up (imports, plugins) before its first job
OTHER = "set-up"  # a job's time outside its named phases: building networks and data, counting FLOPs
Times = dict[str, list[float]]  # phase name -> [wall seconds, CPU seconds, times entered]


class Phases:
    """Exclusive wall and CPU seconds per phase name (``times``), and the stack of phases open now."""

    def __init__(self) -> None:
        self.times: Times = {}
        self._open: list[list] = []  # [name, wall start, cpu start, wall of children, cpu of children]
        self._blocks: list[contextlib.AbstractContextManager] = []  # opened by start()

    def add(self, name: str, wall: float, cpu: float, count: int = 1) -> None:
        entry = self.times.setdefault(name, [0.0, 0.0, 0])
        entry[0] += wall
        entry[1] += cpu
        entry[2] += count

    def merge(self, times: Times) -> None:
        for name, (wall, cpu, count) in times.items():
            self.add(name, wall, cpu, int(count))

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        frame = [name, time.perf_counter(), time.process_time(), 0.0, 0.0]
        self._open.append(frame)
        try:
            yield
        finally:
            if any(f is frame for f in self._open):  # else an enclosing phase ended it, and took its time
                self._close(frame)

    def _close(self, frame: list) -> None:
        while self._open.pop() is not frame:  # phases left open by an exception end with it
            pass
        wall, cpu = time.perf_counter() - frame[1], time.process_time() - frame[2]
        self.add(frame[0], wall - frame[3], cpu - frame[4])
        if self._open:  # the enclosing phase's own time leaves this one out
            self._open[-1][3] += wall
            self._open[-1][4] += cpu

    def start(self, name: str) -> None:
        """Open ``name`` until :meth:`stop` (for a phase that a loop enters and leaves)."""
        block = self.timed(name)
        block.__enter__()
        self._blocks.append(block)

    def stop(self) -> None:
        self._blocks.pop().__exit__(None, None, None)

    def current(self) -> str | None:
        return self._open[-1][0].split("/")[0] if self._open else None


_active: contextvars.ContextVar[Phases | None] = contextvars.ContextVar("benchbench_phases", default=None)
_jobs_in_this_process = 0


@contextlib.contextmanager
def recording() -> Iterator[Phases]:
    """A fresh :class:`Phases` that :func:`phase` and :func:`part` record into until the block ends."""
    phases = Phases()
    token = _active.set(phases)
    try:
        yield phases
    finally:
        _active.reset(token)


def phase(name: str) -> contextlib.AbstractContextManager:
    """Time the block as the phase ``name`` of the job being recorded (nothing when none is)."""
    phases = _active.get()
    return phases.timed(name) if phases is not None else contextlib.nullcontext()


def part(name: str) -> contextlib.AbstractContextManager:
    """Time the block as ``<enclosing phase>/<name>`` (``name`` alone outside any phase)."""
    phases = _active.get()
    if phases is None:
        return contextlib.nullcontext()
    enclosing = phases.current()
    return phases.timed(f"{enclosing}/{name}" if enclosing else name)


def merged_times(parts) -> Times:
    """The sum of several :data:`Times`."""
    total = Phases()
    for times in parts:
        total.merge(times)
    return total.times


def timed_as(name: str, is_part: bool = False) -> Callable[[Callable], Callable]:
    """Decorate a function so that each call is timed as :func:`phase` (or :func:`part`) ``name``."""
    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def timed_call(*args, **kwargs):
            with (part if is_part else phase)(name):
                return function(*args, **kwargs)
        return timed_call
    return decorate


def active() -> Phases | None:
    """The :class:`Phases` being recorded into, if any."""
    return _active.get()


def worker_start() -> Times:
    """In a worker process, on its first job: the CPU seconds it spent starting (importing torch and
    the plugins) as :data:`WORKER_START`, its wall seconds 0 until the runner knows when the pool
    started (:func:`benchbench.report.phases.RunClock.add_job`). Elsewhere: nothing."""
    global _jobs_in_this_process
    _jobs_in_this_process += 1
    if _jobs_in_this_process > 1 or multiprocessing.parent_process() is None:
        return {}
    return {WORKER_START: [0.0, time.process_time(), 1]}
