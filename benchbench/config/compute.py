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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..api import params
from ..api.errors import ConfigError
from ..api.params import key_text, show

UNITS = ("steps", "flops", "seconds")
MAX_STEPS = 10**9  # training steps (and curve intervals)
MAX_AMOUNT = {"steps": MAX_STEPS, "flops": 1e21, "seconds": 10 * 24 * 3600.0}  # beyond these: typos
DEFAULT_STEPS = 1000
PROGRESS_UNITS = 100  # with a FLOP or seconds budget, progress is reported in hundredths of it per model


@dataclasses.dataclass(frozen=True)
class Budget:
    """The training budget of every model of a suite: ``amount`` of ``unit`` (see the module docstring)."""

    unit: str = "steps"  # one of UNITS
    amount: float = DEFAULT_STEPS  # an int for steps

    @property
    def steps(self) -> int | None:
        """The step count of a step budget; None for a FLOP or seconds budget (known only at job start)."""
        return int(self.amount) if self.unit == "steps" else None

    def resolved(self) -> dict[str, Any]:
        return {self.unit: self.amount}

    def describe(self) -> str:
        """The budget in words, for reports."""
        return describe(self.unit, self.amount)


def describe(unit: str, amount: float) -> str:
    if unit == "steps":
        return f"{int(amount)} generator steps per model"
    if unit == "flops":
        return f"{amount:.3g} training FLOPs per model"
    return f"{amount:g} s of training per model (the wall clock of its stack)"


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
    if not isinstance(budget, Mapping) or len(budget) != 1:
        raise ConfigError(at, f"expected one unit and its amount, e.g. {{flops: 2.0e+11}}; units: {', '.join(UNITS)}; "
                              f"got {show(budget)}")
    unit, amount = next(iter(budget.items()))
    if unit not in UNITS:
        raise ConfigError(f"{at}.{key_text(unit)}", f"unknown unit; allowed: {', '.join(UNITS)}")
    return Budget(unit, check_amount(unit, amount, f"{at}.{unit}"))


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
