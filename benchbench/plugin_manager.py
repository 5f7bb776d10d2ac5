"""Discover and register plugins through the ``benchbench`` entry-point group.

Loading never dies on one bad plugin: an import error, a hook with a misspelled name
(``check_pending``) or a bad hook signature is recorded as a :class:`PluginError` that names the
plugin, and the others still load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from importlib import metadata

import pluggy

from . import hookspecs
from .errors import PluginError

ENTRY_POINT_GROUP = "benchbench"


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """Where a plugin comes from."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None


@dataclasses.dataclass
class LoadedPlugins:
    manager: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    failures: list[PluginError]


def load_plugins(extra: Iterable[tuple[str, object]] = (), entry_points: bool = True) -> LoadedPlugins:
    """Register every entry point of the group (unless ``entry_points`` is false) and the
    ``(name, plugin)`` pairs in ``extra`` (tests and programmatic use)."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    plugins: dict[str, PluginInfo] = {}
    failures: list[PluginError] = []

    candidates: list[tuple[PluginInfo, object | metadata.EntryPoint]] = []
    if entry_points:
        for ep in _entry_points():
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, ep.value, dist.metadata["Name"] if dist else None,
                              dist.version if dist else None)
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

    _drop_plugins_with_unknown_hooks(manager, plugins, failures)
    return LoadedPlugins(manager, plugins, failures)


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
