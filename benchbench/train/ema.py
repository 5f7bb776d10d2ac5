"""An exponential moving average (EMA) of every network's weights (``ema`` in the objective's config), scored
beside the raw weights of the same training.

After each training step ``t`` (0 for the first), every parameter's average moves towards it:
``average <- d_t * average + (1 - d_t) * parameter`` with the decay warmed up as ``d_t = min(d, (1 + t) /
(10 + t))``, so that an early curve point is not dominated by the initial weights. The average starts as the
initial weights. The update is two ``torch._foreach_mul`` and one ``torch._foreach_add_`` over all the
stacked parameters at once, each elementwise and rounded once (no fused multiply-add), so a member's average
is bit-identical whatever the other members of its stack. It costs 3 FLOPs per parameter per step, counted
in the training FLOPs (:meth:`EMA.flops_per_step`).

Buffers (batch-norm running statistics and counters) are not averaged: the networks stay in training mode
when they sample, so batch norm normalises with the statistics of the batch being drawn and its running
statistics are never read; the EMA weights are scored with the raw network's buffers as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

WARMUP_OFFSET = 10  # d_t = min(d, (1 + t) / (WARMUP_OFFSET + t))
FLOPS_PER_WEIGHT = 3  # two multiplications and an addition per parameter per update


class EMA:
    """The moving averages of the parameters of ``modules`` (every network of a job, stacked)."""

    def __init__(self, modules: dict[str, nn.Module], decay: float):
        assert 0 < decay < 1, decay
        self.decay = decay
        self.parameters = [p for module in modules.values() for p in module.parameters()]
        self.average = [p.detach().clone() for p in self.parameters]
        self.updates = 0  # t: updates made so far

    def decay_at(self, t: int) -> float:
        """The decay of update ``t`` (0 for the first): ``min(d, (1 + t) / (10 + t))``."""
        return min(self.decay, (1 + t) / (WARMUP_OFFSET + t))

    @torch.no_grad()
    def update(self) -> None:
        """Move every average towards its parameter (after a training step)."""
        d = self.decay_at(self.updates)
        self.updates += 1
        torch._foreach_mul_(self.average, d)
        torch._foreach_add_(self.average, torch._foreach_mul(self.parameters, 1 - d))

    def flops_per_step(self) -> int:
        """FLOPs of one update of the whole stack."""
        return FLOPS_PER_WEIGHT * sum(p.numel() for p in self.parameters)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The networks hold the averaged weights inside the block, their own weights again after it
        (copied in place: compiled networks keep their memory)."""
        with torch.no_grad():
            raw = [p.detach().clone() for p in self.parameters]
            torch._foreach_copy_(self.parameters, self.average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.parameters, raw)

    def state_dict(self) -> dict:
        return {"average": self.average, "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        assert len(state["average"]) == len(self.average) and state["decay"] == self.decay
        with torch.no_grad():
            torch._foreach_copy_(self.average, list(state["average"]))
        self.updates = int(state["updates"])


def make_ema(modules: dict[str, nn.Module], decay: float) -> EMA | None:
    """The EMA of ``modules``' weights, or None when ``decay`` is 0 (no averaging)."""
    return EMA(modules, decay) if decay > 0 else None


def scored_weights(ema: EMA | None, weights: str) -> contextlib.AbstractContextManager:
    """A block in which the networks hold the weights a row scores: the average (``weights`` "ema", when
    there is one), else the raw weights."""
    return ema.applied() if ema is not None and weights == "ema" else contextlib.nullcontext()

