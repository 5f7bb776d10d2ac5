"""The training recipe of an objective in a suite (``ema``, ``lr_schedule``, ``warmup``, ``grad_clip``: the
settings every objective has, :class:`benchbench.api.objective.ObjectiveConfig`):

- :func:`with_raw_rows`: an objective that averages its weights (``ema > 0``) is scored both ways from one
  training: its own row scores the average, a ``<label>.raw`` row (``weights: raw``) the raw weights. Giving
  ``weights`` yourself keeps the one row you asked for; a suite with a ``search`` gets no raw rows.
- :func:`check_recipes`: what only the budget can refuse (a warmup as long as the budget; a decay under a
  seconds budget, whose length no step knows), in one line before anything trains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..api.errors import ConfigError
from ..api.params import key_text

RAW_SUFFIX = ".raw"  # the label of the raw-weights row of an objective with ema > 0


def with_raw_rows(objectives: tuple[Any, ...], given: Any, where: str) -> tuple[Any, ...]:
    """``objectives`` (component specs) with a raw-weights row after each one with ``ema > 0`` whose settings
    (``given``, the suite's mapping) do not name ``weights``; ``given`` None (a search): no rows added."""
    if given is None:
        return objectives
    labels = {spec.label for spec in objectives}
    out = []
    for spec in objectives:
        out.append(spec)
        settings = given.get(spec.label) if isinstance(given, Mapping) else None  # a list of names: defaults
        if getattr(spec.config, "ema", 0) <= 0 or (isinstance(settings, Mapping) and "weights" in settings):
            continue
        label = spec.label + RAW_SUFFIX
        if label in labels:
            raise ConfigError(f"{where}.{key_text(label)}", f"this label names the raw-weights row of {spec.label!r} "
                                                            f"(ema > 0): rename it, or set weights on {spec.label!r}")
        out.append(dataclasses.replace(spec, label=label, config=dataclasses.replace(spec.config, weights="raw")))
    return tuple(out)


def check_recipes(suite: Any) -> None:
    """Refuse a warmup that fills a step budget, and a decaying learning rate under a seconds budget."""
    for spec in suite.objectives:
        cfg, at = spec.config, f"{suite.source}: objectives.{spec.label}"
        if getattr(cfg, "lr_schedule", "constant") != "constant" and suite.budget.unit == "seconds":
            raise ConfigError(f"{at}.lr_schedule", f"{cfg.lr_schedule} decays over the budget's steps, which a seconds "
                                                   f"budget does not know; allowed here: constant (or a budget in "
                                                   f"steps or flops)")
        steps = suite.budget.steps
        if steps is not None and getattr(cfg, "warmup", 0) >= steps:
            raise ConfigError(f"{at}.warmup", f"{cfg.warmup} warmup steps of a budget of {steps} steps; allowed: "
                                              f"0 to {steps - 1}")
