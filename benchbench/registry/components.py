"""Collect what the plugins provide, validate it, and index it by kind and name.

Hooks return data; this module checks it: each item must be a subclass of the kind's base class
with a valid unique ``name`` and a config dataclass. A bad return names its plugin and drops that
plugin's items of that kind; a name provided twice names both plugins and is withheld.
:func:`default_registry` honours ``BENCHBENCH_PLUGINS`` (see :mod:`benchbench.registry.entry_points`).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable
from typing import Any

from ..api.dataset import Dataset
from ..api.errors import ConfigError, PluginError
from ..api.metric import Metric
from ..api.objective import Objective, ObjectiveConfig
from ..api.outputs import Output
from ..api.reporter import Reporter
from .entry_points import RESTRICT_VARIABLE, LoadedPlugins, PluginInfo, enabled_plugins, load_plugins

COMPONENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")  # use with fullmatch (``$`` allows a final newline)


def valid_name(name: Any) -> bool:
    """Whether ``name`` may name a component, a suite or a suite label."""
    return isinstance(name, str) and COMPONENT_NAME.fullmatch(name) is not None


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str  # "objective"
    plural: str  # "objectives"
    base: type

    @property
    def hook(self) -> str:
        return f"benchbench_{self.plural}"


KINDS = {k.name: k for k in (Kind("objective", "objectives", Objective), Kind("dataset", "datasets", Dataset),
                             Kind("metric", "metrics", Metric), Kind("reporter", "reporters", Reporter))}


@dataclasses.dataclass(frozen=True)
class Entry:
    """A component class and the plugin that provides it."""

    cls: type
    plugin: PluginInfo

    @property
    def name(self) -> str:
        return self.cls.name


@dataclasses.dataclass
class Registry:
    plugins: dict[str, PluginInfo]
    entries: dict[str, dict[str, Entry]]  # kind -> name -> entry, sorted by name
    failures: list[PluginError]
    conflicts: dict[tuple[str, str], list[str]]  # (kind, name) -> plugins that all provide it
    skipped: dict[str, PluginInfo] = dataclasses.field(default_factory=dict)  # left out by BENCHBENCH_PLUGINS

    def available(self, kind: str) -> dict[str, Entry]:
        return self.entries[kind]

    def get(self, kind: str, name: str, where: str) -> Entry:
        """The entry, or a :class:`ConfigError` at ``where`` listing what is available."""
        entries = self.entries[kind]
        if name in entries:
            return entries[name]
        if (kind, name) in self.conflicts:
            both = " and ".join(repr(p) for p in self.conflicts[kind, name])
            raise ConfigError(where, f"{kind} {name!r} is provided by both plugins {both}; uninstall one")
        message = f"unknown {kind} {name!r}; available: {', '.join(entries) or 'none'}"
        if self.failures:
            message += f" (plugin problems, see `benchbench plugins`: {'; '.join(map(str, self.failures))})"
        if self.skipped:
            message += f" (plugins skipped by ${RESTRICT_VARIABLE}: {', '.join(self.skipped)})"
        raise ConfigError(where, message)

    def entry(self, spec: Any) -> Entry:
        """The entry of the component that ``spec`` (a suite's :class:`~benchbench.config.suite.ComponentSpec`) names."""
        return self.get(spec.kind, spec.type, spec.label)

    def build(self, spec: Any) -> Any:
        """The dataset, metric or reporter that ``spec`` names, built with its settings (validated when
        the suite loaded). An objective is built with its data: :func:`benchbench.plan.build.build`."""
        assert spec.kind != "objective", "objectives are built with their data (benchbench.plan.build)"
        return self.entry(spec).cls(spec.config)

    def outputs(self) -> dict[str, Output]:
        """Every declared output (metric outputs and objective diagnostics) by name."""
        found: dict[str, Output] = {}
        for entry in self.entries["metric"].values():
            found.update((o.name, o) for o in entry.cls.outputs)
        for entry in self.entries["objective"].values():
            found.update((o.name, o) for o in entry.cls.diagnostics)
        return found

    def provided_by(self, plugin: str) -> dict[str, list[str]]:
        return {kind: [n for n, e in entries.items() if e.plugin.name == plugin]
                for kind, entries in self.entries.items()}


def build_registry(loaded: LoadedPlugins) -> Registry:
    failures = list(loaded.failures)
    found: dict[str, dict[str, list[Entry]]] = {kind: {} for kind in KINDS}
    for kind in KINDS.values():
        for impl in getattr(loaded.manager.hook, kind.hook).get_hookimpls():
            info = loaded.plugins[impl.plugin_name]
            try:
                classes = _validated(kind, impl.function())
            except PluginError as exc:
                failures.append(PluginError(info.name, f"{kind.hook}: {exc.message}"))
                continue
            except Exception as exc:  # noqa: BLE001 - the hook itself crashed
                failures.append(PluginError(info.name, f"{kind.hook} raised {type(exc).__name__}: {exc}"))
                continue
            for cls in classes:
                found[kind.name].setdefault(cls.name, []).append(Entry(cls, info))

    entries: dict[str, dict[str, Entry]] = {}
    conflicts: dict[tuple[str, str], list[str]] = {}
    for kind, by_name in found.items():
        entries[kind] = {}
        for name in sorted(by_name):
            providers = by_name[name]
            if len(providers) > 1:
                plugins = sorted(e.plugin.name for e in providers)
                conflicts[kind, name] = plugins
                failures.append(PluginError(plugins[0], f"{kind} {name!r} is also provided by "
                                                        f"{', '.join(repr(p) for p in plugins[1:])}; neither is used"))
            else:
                entries[kind][name] = providers[0]
    _check_output_names(entries, failures)
    return Registry(dict(loaded.plugins), entries, failures, conflicts, dict(loaded.skipped))


def default_registry() -> Registry:
    """The registry of the installed plugins (entry points) that ``BENCHBENCH_PLUGINS`` allows
    (all when unset), loaded once per process and value of the variable."""
    return _installed_registry(enabled_plugins())


@functools.lru_cache(maxsize=4)
def _installed_registry(only: frozenset[str] | None) -> Registry:
    return build_registry(load_plugins(only=only))


def registry_with(extra: Iterable[tuple[str, object]], entry_points: bool = True) -> Registry:
    """A registry of the installed plugins (as ``BENCHBENCH_PLUGINS`` allows) plus ``(name, plugin)``
    pairs (for tests and notebooks)."""
    return build_registry(load_plugins(extra, entry_points=entry_points, only=enabled_plugins()))


def validate_component(kind: str, cls: type) -> None:
    """Raise :class:`PluginError` unless ``cls`` is a valid component of ``kind`` ("objective",
    "dataset", "metric" or "reporter"): the checks a hook's return goes through."""
    try:
        _validated(KINDS[kind], [cls])
    except PluginError as exc:
        raise PluginError(getattr(cls, "__name__", repr(cls)), exc.message) from None


def _validated(kind: Kind, returned: Any) -> list[type]:
    if not isinstance(returned, (list, tuple)):
        raise PluginError("", f"returned {type(returned).__name__}, expected a list of {kind.base.__name__} subclasses")
    for item in returned:
        if not (isinstance(item, type) and issubclass(item, kind.base)):
            raise PluginError("", f"returned {item!r}, expected {kind.base.__name__} subclasses")
        name = getattr(item, "name", None)
        if not valid_name(name):
            raise PluginError("", f"{item.__name__}.name is {name!r}; expected lower-case text matching "
                                  f"{COMPONENT_NAME.pattern}")
        config = item.Config
        if not dataclasses.is_dataclass(config) or any(
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                for f in dataclasses.fields(config)):
            raise PluginError("", f"{item.__name__}.Config must be a dataclass whose fields all have defaults")
        if kind.base is Objective and not issubclass(config, ObjectiveConfig):
            raise PluginError("", f"{item.__name__}.Config must derive from ObjectiveConfig")
        declared = item.outputs if kind.base is Metric else getattr(item, "diagnostics", ())
        if kind.base is Metric and not declared:
            raise PluginError("", f"{item.__name__}.outputs must declare at least one Output")
        if not all(isinstance(o, Output) for o in declared):
            raise PluginError("", f"{item.__name__} declares outputs that are not Output instances")
    return list(returned)


def _check_output_names(entries: dict[str, dict[str, Entry]], failures: list[PluginError]) -> None:
    """Output names are record keys: two components must not report the same name."""
    owner: dict[str, Entry] = {}
    for kind in ("metric", "objective"):
        for name, entry in list(entries[kind].items()):
            declared = entry.cls.outputs if kind == "metric" else entry.cls.diagnostics
            clash = next((owner[o.name] for o in declared
                          if o.name in owner and owner[o.name].cls is not entry.cls), None)
            if clash is not None and not (kind == "objective" and _same_declarations(clash, entry)):
                failures.append(PluginError(entry.plugin.name, f"{kind} {name!r} reports outputs already reported by "
                                                               f"{clash.name!r} of plugin {clash.plugin.name!r}; not used"))
                del entries[kind][name]
                continue
            owner.update((o.name, entry) for o in declared)


def _same_declarations(a: Entry, b: Entry) -> bool:
    """Objectives may share diagnostics (two GAN losses report the same critic value)."""
    return getattr(a.cls, "diagnostics", None) == getattr(b.cls, "diagnostics", None)
