"""Statistics of a sample set computed once and reused, keyed by the samples' values.

A job scores the same held-out data at every curve point, in its final evaluation (once per
sampler) and, in the data reference, against fresh data; two metrics ask for the same k-NN radii
of the generated samples. :func:`memoised` returns the result of an earlier call with equal inputs
(same dtype, shape, device and bytes; the bytes hashed, a few milliseconds for 2,000 images) instead
of recomputing it, so results are bit for bit those of a fresh computation. The most recent
results are kept, at most :data:`ENTRIES` of them and :data:`MAX_BYTES` of tensors, in this process
only. Callers must not modify what it returns.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy
import torch
from torch import Tensor

T = TypeVar("T")
ENTRIES = 256
MAX_BYTES = 64 << 20
_RESULTS: OrderedDict[tuple, tuple[object, int]] = OrderedDict()  # key -> (result, bytes of its tensors)


def fingerprint(x: Tensor) -> tuple:
    """(dtype, shape, device, digest of the bytes) of ``x``: equal for tensors with equal values."""
    data = x.detach().cpu()
    if data.dtype == torch.bfloat16:  # numpy has no bfloat16: the same bits as int16
        data = data.view(torch.int16)
    digest = hashlib.blake2b(numpy.ascontiguousarray(data.numpy()), digest_size=16)
    return str(x.dtype), tuple(x.shape), str(x.device), digest.hexdigest()


def memoised(what: Hashable, tensors: tuple[Tensor, ...], compute: Callable[[], T]) -> T:
    """``compute()``, or its result from an earlier call with the same ``what`` and tensors of equal
    values (see :func:`fingerprint`)."""
    key = (what, *(fingerprint(t) for t in tensors))
    if key in _RESULTS:
        _RESULTS.move_to_end(key)
        return _RESULTS[key][0]
    result = compute()
    _RESULTS[key] = result, _bytes(result)
    while len(_RESULTS) > ENTRIES or sum(size for _, size in _RESULTS.values()) > MAX_BYTES:
        _RESULTS.popitem(last=False)
    return result


def _bytes(result: object) -> int:
    if isinstance(result, Tensor):
        return result.untyped_storage().nbytes()
    if isinstance(result, (list, tuple)):
        return sum(_bytes(r) for r in result)
    return 0


def clear() -> None:
    """Forget every kept result (tests that time or trace a computation start from nothing)."""
    _RESULTS.clear()
