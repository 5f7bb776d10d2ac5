"""What one training step of one model costs before a run: its FLOPs (the blueprint's, counted on a
one-member stack as the trainer counts them) or its wall time (the second of two steps, measured here on
the suite's device); a FLOP or seconds budget that cannot pay for one step is refused in one line
(:func:`check_budget`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from ..api.dataset import Dataset
from ..api.errors import BenchbenchError, ConfigError
from ..config.suite import ComponentSpec, ExecutionSettings, Suite
from ..plan.blueprint import Blueprint
from ..registry.components import Registry
from .timing import count_flops
from .trainer import build, stepper


def member_step_cost(registry: Registry, objective: ComponentSpec, dataset: Dataset, device: torch.device,
                     execution: ExecutionSettings, unit: str) -> float | None:
    """FLOPs (``unit`` "flops"; None when nothing could be counted) or seconds of one training step of
    one member of ``objective`` on ``dataset``. Exceptions of the plugins propagate."""
    instance = build(registry, objective, dataset, device)
    step = stepper(instance, dataset, [0], device, execution)
    if unit == "flops":
        return count_flops(step)
    step()  # warm-up: first-call allocations
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def check_budget(suite: Suite, registry: Registry, blueprints: Sequence[Blueprint]) -> None:
    """Every objective (every trial of a search) must afford one training step of one model under a
    FLOP or seconds budget: FLOPs from its blueprint (counted on a one-member stack), seconds measured
    here (one timed step, so a budget close to it may still be refused or pass by the machine's noise)."""
    if suite.budget.unit == "steps":
        return
    unit, amount = suite.budget.unit, suite.budget.ladder[0]  # a ladder's lowest rung must pay for a step too
    where = f"{suite.source}: budget.{unit}" + ("[0]" if suite.budget.rungs else "")
    device = torch.device(suite.device)
    datasets = {spec.label: spec for spec in suite.datasets}
    for blueprint in blueprints:
        spec = blueprint.spec
        if unit == "flops":
            cost = blueprint.step_flops
            if cost is None and blueprint.note:
                continue  # a step that failed: the job reports it, naming the plugin
        else:
            try:
                cost = member_step_cost(registry, spec, build(registry, datasets[blueprint.dataset]), device,
                                        suite.execution, unit)
            except BenchbenchError:
                raise
            except Exception:  # noqa: BLE001 - a broken plugin fails its own jobs, named, not the whole run
                continue
        what = f"objective {spec.label!r} on {blueprint.dataset!r}"
        if cost is None:
            raise ConfigError(where, f"{what}: the FLOPs of its training step cannot be counted (no matrix "
                                     f"products or convolutions): give a budget in steps or seconds")
        if cost > amount:
            shown = f"{cost:.3g} FLOPs" if unit == "flops" else f"{cost:.3g} s"
            rung = "the lowest rung" if suite.budget.rungs else "the budget"
            raise ConfigError(where, f"{what}: one training step takes {shown} per model, more than "
                                     f"{rung} of {amount:.3g}; raise it to at least {cost:.3g}")
        warmup, top = getattr(spec.config, "warmup", 0), suite.budget.ladder[-1]  # warmup within the top rung
        if unit == "flops" and warmup and warmup >= top // cost:
            raise ConfigError(f"{suite.source}: objectives.{spec.label}.warmup",
                              f"{warmup} warmup steps, but on {blueprint.dataset!r} the budget pays for "
                              f"{int(top // cost)} steps; allowed: 0 to {int(top // cost) - 1}")

