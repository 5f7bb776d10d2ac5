"""Conformance checks of a metric: declared outputs, plain numbers, determinism."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from ..api.metric import Evaluation, Metric, Timing, Unavailable
from .kit import METRIC_SAMPLES, KitMixture, _call, _component, _config, _fail, _label, _single_threaded

__tracebackhide__ = True


@_single_threaded
def check_metric(metric: type[Metric] | str, settings: Mapping[str, Any] | None = None,
                 evaluation: Evaluation | None = None) -> list[dict[str, float | Unavailable]]:
    """Check a metric class (or the name of an installed one) against its contract; return what it
    computed on each evaluation it applies to.

    Registrable, ``Config`` buildable from ``{}``; on ``evaluation`` (default: generated samples
    of :class:`KitMixture`, once with a job's timing and once without, as curves have none)
    ``compute`` returns exactly the declared outputs, each a plain number or
    :class:`~benchbench.Unavailable`, the same numbers when computed again. It must apply to at
    least one of the evaluations: pass one it applies to (e.g. on images).
    """
    cls = _component("metric", metric)
    label = _label(cls)
    instance = _call(label, "the constructor", cls, _config(cls, settings, label))
    evaluations = [evaluation] if evaluation is not None else kit_evaluations()
    results = []
    for ev in evaluations:
        if _call(label, "applies", instance.applies, ev):
            first = _computed(label, instance, ev)
            if _comparable(first) != _comparable(_computed(label, instance, ev)):
                _fail(label, "compute() returned other numbers for the same evaluation: draw randomness from "
                             "evaluation.generator(), not the global random state")
            results.append(first)
    if not results:
        _fail(label, "applies() is false for every evaluation tried; pass check_metric(..., evaluation=...) "
                     "with one it applies to")
    return results


def kit_evaluations(n: int = METRIC_SAMPLES) -> list[Evaluation]:
    """What :func:`check_metric` scores by default: held-out :class:`KitMixture` data against
    shifted, widened samples of it, with a job's timing (final evaluation) and without (curves)."""
    data = KitMixture()
    real = data.sample(n, torch.Generator().manual_seed(0))
    fake = 1.1 * data.sample(n, torch.Generator().manual_seed(1)) + 0.05
    timing = Timing("cpu", members=2, steps=100, train_seconds=0.5, samples=n, sample_seconds=1e-3,
                    peak_memory_bytes=2**28, memory_kind="process_rss", flops_per_step=1e6)
    return [Evaluation(real, fake, data, seed=0, timing=timing, step=100),
            Evaluation(real, fake, data, seed=0, step=50)]


def _computed(label: str, metric: Metric, evaluation: Evaluation) -> dict[str, float | Unavailable]:
    values = _call(label, "compute", metric.compute, evaluation)
    declared = {o.name for o in metric.outputs}
    if not isinstance(values, dict) or set(values) != declared:
        got = sorted(values) if isinstance(values, dict) else type(values).__name__
        _fail(label, f"compute() returned {got}; expected exactly the declared outputs {sorted(declared)} "
                     f"(an output it cannot compute here: Unavailable(reason))")
    for key, value in values.items():
        if not (isinstance(value, Unavailable) or (isinstance(value, (int, float)) and not isinstance(value, bool))):
            _fail(label, f"output {key!r} is {type(value).__name__} {value!r}; expected a plain float "
                         f"(float(tensor)) or Unavailable(reason)")
    return values


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    """Values with NaN made equal to itself."""
    return {k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()}


