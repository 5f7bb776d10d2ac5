"""Every hook a benchbench plugin can implement. This module is the reference.

A plugin is a module (or object) listed under the entry-point group ``benchbench`` whose
functions are marked with :data:`hookimpl`. Each hook returns a list of classes; the core
validates them (type, name, duplicates across plugins) before anything runs.
"""

from __future__ import annotations

import pluggy

PROJECT = "benchbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def benchbench_objectives() -> list[type]:
    """Return :class:`benchbench.Objective` subclasses, each with a unique ``name``."""


@hookspec
def benchbench_datasets() -> list[type]:
    """Return :class:`benchbench.Dataset` subclasses, each with a unique ``name``."""


@hookspec
def benchbench_metrics() -> list[type]:
    """Return :class:`benchbench.Metric` subclasses, each with a unique ``name`` and output names
    unique across all metrics."""


@hookspec
def benchbench_reporters() -> list[type]:
    """Return :class:`benchbench.Reporter` subclasses, each with a unique ``name``."""
