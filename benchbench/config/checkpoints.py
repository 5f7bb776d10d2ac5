"""How often a job writes its checkpoint (``execution.checkpoint_every``): a number of steps (``500`` or
``500 steps``), a wall time (``90s``, ``10min``, ``2h``), or ``never``. The training state a checkpoint
holds, and how a job resumes from it: :mod:`benchbench.train.checkpoint`."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from ..api.params import show

SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0}
PATTERN = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(steps?|s|min|h)\s*")
ALLOWED = "a positive number of steps (500, 500 steps) or of wall time (90s, 10min, 2h), or never"


@dataclasses.dataclass(frozen=True)
class Interval:
    unit: str  # "steps" or "seconds"
    amount: float  # an int for steps


def parse_interval(value: Any) -> Interval | None:
    """The interval ``value`` names (None for ``never``); ValueError("checkpoint_every: ...") otherwise."""
    if value == "never":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        interval = Interval("steps", value)
    else:
        match = PATTERN.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"checkpoint_every: got {show(value)}; allowed: {ALLOWED}")
        number, unit = float(match[1]), match[2]
        if unit.startswith("step"):
            if not number.is_integer():
                raise ValueError(f"checkpoint_every: got {show(value)}; allowed: {ALLOWED}")
            interval = Interval("steps", int(number))
        else:
            interval = Interval("seconds", number * SECONDS[unit])
    if not (interval.amount > 0 and math.isfinite(interval.amount)):
        raise ValueError(f"checkpoint_every: got {show(value)}; allowed: {ALLOWED}")
    return interval
