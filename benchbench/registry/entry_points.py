"""Discover and register plugins through the ``benchbench`` entry-point group.

Loading never dies on one bad plugin: an import error or a bad hook signature is recorded as a
:class:`PluginError` that names the plugin, and the others still load. A hook whose name no spec
has (``benchbench_metric``, with a did-you-mean), or a spec's name left without ``@hookimpl``, is
reported and left out alone: the plugin's other hooks load.

``BENCHBENCH_PLUGINS`` (comma-separated entry-point names, set by ``benchbench --plugins``)
restricts which entry points load; the others are recorded as skipped, not imported.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Collection, Iterable, Mapping
from importlib import metadata

import pluggy

from ..api import hookspecs
from ..api.errors import PluginError

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
    manager = _Manager()
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
        finally:
            failures.extend(PluginError(info.name, problem) for problem in manager.take_hook_problems())
        plugins[info.name] = info

    if only is not None:
        known = {info.name for info, _ in candidates} | set(skipped)
        for name in sorted(set(only) - known):
            failures.append(PluginError(name, f"named in ${RESTRICT_VARIABLE} (or --plugins) but not installed; "
                                              f"installed: {', '.join(sorted(known)) or 'none'}"))

    return LoadedPlugins(manager, plugins, failures, skipped)


HOOK_NAMES = tuple(sorted(name for name in vars(hookspecs) if name.startswith(f"{hookspecs.PROJECT}_")))


def hook_problem(plugin: object, name: str, marked: bool) -> str | None:
    """What is wrong with the attribute ``name`` of a plugin (``marked``: it carries
    ``@hookimpl``), or None: a marked name that no spec has (with the closest spec's name), or a
    spec's name left unmarked (pluggy would never call it)."""
    if marked and name not in HOOK_NAMES:
        close = difflib.get_close_matches(name, HOOK_NAMES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (f"unknown hook {name!r}: {hint}left out, the plugin's other hooks load (hooks: "
                f"{', '.join(HOOK_NAMES)}, in benchbench.api.hookspecs)")
    if not marked and name in HOOK_NAMES and callable(getattr(plugin, name, None)):
        return f"{name} is not marked with @benchbench.hookimpl: benchbench never calls it"
    return None


class _Manager(pluggy.PluginManager):
    """pluggy's manager with benchbench's hook specs, leaving out (and recording) a plugin's
    attributes that :func:`hook_problem` rejects, so one misspelled hook does not drop the plugin."""

    def __init__(self):
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self._problems: list[str] = []

    def parse_hookimpl_opts(self, plugin, name):
        opts = super().parse_hookimpl_opts(plugin, name)
        problem = hook_problem(plugin, name, opts is not None)
        if problem is not None:
            self._problems.append(problem)
            return None
        return opts

    def take_hook_problems(self) -> list[str]:
        """The problems recorded since the last call (those of the plugin just registered)."""
        problems, self._problems = self._problems, []
        return problems


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
