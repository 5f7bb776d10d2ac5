"""Conformance checks of a whole plugin: its hooks and every component it provides."""

from __future__ import annotations

import tempfile
from collections.abc import Collection
from importlib import metadata

from ..registry.components import KINDS, build_registry
from ..registry.entry_points import ENTRY_POINT_GROUP, load_plugins
from .datasets import check_dataset
from .kit import ConformanceError, _call, _fail
from .metrics import check_metric
from .objectives import check_objective
from .reporters import check_reporter

__tracebackhide__ = True


def check_plugin(plugin: object | str, skip: Collection[str] = ()) -> dict[str, list[str]]:
    """Check a whole plugin: a module (or object) with hooks, or the entry-point name of an
    installed one; return what it provides, ``{kind: [component names]}``.

    It imports; every attribute carrying ``@hookimpl`` is a hook of :mod:`benchbench.api.hookspecs`
    (a misspelling fails with the closest hook's name) and no hook is left unmarked; its hooks
    return what the core accepts when plugins load (lists of valid component classes, names
    unique); it provides at least one component; and each component passes its own check with
    the defaults (:func:`check_objective`, :func:`check_dataset`, :func:`check_metric`,
    :func:`check_reporter`). ``skip``: component names left to their own checks, e.g. a metric
    that needs ``check_metric(..., evaluation=...)``.
    """
    name, module = _plugin(plugin)
    label = f"plugin {name!r}"
    registry = build_registry(load_plugins([(name, module)], entry_points=False))
    problems = [f.message for f in registry.failures if f.plugin == name]
    if problems:
        _fail(label, "; ".join(problems))
    provided = {kind: names for kind, names in registry.provided_by(name).items() if names}
    if not provided:
        _fail(label, f"provides no component: implement at least one of the hooks "
                     f"{', '.join(k.hook for k in KINDS.values())}, each returning a list of classes")
    checks = {"objective": check_objective, "dataset": check_dataset, "metric": check_metric}
    for kind, names in provided.items():
        for component in names:
            if component in skip:
                continue
            cls = registry.entries[kind][component].cls
            if kind == "reporter":
                with tempfile.TemporaryDirectory() as directory:
                    check_reporter(cls, directory)
            else:
                checks[kind](cls)
    return provided


def _plugin(plugin: object | str) -> tuple[str, object]:
    """(name, module) of a plugin given as itself or as the entry-point name of an installed one."""
    if not isinstance(plugin, str):
        return getattr(plugin, "__name__", type(plugin).__name__), plugin
    found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == plugin]
    if not found:
        installed = sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)})
        raise ConformanceError(f"no installed plugin {plugin!r} (entry-point group {ENTRY_POINT_GROUP!r}: "
                               f"pip install -e . in the plugin's package?); installed: {', '.join(installed)}")
    return plugin, _call(f"plugin {plugin!r}", f"importing {found[0].value}", found[0].load)


