"""Typed configuration: dataclass fields declared with :func:`param`, built from YAML mappings.

Every objective, dataset and metric declares its settings as a frozen dataclass whose fields use
``param(default, doc, ...)``. :func:`build` turns a mapping from a suite file into that dataclass,
rejecting unknown keys, wrong types and impossible values with a :class:`ConfigError` that names
the key. :func:`describe` lists the fields with defaults and docs (``benchbench plugins --params``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import reprlib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigError

MAX_ITEMS = 10_000  # values of one list setting (seeds included)
PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,60}")  # keys error messages show as they are


def param(default: Any, doc: str, *, gt: float | None = None, ge: float | None = None,
          le: float | None = None, lt: float | None = None,
          choices: Sequence[Any] | None = None, per_member: bool = False,
          sampling: bool = False) -> Any:
    """A documented config field. ``gt``/``ge``/``le``/``lt`` bound numbers (and every item of a tuple).
    ``per_member``: the objective reads this setting per member of a stack (``Objective.members``),
    so trials of a search that differ in it can still be trained as one stacked model.
    ``sampling``: the setting changes only how samples are drawn (``Objective.sample``, e.g. a
    solver or its number of steps; or which weights are sampled, ``weights``), never training:
    :func:`sampling_settings` lists them, for keys of trained models that leave them out."""
    meta = {"doc": doc, "gt": gt, "ge": ge, "le": le, "lt": lt, "choices": tuple(choices) if choices else None,
            "per_member": per_member, "sampling": sampling}
    return dataclasses.field(default=default, metadata=meta)


def sampling_settings(config: Any) -> tuple[str, ...]:
    """Names of the fields of config dataclass (or instance) ``config`` declared ``param(..., sampling=True)``."""
    return tuple(f.name for f in dataclasses.fields(config) if f.metadata.get("sampling"))


@dataclasses.dataclass(frozen=True)
class NoConfig:
    """For components without settings."""


def build(cls: type, values: Mapping[str, Any] | None, where: str) -> Any:
    """Instantiate config dataclass ``cls`` from ``values``; ``where`` prefixes error messages."""
    values = {} if values is None else values
    if not isinstance(values, Mapping):
        raise ConfigError(where, f"expected a mapping of settings, got {show(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{where}.{key_text(key)}", f"unknown setting; allowed: {_allowed(key, fields)}")
        kwargs[key] = check(value, hints[key], fields[key].metadata, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a cross-field check in the config's __post_init__ ("key: message")
        key, sep, message = str(exc).partition(": ")
        raise ConfigError(f"{where}.{key}" if sep and key in fields else where, message if sep else str(exc)) from None


def check(value: Any, hint: Any, meta: Mapping[str, Any], where: str) -> Any:
    """Coerce ``value`` to type ``hint`` (YAML gives lists for tuples, ints for floats) and check bounds."""
    value = _coerce(value, hint, where)
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        _check_bounds(item, meta, where)
    return value


def describe(cls: type) -> list[dict[str, Any]]:
    """Rows of (name, type, default, doc) for the fields of config dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return [{"name": f.name, "type": _type_name(hints[f.name]), "default": f.default,
             "doc": f.metadata.get("doc", "")} for f in dataclasses.fields(cls)]


def as_dict(config: Any) -> dict[str, Any]:
    """JSON-friendly dict of a config dataclass (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where) if len(inner) == 1 else value
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(where, f"got {show(value)}; allowed: {', '.join(map(str, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value] if args and args[-1] is Ellipsis else value
        if not isinstance(value, (list, tuple)):
            raise ConfigError(where, f"expected a list, got {show(value)}")
        if len(value) > MAX_ITEMS:  # before looking at the items
            raise ConfigError(where, f"a list of {len(value):,} values; at most {MAX_ITEMS:,}")
        if args and args[-1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if len(value) != len(args):
            raise ConfigError(where, f"expected a list of {len(args)} values, got {show(value)}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(where, f"expected true or false, got {show(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(where, f"expected a whole number, got {show(value)}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(where, f"expected a number, got {show(value)}")
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(where, f"expected a finite number, got {show(value)}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(where, f"expected text, got {show(value)}")
        return value
    raise TypeError(f"unsupported config type {hint!r} at {where}")  # a bug in the config class


def _check_bounds(value: Any, meta: Mapping[str, Any], where: str) -> None:
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(where, f"got {show(value)}; allowed: {', '.join(map(str, meta['choices']))}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    for key, ok, word in (("gt", lambda v, b: v > b, ">"), ("ge", lambda v, b: v >= b, ">="),
                          ("le", lambda v, b: v <= b, "<="), ("lt", lambda v, b: v < b, "<")):
        bound = meta.get(key)
        if bound is not None and not ok(value, bound):
            raise ConfigError(where, f"must be {word} {bound}, got {show(value)}")


def _allowed(key: Any, fields: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(fields), n=1) if isinstance(key, str) else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (", ".join(fields) or "none") + hint


def show(value: Any) -> str:
    """``repr(value)`` shortened to 60 characters: a value as one-line error messages quote it.
    Only the first few items of the first levels are looked at, so a huge (or self-containing,
    or alias-expanded) value costs no more than a small one."""
    text = _SHORT.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _ShortRepr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:  # no decimal conversion of a huge number
        return super().repr_int(x, level) if x.bit_length() <= 256 else f"<a {x.bit_length()}-bit number>"


_SHORT = _ShortRepr()  # at most 3 levels, 8 items of each, 80 characters of text or digits
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxlong, _SHORT.maxother = 3, 80, 80, 80
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = _SHORT.maxfrozenset = 8


def key_text(key: Any) -> str:
    """A mapping key as error messages name it: plain keys as they are; anything else (a number,
    null, text with spaces, quotes or line breaks) as its shortened repr, so messages stay one line."""
    return key if isinstance(key, str) and PLAIN_KEY.fullmatch(key) else show(key)


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return " | ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is tuple:
        return f"list of {_type_name(args[0])}" if args and args[-1] is Ellipsis else "list"
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))
