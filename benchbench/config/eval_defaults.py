"""Metric settings that a suite sets once, under ``eval``, for every metric that leaves them to it.

A metric's Config field named like one of :data:`INHERITED` and holding its "inherit" value takes the
value of the suite's ``eval`` block when the suite is parsed (``features: eval`` -> ``eval.features``;
an empty weight file or checksum -> ``eval``'s). The resolved suite shows each metric's own value, so
what a score was computed with is saved with it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

INHERITED = {"features": "eval", "inception_weights": "", "inception_sha256": ""}  # field -> its "inherit" value


def with_eval_defaults(metrics: tuple, eval_settings: Any) -> tuple:
    """``metrics`` (ComponentSpecs) with every inherited field left to the suite set from ``eval_settings``."""
    resolved = []
    for spec in metrics:
        fields = {f.name for f in dataclasses.fields(spec.config)}
        changes = {name: getattr(eval_settings, name) for name, inherit in INHERITED.items()
                   if name in fields and getattr(spec.config, name) == inherit}
        resolved.append(dataclasses.replace(spec, config=dataclasses.replace(spec.config, **changes)) if changes
                        else spec)
    return tuple(resolved)
