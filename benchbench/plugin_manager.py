"""Discover and register plugins through the ``benchbench`` entry-point group.

Loading never dies on one bad plugin: an import error, a hook with a misspelled name
(``check_pending``) or a bad hook signature is recorded as a :class:`PluginError` that names the
plugin, and the others still load.

``BENCHBENCH_PLUGINS`` (comma-separated entry-point names, set by ``benchbench --plugins``)
restricts which entry points load; the others are recorded as skipped, not imported.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Iterable, Mapping
from importlib import metadata

import pluggy

from . import hookspecs
from .errors import PluginError

ENTRY_POINT_GROUP = "benchbench"
RESTRICT_VARIABLE = "BENCHBENCH_PLUGINS"


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """Where a plugin comes from."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None


@dataclasses.dataclass
class LoadedPlugins:
    """The plugin manager with every plugin that loaded, the failures (each naming its plugin),
    and the entry points left out by the restriction (not imported)."""

    manager: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    failures: list[PluginError]
    skipped: dict[str, PluginInfo] = dataclasses.field(default_factory=dict)


def enabled_plugins(environ: Mapping[str, str] = os.environ) -> frozenset[str] | None:
    """The entry-point names ``BENCHBENCH_PLUGINS`` allows, or None (unset or blank: all of them)."""
    names = frozenset(n.strip() for n in environ.get(RESTRICT_VARIABLE, "").split(",") if n.strip())
    return names or None


def load_plugins(extra: Iterable[tuple[str, object]] = (), entry_points: bool = True,
                 only: Collection[str] | None = None) -> LoadedPlugins:
    """Register every entry point of the group (unless ``entry_points`` is false) and the
    ``(name, plugin)`` pairs in ``extra`` (tests and programmatic use). ``only``: the entry points
    to load (see :func:`enabled_plugins`); the others are skipped, and a name in ``only`` that
    nothing provides is a failure. ``extra`` is always registered."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    plugins: dict[str, PluginInfo] = {}
    failures: list[PluginError] = []
    skipped: dict[str, PluginInfo] = {}

    candidates: list[tuple[PluginInfo, object | metadata.EntryPoint]] = []
    if entry_points:
        for ep in _entry_points():
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, ep.value, dist.metadata["Name"] if dist else None,
                              dist.version if dist else None)
            if only is not None and ep.name not in only:
                skipped[ep.name] = info
                continue
            candidates.append((info, ep))
    for name, plugin in extra:
        module = getattr(plugin, "__name__", type(plugin).__name__)
        candidates.append((PluginInfo(name, module), plugin))

    for info, source in candidates:
        if info.name in plugins:
            failures.append(PluginError(info.name, f"name also used by {plugins[info.name].module}; "
                                                   f"{info.module} was not loaded"))
            continue
        try:
            plugin = source.load() if isinstance(source, metadata.EntryPoint) else source
            manager.register(plugin, name=info.name)
        except Exception as exc:  # noqa: BLE001 - any failure of third-party code is reported
            failures.append(PluginError(info.name, f"failed to load {info.module}: {_one_line(exc)}"))
            continue
        plugins[info.name] = info

    if only is not None:
        known = {info.name for info, _ in candidates} | set(skipped)
        for name in sorted(set(only) - known):
            failures.append(PluginError(name, f"named in ${RESTRICT_VARIABLE} (or --plugins) but not installed; "
                                              f"installed: {', '.join(sorted(known)) or 'none'}"))

    _drop_plugins_with_unknown_hooks(manager, plugins, failures)
    return LoadedPlugins(manager, plugins, failures, skipped)


def _drop_plugins_with_unknown_hooks(manager, plugins, failures) -> None:
    """``check_pending`` raises on the first hook implementation without a spec (a typo such as
    ``benchbench_objective``); name and unregister that plugin, then check again."""
    while True:
        try:
            manager.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = manager.get_name(exc.plugin)
            failures.append(PluginError(name, f"{_one_line(exc)} (hooks are listed in benchbench.hookspecs)"))
            manager.unregister(exc.plugin)
            plugins.pop(name, None)


def _entry_points() -> list[metadata.EntryPoint]:
    seen, unique = set(), []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (ep.name, ep.value) not in seen:  # the same distribution found twice on sys.path
            seen.add((ep.name, ep.value))
            unique.append(ep)
    return sorted(unique, key=lambda ep: ep.name)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
