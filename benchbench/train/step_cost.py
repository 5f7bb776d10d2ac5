"""What one training step of one model costs, measured before a run (preflight) on a one-member
stack: its FLOPs (counted as the trainer counts them) or its wall time (the second of two steps)."""

from __future__ import annotations

import time

import torch

from ..api.dataset import Dataset
from ..config.suite import ComponentSpec, ExecutionSettings
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
