"""How a failed job is reported: one line naming the job, the component and the plugin that
provides it, and the traceback kept aside for ``benchbench run --traceback``.

Exceptions from worker processes arrive pickled; :class:`concurrent.futures.ProcessPoolExecutor`
attaches the worker's formatted traceback as their ``__cause__`` (the Ray engine attaches a
:class:`RemoteTraceback` the same way), so :func:`format_traceback` shows where the job failed in
the worker, not only where it was re-raised.
"""

from __future__ import annotations

import signal
import traceback

from ..api.errors import ComponentError
from ..plan.cells import Job
from ..registry.components import Registry

TRACEBACK_HINT = "rerun with --traceback to see where"


def describe_failure(job: Job, exc: BaseException, registry: Registry) -> str:
    """``ring/wgan-gp (seeds 0, 1): objective 'wgan-gp' of plugin 'extras' (benchbench-extras 0.1.0): ...``"""
    where = f"{job.label} (seeds {', '.join(map(str, job.seeds))})"
    if isinstance(exc, ComponentError):
        entry = registry.entries.get(exc.kind, {}).get(exc.name)
        plugin = "" if entry is None else f" of plugin {entry.plugin.name!r}" + (
            f" ({entry.plugin.distribution} {entry.plugin.version})" if entry.plugin.distribution else "")
        return f"{where}: {exc.kind} {exc.name!r}{plugin}: {exc.message}"
    if isinstance(exc, (WorkerDied, JobTimedOut)):
        return f"{where}: {exc}"
    return f"{where}: {type(exc).__name__}: {exc}"


class WorkerDied(Exception):
    """The worker process running a job ended without an answer, on both attempts."""

    def __init__(self, exitcode: int | None):
        self.exitcode = exitcode
        super().__init__(f"its worker process died twice ({death_cause(exitcode)}); the other jobs ran")

    def __reduce__(self):
        return type(self), (self.exitcode,)


class JobTimedOut(Exception):
    """A job ran past ``execution.job_timeout``."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"still running after execution.job_timeout ({seconds:g} s): stopped (its worker process "
                         f"ended), the other jobs ran")

    def __reduce__(self):
        return type(self), (self.seconds,)


def death_cause(exitcode: int | None) -> str:
    """How a process ended, from its exit code (``-N``: signal N), with the likely cause."""
    if exitcode is None:
        return "it closed its connection to the run"
    if exitcode >= 0:
        return f"exit code {exitcode}: a plugin called os._exit or sys.exit, or the interpreter aborted"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = f"signal {-exitcode}"
    likely = {"SIGKILL": "likely out of memory (the kernel's OOM killer; see dmesg) or killed by hand",
              "SIGSEGV": "a crash in native code", "SIGBUS": "a crash in native code",
              "SIGABRT": "aborted by native code", "SIGTERM": "terminated from outside the run"}
    return f"killed by {name}" + (f": {likely[name]}" if name in likely else "")


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in another process, attached as its
    ``__cause__`` (as :mod:`concurrent.futures` does for its worker processes)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n{self.text}"


def format_traceback(exc: BaseException) -> str:
    """The full traceback of ``exc``, with the worker's own when it came from another process."""
    return "".join(traceback.format_exception(exc)).rstrip()
