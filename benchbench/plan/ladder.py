"""Budget ladders (:mod:`benchbench.config.compute`): which rungs an objective trains, and the key of
each rung's cells.

Every rung of a ladder is a cell of its own, keyed by the rung's budget and the ladder, with its
index (``rung``: 0 the lowest, the last the top). By default one training per seed runs to the top
rung and is scored on the way: the top rung's cell trains, and the cells of the lower rungs are
scored from it (:attr:`benchbench.plan.cells.Cell.lower`). An objective whose training depends on
its budget (:func:`retrains`) trains every rung from scratch instead, each rung a job of its own.
A single budget is a one-rung ladder whose cells keep the keys they had before ladders.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

from ..config.suite import ComponentSpec, Suite


def retrains(suite: Suite, objective: ComponentSpec) -> bool:
    """Whether each rung of ``suite``'s ladder trains ``objective`` from scratch: the suite asks for
    it (``budget: {..., retrain: true}``), or the objective's training depends on its budget."""
    return suite.budget.retrain or depends_on_budget(objective.config)


def depends_on_budget(config: Any) -> bool:
    """Whether an objective's config makes its training depend on the total budget (a learning-rate
    schedule that decays over it: :attr:`benchbench.api.objective.ObjectiveConfig.budget_dependent`), so
    that a lower rung cannot be read off a longer training. EMA keeps a ladder on one training."""
    return bool(getattr(config, "budget_dependent", False))


class RetrainWarning(UserWarning):
    """A ladder whose rungs some objective trains from scratch: said once, before training."""


def warn_retrains(suite: Suite) -> list[str]:
    """One line per objective that a ladder retrains at every rung (its learning rate decays over the
    budget), with what that costs beside one training to the top rung; warned before training."""
    if not is_ladder(suite):
        return []
    ladder = suite.budget.ladder
    cost = sum(ladder) / ladder[-1]  # every rung trained, over the top rung's training alone
    lines = [f"{suite.source}: objectives.{spec.label}: "
             + ("budget.retrain is true" if suite.budget.retrain else
                f"lr_schedule {spec.config.lr_schedule} decays over the budget")
             + f", so each of the {len(ladder)} rungs trains from scratch: {cost:.2f}x the training of one run to "
               f"the top rung" for spec in suite.objectives if retrains(suite, spec)]
    for line in lines:
        warnings.warn(line, RetrainWarning, stacklevel=2)
    return lines


def is_ladder(suite: Suite) -> bool:
    return len(suite.budget.ladder) > 1


def top_rung(suite: Suite) -> int:
    """The index of the top rung (0 for a single budget)."""
    return len(suite.budget.ladder) - 1


def rung_suite(suite: Suite, rung: int) -> Suite:
    """``suite`` with the single budget of ``rung``: what a retrained rung's job trains under."""
    return dataclasses.replace(suite, budget=suite.budget.at(rung))


def rung_key(suite: Suite, rung: int) -> dict[str, Any]:
    """What a ladder cell's key holds besides the rung's budget: the ladder and the rung's index
    (nothing for a single budget, so its cells keep their keys)."""
    if not is_ladder(suite):
        return {}
    budget = suite.budget
    return {"ladder": {budget.unit: list(budget.ladder), "rung": rung, "retrain": budget.retrain}}
