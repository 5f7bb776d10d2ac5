"""Compute budgets: how much training each model gets, in steps, training FLOPs or seconds.

A suite gives its budget as ``budget: {steps: N}``, ``{flops: F}`` or ``{seconds: S}`` (one unit),
or with the older top-level ``steps: N`` (a step budget; giving both is an error). Every amount is
per trained model (one seed of one objective on one dataset):

- ``steps``: generator steps (each after the objective's own inner updates, e.g. k critic steps).
- ``flops``: training FLOPs. The trainer counts the FLOPs of one training step of the stack once at
  job start (matrix products and convolutions, forward and backward) and divides by the members:
  the FLOPs of one member-step, f. Every model then trains floor(F / f) steps, so objectives whose
  steps cost more take fewer of them. Exact and reproducible (cells are bit-identical on re-runs).
- ``seconds``: training wall clock, measured on the stack each model trains in: the members of a
  stack train simultaneously, each for the stack's S seconds (the per-model share that the
  throughput table's ``train_time_s`` reports is S / members). The step count then depends on the
  machine and its load: such cells are not reproducible, and comparisons are fair only between
  objectives trained in stacks of the same size on the same, otherwise quiet, machine.

With a FLOP or seconds budget, ``eval.every: N`` means N curve intervals: metric curves are recorded
at every 1/N of the budget (so every objective is scored at the same FLOPs or seconds, however
many steps that is), plus before and after training; 0 means before and after only.

Budget ladders: ``budget: {flops: [1e10, 3e10, 1e11]}`` (any unit; increasing) or a top budget and a
number of rungs, ``budget: {flops: 1e12, rungs: 5}``, spaced half a decade apart down from the top
(1e10, 3.16e10, ... 1e12; ``lowest: A`` sets the lowest rung instead, the others log-spaced between).
Every objective is scored at every rung with the full final evaluation. By default one training runs
to the top rung and is scored on the way, when its steps, FLOPs or seconds reach each rung: the same
weights a training stopped at that rung would have, which holds for a constant learning rate (the
default). ``retrain: true`` trains every rung from scratch instead (:func:`benchbench.plan.ladder.retrains`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..api import params
from ..api.errors import ConfigError
from ..api.params import key_text, show

UNITS = ("steps", "flops", "seconds")
LADDER_KEYS = ("rungs", "lowest", "retrain")  # beside the unit in a ladder's `budget:` mapping
MAX_RUNGS = 100
RUNG_SPACING = 10**0.5  # `rungs: N` without `lowest`: half a decade between rungs
MAX_STEPS = 10**9  # training steps (and curve intervals)
MAX_AMOUNT = {"steps": MAX_STEPS, "flops": 1e21, "seconds": 10 * 24 * 3600.0}  # beyond these: typos
DEFAULT_STEPS = 1000
PROGRESS_UNITS = 100  # with a FLOP or seconds budget, progress is reported in hundredths of it per model


@dataclasses.dataclass(frozen=True)
class Budget:
    """The training budget of every model of a suite: ``amount`` of ``unit`` (see the module docstring)."""

    unit: str = "steps"  # one of UNITS
    amount: float = DEFAULT_STEPS  # an int for steps; the top rung of a ladder
    rungs: tuple[float, ...] = ()  # a ladder: every rung's amount, increasing, the last = amount; () = one budget
    retrain: bool = False  # a ladder: train every rung from scratch (else one training scored at each rung)

    @property
    def ladder(self) -> tuple[float, ...]:
        """The amount of every rung (one rung for a single budget)."""
        return self.rungs or (self.amount,)

    def at(self, rung: int) -> Budget:
        """The single budget of rung ``rung``."""
        return Budget(self.unit, self.ladder[rung])

    @property
    def steps(self) -> int | None:
        """The step count of a step budget; None for a FLOP or seconds budget (known only at job start)."""
        return int(self.amount) if self.unit == "steps" else None

    def resolved(self) -> dict[str, Any]:
        if self.rungs:
            return {self.unit: list(self.rungs), "retrain": self.retrain}
        return {self.unit: self.amount}

    def describe(self) -> str:
        """The budget in words, for reports and messages."""
        if self.rungs:
            amounts = ", ".join(f"{int(a)}" if self.unit == "steps" else f"{a:.3g}" for a in self.rungs)
            return f"{describe(self.unit, self.amount)}; scored at {len(self.rungs)} rungs: {amounts}"
        return describe(self.unit, self.amount)


def describe(unit: str, amount: float) -> str:
    if unit == "steps":
        return f"{int(amount)} training steps per model"
    if unit == "flops":
        return f"{amount:.3g} training FLOPs per model (each objective trains until it has spent them)"
    return f"{amount:g} s of training per model (the wall clock of its stacked job)"


def describe_budget(suite: Mapping[str, Any]) -> str:
    """The training budget of a suite mapping (a run's resolved ``suite.yaml``) in words, as
    :meth:`Budget.describe` says it; "?" for a budget this version cannot read."""
    try:
        return parse_budget(suite, "suite").describe()
    except ConfigError:
        return "?"


def parse_budget(raw: Mapping[str, Any], source: str) -> Budget:
    """The budget of suite mapping ``raw``: its ``budget:`` mapping, or its top-level ``steps:``
    (neither: the default step budget)."""
    if "budget" in raw and "steps" in raw:
        raise ConfigError(f"{source}: budget", "give the budget once: either `budget: {steps | flops | seconds: N}` "
                                               "or the top-level `steps: N`, not both")
    if "budget" not in raw:
        return Budget("steps", params.check(raw.get("steps", DEFAULT_STEPS), int, {"ge": 1, "le": MAX_STEPS},
                                            f"{source}: steps"))
    budget, at = raw["budget"], f"{source}: budget"
    if not isinstance(budget, Mapping):
        raise ConfigError(at, f"expected one unit and its amount, e.g. {{flops: 2.0e+11}}; units: {', '.join(UNITS)}; "
                              f"got {show(budget)}")
    for key in budget:
        if key not in UNITS + LADDER_KEYS:
            raise ConfigError(f"{at}.{key_text(key)}", f"unknown unit; allowed: {', '.join(UNITS)} (and beside "
                                                       f"the unit of a ladder: {', '.join(LADDER_KEYS)})")
    units = [u for u in UNITS if u in budget]
    if len(units) != 1:
        raise ConfigError(at, f"expected one unit and its amount, e.g. {{flops: 2.0e+11}} or a ladder {{flops: "
                              f"[1.0e+10, 1.0e+11]}}; units: {', '.join(UNITS)}; got {', '.join(units) or 'none'}"
                              f"{': a ladder is in one unit' if len(units) > 1 else ''}")
    unit = units[0]
    amount = budget[unit]
    if isinstance(amount, (list, tuple)):
        for key in ("rungs", "lowest"):
            if key in budget:
                raise ConfigError(f"{at}.{key}", f"give either a list of rungs ({unit}: [...]) or a top budget with "
                                                 f"`rungs: N`, not both")
        if not amount:
            raise ConfigError(f"{at}.{unit}", "an empty ladder: give one budget or a list of increasing budgets")
        rungs = tuple(check_amount(unit, a, f"{at}.{unit}[{i}]") for i, a in enumerate(amount))
        top = rungs[-1]
    else:
        top = check_amount(unit, amount, f"{at}.{unit}")
        rungs = spaced_rungs(unit, top, budget, at) if "rungs" in budget or "lowest" in budget else ()
    if rungs:
        check_increasing(unit, rungs, at)
    retrain = params.check(budget.get("retrain", False), bool, {}, f"{at}.retrain")
    if retrain and len(rungs) < 2:
        raise ConfigError(f"{at}.retrain", "retrains the rungs of a ladder: give several budgets (a list, or "
                                           "`rungs: N`)")
    return Budget(unit, top, rungs if len(rungs) > 1 else (), retrain)  # a one-rung list is a single budget


def spaced_rungs(unit: str, top: float, budget: Mapping[str, Any], at: str) -> tuple[float, ...]:
    """``rungs`` amounts log-spaced up to ``top``: from ``lowest`` if given, else half a decade apart."""
    n = params.check(budget.get("rungs", 2), int, {"ge": 2, "le": MAX_RUNGS}, f"{at}.rungs")
    lowest = check_amount(unit, budget["lowest"], f"{at}.lowest") if "lowest" in budget \
        else top / RUNG_SPACING ** (n - 1)
    if lowest >= top:
        raise ConfigError(f"{at}.lowest", f"must be below the top budget {top:g}, got {lowest:g}")
    ratio = (top / lowest) ** (1 / (n - 1))
    amounts = [lowest * ratio ** i for i in range(n - 1)] + [top]
    if unit == "steps":
        amounts = [max(1, round(a)) for a in amounts]
        if len(set(amounts)) < n:
            raise ConfigError(f"{at}.rungs", f"{n} rungs up to {int(top)} steps would repeat a step count "
                                             f"({', '.join(map(str, amounts))}): use fewer rungs or a larger budget")
    else:
        amounts = [float(f"{a:.4g}") for a in amounts[:-1]] + [top]  # readable amounts in keys and reports
    return tuple(amounts)


def check_increasing(unit: str, rungs: tuple[float, ...], at: str) -> None:
    if len(rungs) > MAX_RUNGS:
        raise ConfigError(f"{at}.{unit}", f"{len(rungs)} rungs; at most {MAX_RUNGS}")
    for i in range(1, len(rungs)):
        if rungs[i] <= rungs[i - 1]:
            raise ConfigError(f"{at}.{unit}[{i}]", f"a ladder's rungs must increase: {rungs[i]:g} follows "
                                                   f"{rungs[i - 1]:g}")


def check_amount(unit: str, amount: Any, where: str) -> float:
    if unit == "steps":
        return params.check(amount, int, {"ge": 1, "le": MAX_STEPS}, where)
    return params.check(amount, float, {"gt": 0, "le": MAX_AMOUNT[unit]}, where)  # NaN and inf refused


def curve_steps(steps: int, every: int) -> set[int]:
    """With a FLOP budget of ``steps`` steps: the steps after which a curve point falls, at every
    1/``every`` of the budget (neither 0 nor the last step, which are always scored)."""
    if not every:
        return set()
    return {round(steps * j / every) for j in range(1, every)} - {0, steps}
