"""Pairwise squared distances by row blocks (:func:`distance_blocks`, never an [n, m] matrix), and
those of one evaluation's samples computed once and read by every metric that needs them
(:func:`shared_distance_blocks`): MMD, the energy distance and the k-NN manifold metrics all go
over the real-real, generated-generated and real-generated pairs of the same samples.

:func:`shared_distance_blocks` yields the same row blocks with the same values as
:func:`distance_blocks`, so the metrics' results keep their bits. Where the distances are summed
coordinate by coordinate (up to :data:`~benchbench_plugins.kernels.DIRECT_MAX_DIM` dimensions: each
entry the same whatever the block) and the matrix holds at most :data:`MATRIX_ENTRIES` entries, the whole matrix is computed
once and kept for the next metric; at most :data:`SLOTS` matrices are kept (the three of the member
being scored), the oldest dropped first, and none outlives its samples or an in-place change to
them. The blocks of a kept matrix are views: callers must not modify them. The generated-real
matrix is read as the transpose of the real-generated one (exactly equal: (a - b)^2 = (b - a)^2).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Iterator

import torch
from torch import Tensor

from benchbench_plugins.kernels import DIRECT_MAX_DIM, squared_distances

BLOCK_ENTRIES = 1 << 19


def row_blocks(n: int, m: int) -> list[slice]:
    """Slices of the n rows of an [n, m] matrix, each block holding about 2^19 entries: small
    temporaries stay in cache and are reused, where each fresh 25 MB matrix costs ~10 ms of page
    faults."""
    rows = max(1, BLOCK_ENTRIES // max(m, 1))
    return [slice(start, min(start + rows, n)) for start in range(0, n, rows)]


def distance_blocks(x: Tensor, y: Tensor | None = None) -> Iterator[tuple[slice, Tensor]]:
    """(rows, |x_rows - y|^2 ``[b, m]``) over row blocks of ``x`` ``[n, d]``; with ``y`` None, the
    distances within ``x``, with exactly zero self-distances.

    Above :data:`~benchbench_plugins.kernels.DIRECT_MAX_DIM` dimensions the norms |y_j|^2 are
    computed once for all blocks, not once per block (a fresh [m, d] temporary per block, 7 MB at
    m = 10,000, d = 192: that alone doubled the time of the k-NN radii there).
    """
    other = x if y is None else y
    norms = other.square().sum(1) if x.shape[-1] > DIRECT_MAX_DIM else None  # |y_j|^2, [m]
    for rows in row_blocks(len(x), len(other)):
        d2 = squared_distances(x[rows], other, norms)
        if y is None:
            d2.diagonal(offset=rows.start).zero_()
        yield rows, d2


MATRIX_ENTRIES = 1 << 23  # 2,500 x 2,500 float32 (25 MB) is kept; 10,000 x 10,000 is computed by blocks
SLOTS = 3

_KEPT: OrderedDict[tuple, tuple[tuple[weakref.ref, ...], tuple[int, ...], Tensor]] = OrderedDict()


def shared_distance_blocks(x: Tensor, y: Tensor | None = None) -> Iterator[tuple[slice, Tensor]]:
    """(rows, |x_rows - y|^2 ``[b, m]``) as :func:`distance_blocks` yields them, read from a kept
    matrix where one applies (see the module); the blocks must not be modified."""
    matrix = distance_matrix(x, y)
    if matrix is None:
        yield from distance_blocks(x, y)
        return
    for rows in row_blocks(*matrix.shape):
        yield rows, matrix[rows]


def distance_matrix(x: Tensor, y: Tensor | None = None) -> Tensor | None:
    """The kept ``[n, m]`` matrix of |x_i - y_j|^2 (``y`` None: within ``x``, zero diagonal),
    computed now if no metric did yet; None where the module keeps none (too large, or too many
    dimensions)."""
    other = x if y is None else y
    if x.shape[-1] > DIRECT_MAX_DIM or len(x) * len(other) > MATRIX_ENTRIES or x.dtype != other.dtype:
        return None
    found = _lookup(x, y)
    if found is not None:
        return found
    if y is not None:
        transposed = _lookup(y, x)
        if transposed is not None:
            return transposed.T
    matrix = torch.empty(len(x), len(other), dtype=x.dtype, device=x.device)
    for rows, d2 in distance_blocks(x, y):  # block by block: the temporaries stay in cache
        matrix[rows] = d2
    _keep(x, y, matrix)
    return matrix


def _identity(t: Tensor) -> tuple[Tensor, tuple]:
    """(the tensor that owns ``t``'s memory, where ``t`` sits in it): views of the same samples
    made anew by each metric (``real.flatten(1)``) find the same entry."""
    owner = t if t._base is None else t._base
    return owner, (id(owner), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype, str(t.device))


def _lookup(x: Tensor, y: Tensor | None) -> Tensor | None:
    owners, key = _key(x, y)
    hit = _KEPT.get(key)
    if hit is None:
        return None
    refs, versions, matrix = hit
    if any(ref() is not owner for ref, owner in zip(refs, owners)) or versions != tuple(o._version for o in owners):
        del _KEPT[key]  # freed and replaced at the same address, or changed in place
        return None
    _KEPT.move_to_end(key)
    return matrix


def _key(x: Tensor, y: Tensor | None) -> tuple[tuple[Tensor, ...], tuple]:
    parts = [_identity(x)] + ([] if y is None else [_identity(y)])
    return tuple(owner for owner, _ in parts), tuple(where for _, where in parts)


def _keep(x: Tensor, y: Tensor | None, matrix: Tensor) -> None:
    owners, key = _key(x, y)
    drop = lambda _, k=key: _KEPT.pop(k, None)  # noqa: E731 - the entry goes with its samples
    _KEPT[key] = (tuple(weakref.ref(o, drop) for o in owners), tuple(o._version for o in owners), matrix)
    while len(_KEPT) > SLOTS:
        _KEPT.popitem(last=False)
