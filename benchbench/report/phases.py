"""Where a run's time went: ``phases.csv``, the line ``benchbench run`` prints at the end, and the
frame the HTML report shows.

Two scopes. ``run``: the runner's own laps, one after the other, so their wall times add up to the
run's (planning, worker start, jobs, a search's selection, loading the results, the tables, each
reporter); their CPU is this process's and its finished workers'. ``jobs``: the phases recorded
inside every job (:mod:`benchbench.train.phases`), summed over jobs: several workers run at once,
so these are worker-seconds, and a job's phases add up to its time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from ..train.phases import WORKER_START, Phases, Times

try:
    import resource
except ImportError:  # not on Windows: the CPU of finished workers is then not counted
    resource = None

START_UP = "start-up"
_start_up: list[tuple[float, float]] = []  # (wall, CPU) of this process before the command ran: note_start_up()
COLUMNS = ["scope", "phase", "wall_s", "cpu_s", "count"]
FILE = "phases.csv"
TOTAL = "total"
JOBS = "jobs"


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (a pool's workers, once shut down)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN) if resource is not None else None
    return time.process_time() + (children.ru_utime + children.ru_stime if children else 0.0)


def note_start_up() -> None:
    """Called by ``benchbench run`` first thing: the seconds since this process began (Python, torch and the
    plugins importing) become the next :class:`RunClock`'s first lap, :data:`START_UP` (Linux only)."""
    try:
        started = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # clock ticks after boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - started / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return
    _start_up[:] = [(max(age, 0.0), time.process_time())]


class RunClock:
    """The runner's laps (:meth:`lap` names the time since the previous one) and its jobs' phases (:meth:`add_job`)."""

    def __init__(self) -> None:
        self.run = Phases()
        self.jobs = Phases()
        self._began = self._lap_wall = time.perf_counter()
        self._began_cpu = self._lap_cpu = cpu_seconds()
        self._lap_epoch = time.time()  # when the lap began, on the clock jobs report their start with
        self._first_job: float | None = None  # time.time() the first job of this lap started
        if _start_up:
            wall, cpu = _start_up.pop()
            self.run.add(START_UP, wall, cpu)
            self._began -= wall
            self._began_cpu -= cpu

    def lap(self, name: str) -> None:
        """Record the time since the previous lap as ``name``. For :data:`JOBS`, the part before the first
        job started is :data:`~benchbench.train.phases.WORKER_START` (processes starting, importing torch)."""
        wall, cpu = time.perf_counter(), cpu_seconds()
        if name == JOBS and self._first_job is not None:
            waited = min(max(self._first_job - self._lap_epoch, 0.0), wall - self._lap_wall)
            self.run.add(WORKER_START, waited, 0.0)
            self._lap_wall += waited
        self.run.add(name, wall - self._lap_wall, cpu - self._lap_cpu)
        self._lap_wall, self._lap_cpu, self._lap_epoch, self._first_job = wall, cpu, time.time(), None

    def add_job(self, times: Times, started: float) -> None:
        """A finished job's phases; its worker's start-up (if this was the worker's first job) lasted
        from the lap's start to ``started``."""
        if started:
            self._first_job = min(started, self._first_job or started)
        if WORKER_START in times:
            times = {**times, WORKER_START: [max(started - self._lap_epoch, 0.0), *times[WORKER_START][1:]]}
        self.jobs.merge(times)

    def frame(self) -> pd.DataFrame:
        """The ``phases.csv`` table: the run's laps so far, its total, then the jobs' phases, longest first."""
        total = [("run", TOTAL, time.perf_counter() - self._began, cpu_seconds() - self._began_cpu, 1)]
        rows = [("run", name, *values) for name, values in self.run.times.items()] + total
        rows += [("jobs", name, *values) for name, values in
                 sorted(self.jobs.times.items(), key=lambda item: -item[1][0])]
        frame = pd.DataFrame(rows, columns=COLUMNS)
        frame["count"] = frame["count"].astype(int)
        return frame.round({"wall_s": 3, "cpu_s": 3})


def read(directory: Path) -> pd.DataFrame:
    """A run directory's ``phases.csv`` (empty when the run wrote none: older runs)."""
    path = Path(directory) / FILE
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError):
        return pd.DataFrame(columns=COLUMNS)
    return frame if set(COLUMNS) <= set(frame.columns) else pd.DataFrame(columns=COLUMNS)


def top_level(frame: pd.DataFrame, scope: str) -> pd.Series:
    """Wall seconds per phase of ``scope``, its parts (``phase/part``) summed into their phase."""
    rows = frame[(frame["scope"] == scope) & (frame["phase"] != TOTAL)]
    return rows.groupby(rows["phase"].str.split("/").str[0], sort=False)["wall_s"].sum()


def line(frame: pd.DataFrame) -> str:
    """One line: the run's wall time by lap, then the share of the jobs' time each phase took."""
    if frame.empty:
        return ""
    total = frame[(frame["scope"] == "run") & (frame["phase"] == TOTAL)]["wall_s"].sum()
    laps = top_level(frame, "run")
    reports = laps[[name for name in laps.index if name not in (START_UP, JOBS, WORKER_START, "planning", "selection")]]
    shown = {name: laps[name] for name in (START_UP, "planning", WORKER_START, JOBS, "selection") if name in laps}
    text = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in shown.items())
    text += f", reports {reports.sum():.1f} s" if len(reports) else ""
    jobs = top_level(frame, "jobs")
    if jobs.sum() > 0:
        shares = ", ".join(f"{name} {seconds / jobs.sum():.0%}" for name, seconds in
                           jobs.sort_values(ascending=False).items() if seconds / jobs.sum() >= 0.005)
        text += f"; of the jobs' {jobs.sum():.1f} worker-s: {shares}"
    return f"time: {total:.1f} s ({text}); {FILE}"
