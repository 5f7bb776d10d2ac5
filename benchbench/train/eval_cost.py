"""What sampling for evaluation will cost, estimated before a run: a setting that makes it very long
(``sampling_steps: 100000`` with 2,500 samples) is one warning line before training, with the estimate.

A sampler that evaluates its networks many times per sample (``nfe() > 1``: flow, diffusion) is timed
on an untrained one-member stack for at most :data:`PROBE_S` seconds after its first network call,
counting its networks' forward calls; the run's draws (every curve point, the final samples and the
throughput repeats, every seed) then cost that per call, times the calls per draw, divided among the
workers. Metrics are not counted; a draw of more samples than :data:`PROBE_SAMPLES` is scaled linearly.
"""

from __future__ import annotations

import os
import time
import warnings

import torch

from ..api.params import sampling_settings
from ..config.suite import ComponentSpec, Suite
from ..plan.build import build
from ..registry.components import Registry
from .declarations import declared_nfe
from .sampling import SAMPLING_REPEATS, draw
from .stack import build_networks

WARN_S = 3600.0  # warn when sampling for evaluation alone should take longer than this (wall seconds)
PROBE_S = 0.1  # the longest a sampler is timed for the estimate (beyond its first network call)
PROBE_SAMPLES = 256  # samples drawn for the estimate; larger draws are scaled linearly


class SlowEvaluationWarning(UserWarning):
    """Sampling for evaluation should take longer than :data:`WARN_S` (``benchbench run`` prints it as one line)."""


class _Enough(Exception):
    """Raised from a forward hook to stop the probe once it has timed enough network calls."""


def seconds_per_call(registry: Registry, spec: ComponentSpec, dataset_spec: ComponentSpec, suite: Suite,
                     n: int, workers: int = 1) -> tuple[float, int]:
    """(seconds of one network call of ``spec``'s sampler drawing ``n`` samples for one member, its calls
    per sample (``nfe``)), timed on an untrained stack with the intra-op threads of one of ``workers``, for
    at most about :data:`PROBE_S` seconds after its first call."""
    device = torch.device(suite.device)
    dataset = build(registry, dataset_spec)
    objective = build(registry, spec, dataset, device)
    nfe = declared_nfe(objective)
    if nfe <= 1:
        return 0.0, nfe  # one network call per sample: as cheap as a training step's forward pass
    nets = build_networks(objective, dataset, [0], device, suite.execution)
    probe = min(n, PROBE_SAMPLES)
    calls, first, start = 0, 0.0, time.perf_counter()

    def count(module, inputs, output) -> None:
        nonlocal calls, first
        calls += 1
        if calls == 1:  # the first call warms up (allocations, kernel choices): timed from its end
            first = time.perf_counter()
        elif time.perf_counter() - first > PROBE_S:
            raise _Enough

    hooks = [module.register_forward_hook(count) for module in nets.modules.values()]
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))  # as a worker runs it
    try:
        draw(nets, objective, dataset, [0], probe, "probe")
    except _Enough:
        pass
    finally:
        torch.set_num_threads(threads)
        for hook in hooks:
            hook.remove()
    end = time.perf_counter()
    per_call = (end - first) / (calls - 1) if calls > 1 else (end - start) / max(calls, 1)
    return per_call * n / probe, nfe


def estimate(suite: Suite, registry: Registry) -> list[tuple[ComponentSpec, float]]:
    """Per objective whose sampler calls its networks more than once per sample: the wall seconds that
    sampling for evaluation should take over the run (all datasets and seeds, shared among workers)."""
    settings = suite.eval
    if suite.budget.unit == "steps":
        points = suite.steps // settings.every + 2 if settings.every else 1
    else:
        points = settings.every + 2 if settings.every else 1
    cuda = torch.device(suite.device).type == "cuda"
    jobs = len(suite.objectives) * len(suite.datasets)
    workers = max(1, min(suite.execution.workers or (1 if cuda else os.cpu_count() or 1), jobs))
    found = []
    for spec in suite.objectives:
        total = 0.0
        for dataset in suite.datasets:
            try:
                final, nfe = seconds_per_call(registry, spec, dataset, suite, settings.samples, workers)
            except Exception:  # noqa: BLE001 - a broken plugin fails its own jobs, named, at run time
                break
            if nfe <= 1:
                break
            curve = final * settings.curve_samples / settings.samples
            total += len(suite.seeds) * nfe * (points * curve + (SAMPLING_REPEATS + 1) * final)
        if total:
            found.append((spec, total / workers))
    return found


def warn_if_slow(suite: Suite, registry: Registry, limit: float = WARN_S) -> list[str]:
    """A :class:`SlowEvaluationWarning` (and a line returned) per objective whose sampling for evaluation
    should take longer than ``limit`` seconds."""
    lines = []
    for spec, seconds in estimate(suite, registry):
        if seconds > limit:
            settings = ", ".join(sampling_settings(spec.config)) or "its sampler's settings"
            lines.append(f"{suite.source}: objectives.{spec.label}: sampling for evaluation alone should take about "
                         f"{_duration(seconds)} ({suite.eval.samples:,} samples x {len(suite.seeds)} seeds, curve "
                         f"points included); lower {settings}, eval.samples or eval.curve_samples, or raise eval.every")
    for line in lines:
        warnings.warn(line, SlowEvaluationWarning, stacklevel=2)
    return lines


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
