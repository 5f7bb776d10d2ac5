"""How many seeds fit in one stacked model: a member's estimated training memory (its blueprint's,
:mod:`.blueprint`) against the device's free memory. The estimate is halved for safety; a job that
still runs out of memory is retried in smaller groups (:func:`benchbench.train.trainer.run_job`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .blueprint import Blueprint

BUDGET_SHARE = 0.5  # share of the free memory a job's members may use


def free_bytes(device: torch.device, workers: int = 1) -> int | None:
    """Free memory of ``device`` for one of ``workers`` processes (None when unknown)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free) // max(1, workers)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 // max(1, workers)
    except OSError:
        pass
    return None


def members_that_fit(blueprint: Blueprint, device: torch.device, workers: int = 1) -> int | None:
    """Most members whose estimated memory fits in half the free memory (None when unknown)."""
    free = free_bytes(device, workers)
    if free is None:
        return None
    return max(1, int(free * BUDGET_SHARE) // max(1, blueprint.train_bytes()))
