"""What an engine is: the one interface the runner drives, whatever runs the jobs.

An engine loads and checks a suite for where it runs (:meth:`Engine.prepare`), describes that
place for ``environment.json`` (:meth:`Engine.environment`), runs jobs and hands each outcome to
``on_done`` as it finishes (:meth:`Engine.execute`, possibly several times per run: a search's
selection phase, then its final phase), and lets go of what it holds (:meth:`Engine.close`).
Implementations: :class:`benchbench.engines.local.LocalEngine` (this machine, a process pool) and
:class:`benchbench.engines.ray_engine.RayEngine` (a Ray cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..config.suite import Suite
from ..plan.cells import Job
from ..registry.components import Registry
from ..train.trainer import JobOutcome

Done = Callable[[Job, "JobOutcome | BaseException"], None]
"""``on_done(job, outcome)``: the job's outcome, or the exception it raised (the other jobs go on)."""

Progress = Callable[[int], None]
"""``progress(n)``: training advanced by ``n`` member-steps."""


class Engine(Protocol):
    def prepare(self, suite: str | Path | Suite, registry: Registry, device: str | None = None,
                **overrides: Any) -> Suite:
        """The suite loaded (from a path) and checked for where the jobs will run, with ``device``
        and ``overrides`` (``seeds``, ``steps``, ``workers``, as :meth:`Suite.with_overrides`) applied."""

    def environment(self, registry: Registry, device: str) -> dict[str, Any]:
        """Where the run executes, for ``environment.json``."""

    def execute(self, jobs: Sequence[Job], registry: Registry, on_done: Done, progress: Progress | None = None) -> None:
        """Run every job; ``on_done`` gets each outcome as it finishes. Interrupted (Ctrl-C,
        SIGTERM), it stops the jobs still running and re-raises: finished cells are already saved."""

    def close(self) -> None:
        """Release what the engine holds (worker processes, a cluster it started). Idempotent."""
