"""The suite's ``targets:``: a score per metric that reports how much training each objective needs
to reach it (:mod:`benchbench.stats.targets`), e.g. ``targets: {jsd: 0.05, high_quality_pct: 90}``.

A target names an output of the suite's metrics (or of its objectives' diagnostics) that has a
direction (``better`` higher or lower), with a finite value inside the output's declared range.
Divergences the suite gives no target get twice their ``(data)`` value when the run is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..api.errors import ConfigError
from ..api.outputs import Output
from ..api.params import key_text, show
from ..registry.components import Registry


def suite_outputs(metrics, objectives, registry: Registry) -> dict[str, Output]:
    """The outputs the suite's metric and objective components (ComponentSpecs) declare, by name."""
    found: dict[str, Output] = {}
    for spec in metrics:
        found.update((o.name, o) for o in registry.available("metric")[spec.type].cls.outputs)
    for spec in objectives:
        found.update((o.name, o) for o in registry.available("objective")[spec.type].cls.diagnostics)
    return found


def parse_targets(value: Any, outputs: dict[str, Output], where: str) -> dict[str, float]:
    """metric -> target of the suite's ``targets:`` mapping (None: no targets), or a ConfigError."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(where, f"expected a mapping of metric: target score, e.g. {{jsd: 0.05}}; got {show(value)}")
    directed = sorted(name for name, o in outputs.items() if o.better in ("higher", "lower"))
    targets = {}
    for metric, target in value.items():
        at = f"{where}.{key_text(metric)}"
        if metric not in outputs:
            raise ConfigError(at, f"no metric of this suite reports it; outputs with a direction: "
                                  f"{', '.join(directed) or 'none'}")
        output = outputs[metric]
        if output.better not in ("higher", "lower"):
            raise ConfigError(at, f"{metric} has no direction (better: {output.better}), so no score is a target; "
                                  f"outputs with a direction: {', '.join(directed) or 'none'}")
        if isinstance(target, bool) or not isinstance(target, (int, float)) or target != target \
                or abs(target) == float("inf"):
            raise ConfigError(at, f"expected a finite number, got {show(target)}")
        if output.range is not None and not output.range[0] <= target <= output.range[1]:
            low, high = output.range
            raise ConfigError(at, f"{target:g} is outside the range of {metric}, [{low:.3g}, {high:.3g}]")
        targets[metric] = float(target)
    return targets
