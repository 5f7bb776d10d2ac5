"""Equal hyperparameter budgets: the ``search:`` blocks of a suite and the trials drawn from them.

A suite-level ``search: {trials: N, seed: S, seeds: K, select: {metric: NAME, dataset: each | all | LABEL}}``
(``select.rung: R``: on a budget ladder, the trials train to rung R and select on it; default the top rung)
gives every objective the same budget of N trials (``dataset: each``, the default, chooses per
dataset; ``all`` one setting per objective by its mean rank over the datasets; a label chooses on
that dataset for all); an objective's own ``search:`` block names the
settings it searches, each as a grid (a list of values) or a distribution:
``{loguniform: [low, high]}``, ``{uniform: [low, high]}``, ``{choice: [...]}``, ``{int: [low, high]}``.
An item of a fixed-length list setting is searched by its index: ``betas.0`` is Adam's beta1.

Trials (:func:`draw_trials`): trial 0 is always the objective's own setting (its default); trials
1..N-1 visit the points of the grid (the product of the grid lists) in turn and draw every
distribution from a numpy Generator seeded by the search seed and the objective's label, in a fixed
order, so a trial's values never depend on N. A grid of more than N - 1 points is an error: every
objective gets exactly N trials. Selection seeds (``seeds: K`` picks ``SELECTION_SEED_BASE + 0..K-1``,
or a list; 2 unless a suite says otherwise, since the best of N trials scored on one training run
each is mostly the luckiest: one is allowed, with a warning) must be disjoint from the suite's
final ``seeds``: the chosen setting is never scored on the seeds that make the final tables.
Equal trials combine with equal compute: every trial trains under the suite's budget
(:mod:`benchbench.config.compute`), so under a FLOP budget a trial whose step costs more (a larger
``critic_steps``, wider networks) trains fewer steps for the same FLOPs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import typing
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..api import params
from ..api.errors import ConfigError
from ..api.params import key_text, show

SELECTION_SEED_BASE = 1_000_000  # selection seeds from `seeds: K` are SELECTION_SEED_BASE + 0..K-1
SELECTION_SEEDS = 2  # selection seeds per trial when a suite gives none
MAX_TRIALS = 10_000
DISTRIBUTIONS = ("loguniform", "uniform", "choice", "int")
SEARCH_KEYS = ("trials", "seed", "seeds", "select")
OPTIMIZER_SETTINGS = ("lr", "critic_lr", "betas", "momentum")  # may differ between members of one stack


@dataclasses.dataclass(frozen=True)
class Space:
    """One searched setting: ``kind`` is ``grid`` (``values`` the points), ``choice`` (``values``),
    or ``loguniform`` / ``uniform`` / ``int`` (``values`` = (low, high), both included for ``int``)."""

    name: str  # a setting, or "setting.index" for an item of a fixed-length list
    kind: str
    values: tuple[Any, ...]

    def resolved(self) -> Any:
        plain = [list(v) if isinstance(v, tuple) else v for v in self.values]
        return plain if self.kind == "grid" else {self.kind: plain}


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    trials: int
    seed: int
    seeds: tuple[int, ...]  # selection seeds, disjoint from the suite's final seeds
    metric: str  # selection metric (an output name)
    dataset: str  # "each": a choice per dataset; "all": one per objective, best mean rank; or the label to choose on
    spaces: tuple[tuple[str, tuple[Space, ...]], ...]  # (objective label, searched settings)
    source: str = "suite"  # the suite file, for the warning
    rung: int | None = None  # the rung of a budget ladder the trials train to and select on; None: the top rung

    @property
    def warning(self) -> str | None:
        """One line when each trial is scored on a single selection seed, else None."""
        if len(self.seeds) > 1:
            return None
        return (f"{self.source}: search.seeds: 1 selection seed per trial: the best of {self.trials} trials is chosen "
                f"on one training run each, so noise picks it as much as the setting (the winner's curse); "
                f"use seeds: {SELECTION_SEEDS} or more")

    def space(self, objective: str) -> tuple[Space, ...]:
        return dict(self.spaces).get(objective, ())

    def resolved(self) -> dict[str, Any]:
        """The suite-level ``search:`` block as a suite gives it."""
        return {"trials": self.trials, "seed": self.seed, "seeds": list(self.seeds),
                "select": {"metric": self.metric, "dataset": self.dataset,
                           **({"rung": self.rung} if self.rung is not None else {})}}

    def resolved_spaces(self) -> dict[str, dict[str, Any]]:
        """Objective label -> its ``search:`` block as a suite gives it."""
        return {label: {s.name: s.resolved() for s in spaces} for label, spaces in self.spaces}


def split_objective_searches(objectives: Any) -> tuple[Any, dict[str, Any]]:
    """The ``objectives:`` section without each objective's ``search:`` block, and those blocks by label."""
    if not isinstance(objectives, Mapping):
        return objectives, {}
    plain, blocks = {}, {}
    for label, settings in objectives.items():
        if isinstance(settings, Mapping) and "search" in settings:
            settings = dict(settings)
            blocks[label] = settings.pop("search")
        plain[label] = settings
    return plain, blocks


def parse_search(raw: Any, blocks: Mapping[str, Any], suite: Any, registry: Any) -> SearchSettings | None:
    """Validate the suite-level ``search:`` mapping and the objectives' ``search:`` blocks against the
    parsed ``suite`` (a :class:`benchbench.config.suite.Suite`)."""
    source = suite.source
    if raw is None:
        if blocks:
            label = next(iter(blocks))
            raise ConfigError(f"{source}: objectives.{key_text(label)}.search",
                              "a search block needs a suite-level `search: {trials: N, select: {metric: ...}}`")
        return None
    at = f"{source}: search"
    if not isinstance(raw, Mapping):
        raise ConfigError(at, f"expected a mapping with keys {', '.join(SEARCH_KEYS)}, got {show(raw)}")
    for key in raw:
        if key not in SEARCH_KEYS:
            raise ConfigError(f"{at}.{key_text(key)}", f"unknown key; allowed: {', '.join(SEARCH_KEYS)}")
    if "trials" not in raw:
        raise ConfigError(at, "missing key 'trials': the budget of trials every objective gets")
    trials = params.check(raw["trials"], int, {"ge": 1, "le": MAX_TRIALS}, f"{at}.trials")
    seed = params.check(raw.get("seed", 0), int, {"ge": 0}, f"{at}.seed")
    seeds = selection_seeds(raw.get("seeds", SELECTION_SEEDS), f"{at}.seeds")
    check_disjoint(seeds, suite.seeds, f"{at}.seeds")
    metric, dataset = _selection(raw.get("select"), suite, registry, f"{at}.select")
    rung = _rung(raw["select"].get("rung"), len(suite.budget.ladder), f"{at}.select.rung")
    spaces = []
    for spec in suite.objectives:
        where = f"{source}: objectives.{spec.label}.search"
        space = parse_spaces(blocks.get(spec.label), spec.config, where)
        points = grid_size(space)
        if points > trials - 1 and points > 1:
            raise ConfigError(where, f"unequal budgets: a grid of {points} points needs more than search.trials = "
                                     f"{trials} (trial 0 is the default setting); raise trials to {points + 1} or "
                                     f"shrink the grid")
        spaces.append((spec.label, space))
    return SearchSettings(trials, seed, seeds, metric, dataset, tuple(spaces), source, rung)


def _rung(value: Any, rungs: int, where: str) -> int | None:
    """The rung a search selects on (0-based, of the suite's budget ladder), or None: the top rung."""
    if value is None:
        return None
    if rungs < 2:
        raise ConfigError(where, "selects on a rung of a budget ladder, but the suite's budget has one rung")
    return params.check(value, int, {"ge": 0, "le": rungs - 1}, where)


def selection_seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        count = params.check(value, int, {"ge": 1, "le": 1000}, where)
        return tuple(SELECTION_SEED_BASE + i for i in range(count))
    seeds = params.check(value, tuple[int, ...], {"ge": 0}, where)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(where, f"expected a number of selection seeds or a list of distinct seeds, got {show(value)}")
    return seeds


def check_disjoint(selection: tuple[int, ...], final: tuple[int, ...], where: str) -> None:
    shared = sorted(set(selection) & set(final))
    if shared:
        raise ConfigError(where, f"selection seeds {shared[:5]} are also final seeds: selection must not see the "
                                 f"seeds that make the final tables; use `seeds: K` (seeds from {SELECTION_SEED_BASE})")


def _selection(raw: Any, suite: Any, registry: Any, at: str) -> tuple[str, str]:
    if not isinstance(raw, Mapping) or "metric" not in raw:
        raise ConfigError(at, "expected `select: {metric: NAME, dataset: LABEL | all}`")
    for key in raw:
        if key not in ("metric", "dataset", "rung"):
            raise ConfigError(f"{at}.{key_text(key)}", "unknown key; allowed: metric, dataset, rung")
    metric = params.check(raw["metric"], str, {}, f"{at}.metric")
    dataset = params.check(raw.get("dataset", "each"), str, {}, f"{at}.dataset")
    labels = [d.label for d in suite.datasets]
    if dataset not in ("each", "all", *labels):
        raise ConfigError(f"{at}.dataset", f"got {dataset!r}; allowed: each, all, {', '.join(labels)}")
    providers = selection_metrics(suite, registry, metric)
    if not providers:
        outputs = sorted({name for m in suite.metrics for name in reported_outputs(m, registry)})
        raise ConfigError(f"{at}.metric", f"no metric of the suite outputs {metric!r}; outputs: "
                                          f"{', '.join(outputs) or 'none'}")
    if registry.outputs()[metric].better == "none":
        raise ConfigError(f"{at}.metric", f"{metric!r} declares no direction (better: none): choose a metric "
                                          f"that is higher- or lower-is-better")
    for spec in suite.datasets:
        if dataset in ("each", "all", spec.label) and not _applies(providers, spec, registry):
            raise ConfigError(f"{at}.metric", f"{metric!r} cannot be computed on dataset {spec.label!r}; choose "
                                              f"another metric, or select on another dataset")
    return metric, dataset


def selection_metrics(suite: Any, registry: Any, metric: str) -> tuple[Any, ...]:
    """The suite's metric specs that output ``metric`` (what the trials compute)."""
    return tuple(m for m in suite.metrics if metric in reported_outputs(m, registry))


def reported_outputs(spec: Any, registry: Any) -> set[str]:
    """The outputs a metric of the suite reports as configured (an instance may narrow its class's, e.g. to
    one feature set); its class's when the constructor raises (the metric's jobs will say why)."""
    cls = registry.entry(spec).cls
    try:
        return {o.name for o in cls(spec.config).outputs}
    except Exception:  # noqa: BLE001 - a broken plugin fails its own jobs, not the parse
        return {o.name for o in cls.outputs}


def _applies(providers: tuple[Any, ...], dataset_spec: Any, registry: Any) -> bool:
    """Whether any provider's ``applies`` accepts an evaluation on this dataset (small samples)."""
    import torch

    from ..api.metric import Evaluation

    dataset = registry.build(dataset_spec)
    data = dataset.sample(16, torch.Generator().manual_seed(0))
    evaluation = Evaluation(data, data, dataset, 0)
    return any(registry.build(m).applies(evaluation) for m in providers)


def parse_spaces(block: Any, config: Any, where: str) -> tuple[Space, ...]:
    """The searched settings of one objective, each checked against its Config dataclass."""
    if block is None:
        return ()
    if not isinstance(block, Mapping) or not block:
        raise ConfigError(where, f"expected a mapping of setting: list or distribution, got {show(block)}")
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    spaces = []
    for name, value in block.items():
        at = f"{where}.{key_text(name)}"
        hint, meta = _setting(name, fields, hints, config, at)
        spaces.append(_space(name, value, hint, meta, at))
    return tuple(spaces)


def _setting(name: Any, fields: Mapping[str, Any], hints: Mapping[str, Any], config: Any, at: str):
    """(type, bounds) of a searched setting name (``betas.0``: the first item of a fixed-length list)."""
    base, _, index = name.partition(".") if isinstance(name, str) else (name, "", "")
    if base not in fields:
        raise ConfigError(at, f"not a setting of this objective; allowed: {', '.join(fields)}")
    hint = hints[base]
    if not index:
        return hint, fields[base].metadata
    args = typing.get_args(hint)
    if typing.get_origin(hint) is not tuple or (args and args[-1] is Ellipsis) or not index.isdigit() \
            or int(index) >= len(args):
        size = len(getattr(config, base)) if isinstance(getattr(config, base), tuple) else 0
        raise ConfigError(at, f"an item index needs a fixed-length list setting: use {base}.0 .. {base}.{size - 1}"
                          if size else f"{base!r} is not a list setting: search it as {base}")
    return args[int(index)], fields[base].metadata


def _space(name: str, value: Any, hint: Any, meta: Mapping[str, Any], at: str) -> Space:
    if isinstance(value, list):
        if not value:
            raise ConfigError(at, "an empty grid: list at least one value")
        return Space(name, "grid", tuple(params.check(v, hint, meta, at) for v in value))
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        raise ConfigError(at, f"expected a list of values or one of {{{': [...]}, {'.join(DISTRIBUTIONS)}: [...]}}, "
                              f"got {show(value)}")
    kind, args = next(iter(value.items()))
    at = f"{at}.{kind}"
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(at, f"expected a non-empty list of values, got {show(args)}")
        return Space(name, kind, tuple(params.check(v, hint, meta, at) for v in args))
    wanted = int if kind == "int" else float
    if hint is not wanted:
        what = {int: "whole-number", float: "real-valued"}.get(hint, "non-numeric")
        fix = {int: "use int: [low, high]", float: "use uniform or loguniform"}.get(hint, "use a list or choice: [...]")
        raise ConfigError(at, f"{kind} needs a {'whole-number' if kind == 'int' else 'real-valued'} setting, but "
                              f"{name!r} is {what}; {fix}")
    if not isinstance(args, list) or len(args) != 2:
        raise ConfigError(at, f"expected [low, high], got {show(args)}")
    low, high = (params.check(v, hint, meta, at) for v in args)
    if low > high:
        raise ConfigError(at, f"low > high: got [{low}, {high}]")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(at, f"log-uniform bounds must be > 0, got [{low}, {high}]")
    return Space(name, kind, (low, high))


def grid_size(spaces: tuple[Space, ...]) -> int:
    return math.prod(len(s.values) for s in spaces if s.kind == "grid")


def draw_trials(spaces: tuple[Space, ...], trials: int, seed: int, label: str) -> list[dict[str, Any]]:
    """The searched values of each trial: ``{}`` for trial 0 (the default setting), then trials
    1..N-1. Deterministic in (``seed``, ``label``); trial i does not depend on ``trials``."""
    rng = np.random.default_rng([seed, int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "little")])
    grids = [s for s in spaces if s.kind == "grid"]
    points = list(itertools.product(*(s.values for s in grids)))
    drawn: list[dict[str, Any]] = [{}]
    for i in range(1, trials):
        values = dict(zip((s.name for s in grids), points[(i - 1) % len(points)]))
        for s in spaces:
            if s.kind == "loguniform":
                values[s.name] = float(np.exp(rng.uniform(np.log(s.values[0]), np.log(s.values[1]))))
            elif s.kind == "uniform":
                values[s.name] = float(rng.uniform(*s.values))
            elif s.kind == "int":
                values[s.name] = int(rng.integers(s.values[0], s.values[1] + 1))
            elif s.kind == "choice":
                values[s.name] = s.values[int(rng.integers(len(s.values)))]
        drawn.append({s.name: values[s.name] for s in spaces})
    return drawn


def apply(config: Any, values: Mapping[str, Any], where: str) -> Any:
    """``config`` with the searched ``values`` set (``betas.0`` replaces one item of ``betas``)."""
    changes: dict[str, Any] = {}
    for name, value in values.items():
        base, _, index = name.partition(".")
        if index:
            items = list(changes.get(base, getattr(config, base)))
            items[int(index)] = value
            value = tuple(items)
        changes[base] = value
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as exc:  # a cross-field check of the config
        raise ConfigError(where, f"a drawn trial is invalid: {exc}") from None


def trial_values(config: Any, spaces: tuple[Space, ...]) -> dict[str, Any]:
    """The value of every searched setting in ``config`` (trial 0 reports its defaults this way)."""
    out = {}
    for s in spaces:
        base, _, index = s.name.partition(".")
        value = getattr(config, base)
        out[s.name] = value[int(index)] if index else value
    return out


def per_member_settings(config: Any) -> tuple[str, ...]:
    """Settings that may differ between the members of one stacked model: the optimizer's, and
    those the objective declares with ``param(..., per_member=True)``."""
    return tuple(f.name for f in dataclasses.fields(config)
                 if f.name in OPTIMIZER_SETTINGS or f.metadata.get("per_member"))
