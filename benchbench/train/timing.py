"""Throughput measurement: wall clocks that wait for the device, per-job peak memory, FLOP counting.
What a job measured reaches metrics as :class:`benchbench.Timing` (``benchbench.api.metric``)."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from . import phases


class Stopwatch:
    """Accumulates wall time over several start/stop intervals, synchronising CUDA first; with a
    ``phase`` name, its intervals are also that phase of the job being recorded (:mod:`.phases`)."""

    def __init__(self, device: torch.device, phase: str | None = None):
        self.device = device
        self.seconds = 0.0
        self._start: float | None = None
        self._phases = phases.active() if phase else None
        self._phase = phase

    def start(self) -> None:
        self._sync()
        if self._phases is not None:
            self._phases.start(self._phase)
        self._start = time.perf_counter()

    def stop(self) -> None:
        assert self._start is not None, "stop() without start()"
        self._sync()
        self.seconds += time.perf_counter() - self._start
        self._start = None
        if self._phases is not None:
            self._phases.stop()

    def elapsed(self) -> float:
        """Seconds so far, the running interval included (waits for the device)."""
        if self._start is None:
            return self.seconds
        self._sync()
        return self.seconds + time.perf_counter() - self._start

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def reset_peak_memory(device: torch.device) -> None:
    """Start a fresh peak-memory window for a job."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: writing 5 to clear_refs resets the process's peak RSS (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the peak stays the process's lifetime peak


def peak_memory(device: torch.device) -> tuple[int | None, str]:
    """(bytes, kind) of the peak memory since :func:`reset_peak_memory`."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda_allocated"
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024, "process_rss"
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024), "process_rss"


def count_flops(step) -> float | None:
    """Floating-point operations of ``step()``, forward and backward, or None when nothing could
    be counted. Exceptions of ``step()`` propagate.

    Matrix products and convolutions count by the per-operator formulas of
    :mod:`torch.utils.flop_counter` (2 per multiply-add), which count nothing else. So that
    elementwise-heavy networks (a stacked layer of fan-in or fan-out 1 is a broadcast product and
    a sum; kernels of moment matching; a sampler's updates) do not count as zero, every other
    operator torch tags ``pointwise`` counts one FLOP per floating-point output element and every
    ``reduction`` one per floating-point input element: an estimate (a tanh or an exp is one FLOP).
    Copies (``clone``, ``where``, ``masked_fill``), views, concatenations, comparisons, random draws
    and the fused optimizer kernel count nothing."""
    counter = _FlopCounter()
    with counter:
        step()
    return float(counter.total) if counter.total else None


class _FlopCounter(TorchDispatchMode):
    """Sums torch's FLOP formulas (``flop_registry``) over the operators dispatched inside it.
    torch's own ``FlopCounterMode`` also tracks modules with backward hooks on their inputs,
    which breaks ``torch.autograd.grad`` on a leaf tensor (every gradient penalty: "A leaf node
    was passed to _will_engine_execute_node"); counting at the dispatcher alone does not."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        elif torch.Tag.pointwise in func.tags and func._overloadpacket.__name__ not in SELECTIONS:
            self.total += _float_numel(out)
        elif torch.Tag.reduction in func.tags and args:
            self.total += _float_numel(args[0])
        return out


SELECTIONS = {"clone", "where", "masked_fill"}  # pointwise by torch's tags, but copies: no arithmetic


def _float_numel(value) -> int:
    """Elements of a floating-point tensor (or of the first of a tuple); 0 for others (comparisons)."""
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    return value.numel() if isinstance(value, torch.Tensor) and value.is_floating_point() else 0


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} {torch.cuda.get_device_name(index)}"
    return device.type
