"""The learning rate of every update at each step (``lr_schedule``, ``warmup``, ``lr_floor`` in the objective's
config): a multiple of each update's own learning rate (``lr``, ``critic_lr``...), the same for every member.

Step ``s`` (1 for the first) of a budget of ``T`` steps with ``W`` warmup steps trains with the factor
``s / W`` while ``s <= W``, then, with ``p = (s - W - 1) / (T - W)`` in [0, 1): 1 (``constant``),
``floor + (1 - floor) (1 - p)`` (``linear``) or ``floor + (1 - floor) (1 + cos(pi p)) / 2`` (``cosine``).
A decay needs ``T``: a step or FLOP budget (a seconds budget is refused when the suite is checked). The
factor is a function of the step alone, so a checkpoint needs no schedule state beyond the step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..api.objective import ObjectiveConfig


def lr_factor(step: int, total: int | None, schedule: str, warmup: int = 0, floor: float = 0.0) -> float:
    """The multiple of the learning rate used by training step ``step`` (1-based) of ``total``."""
    if step <= warmup:
        return step / warmup
    if schedule == "constant":
        return 1.0
    assert total is not None and total > warmup, (total, warmup)
    progress = (step - warmup - 1) / (total - warmup)
    if schedule == "linear":
        return floor + (1 - floor) * (1 - progress)
    assert schedule == "cosine", schedule
    return floor + (1 - floor) * (1 + math.cos(math.pi * progress)) / 2


class LearningRates:
    """Sets the learning rate of each optimizer for a step (``at(step)``); nothing when the rate is constant."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer], config: ObjectiveConfig, total: int | None):
        self.optimizers, self.config, self.total = optimizers, config, total
        self.constant = config.lr_schedule == "constant" and not config.warmup
        self.base = [[group.get("lr") for group in optimizer.param_groups] for optimizer in optimizers]

    def at(self, step: int) -> None:
        if self.constant:
            return
        cfg = self.config
        factor = lr_factor(step, self.total, cfg.lr_schedule, cfg.warmup, cfg.lr_floor)
        for optimizer, base in zip(self.optimizers, self.base):
            if hasattr(optimizer, "lr_scale"):  # per-member learning rates (a search's trials)
                optimizer.lr_scale = factor
                continue
            for group, lr in zip(optimizer.param_groups, base):
                group["lr"] = lr * factor
