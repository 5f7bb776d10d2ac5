"""Kernel math shared by the GMMN objective and the MMD metric: pure functions on tensors.

All functions take an optional leading batch dimension (the stacked members): ``x`` is
``[..., n, d]`` and ``y`` is ``[..., m, d]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

DIRECT_MAX_DIM = 16  # up to this dimension, distances come from coordinate differences
# Kernel exponents are floored at -LOG_FLOOR (exp(-80) ~ 1.8e-35, a change below any tolerance):
# exp() of arguments below about -87 underflows in float32 and takes a path several times slower.
LOG_FLOOR = 80.0
SQUARED_FLOOR = 2.0 ** -125  # kernels made by squaring stay at or above it: a normal float32 (~2.4e-38)


def squared_distances(x: Tensor, y: Tensor, y_norms: Tensor | None = None, out: Tensor | None = None) -> Tensor:
    """|x_i - y_j|^2, ``[..., n, m]``.

    Up to :data:`DIRECT_MAX_DIM` dimensions, summed coordinate by coordinate from the differences:
    exact to rounding where points are close together but far from the origin (the ring's modes,
    where |x|^2 + |y|^2 - 2 x.y loses half the float32 digits), never an [n, m, d] temporary, and
    free of the matrix-vector kernel whose rounding depends on the stack size. Above it, via that
    expansion (one matrix product, then in place), clamped at 0; ``y_norms`` ``[..., m]`` gives
    |y_j|^2 when the caller computed them once for many blocks of ``x``. ``out``: where to write
    them (direct path), a buffer of the result's shape that the caller reuses.
    """
    if x.shape[-1] <= DIRECT_MAX_DIM:
        d2 = torch.sub(x[..., :, None, 0], y[..., None, :, 0], out=out).square_()
        diff = None  # one buffer for the differences of every further coordinate
        for k in range(1, x.shape[-1]):
            diff = torch.sub(x[..., :, None, k], y[..., None, :, k], out=diff)
            d2.addcmul_(diff, diff)
        return d2
    yy = (y * y).sum(-1) if y_norms is None else y_norms
    d2 = (x @ y.transpose(-1, -2)).mul_(-2).add_((x * x).sum(-1, keepdim=True))
    return d2.add_(yy.unsqueeze(-2)).clamp_min_(0)


def mmd2_gaussian(x: Tensor, y: Tensor, sigmas: Sequence[float], unbiased: bool = True) -> Tensor:
    """MMD^2 between samples ``x`` ``[..., n, d]`` and ``y`` ``[..., m, d]`` under the sum over
    ``sigmas`` of Gaussian kernels exp(-|a - b|^2 / (2 sigma^2)), ``[...]``. Unbiased: the
    within-sample means leave out the diagonal k(x_i, x_i), and it can be slightly negative;
    biased: plain means including it.

    Computed from two pair matrices, y against (x, y) and x against x (the x-y block once, not
    twice), without an [N, N] weight matrix: the kernels' sums per block, weighted by scalars.
    Kernels whose rates 1/(2 sigma^2) are a power of 2 apart (the GMMN default: scales a factor 2
    apart, rates 4) come from the wider one by squaring (:func:`exponent_plan`): one exp() costs
    as much as about eight other passes. With a gradient, a hand-written one
    (:class:`_GaussianMMD`), only for the inputs that require it (the slope of the x-x block is
    skipped when x is data). Not twice differentiable."""
    if torch.is_grad_enabled() and (x.requires_grad or y.requires_grad):
        return _GaussianMMD.apply(x, y, tuple(float(s) for s in sigmas), unbiased)
    return _gaussian_mmd(x, y, sigmas, unbiased, grad_x=False, grad_y=False)[0]


# A kernel comes from a directly exponentiated one by at most this many squarings. Each squaring
# doubles the relative rounding of what it squares: at 10 (GMMN's six default scales from one exp),
# the narrowest kernel is within ~3e-5 of exp(-r d2) in float32, and the loss and its gradient
# within ~2e-5 of a float64 computation (tests/plugins/test_kernels.py checks 1e-4).
MAX_SQUARINGS = 10


def exponent_plan(rates: Sequence[float], max_squarings: int = MAX_SQUARINGS) -> list[int | None]:
    """For ``rates`` sorted ascending (widest kernel first): per rate, None to compute exp(-r d2)
    directly, or k >= 0 to take the previous rate's kernel squared k times (its rate is 2^k times
    the previous one, to 1e-9 relative). A chain longer than ``max_squarings`` restarts from a
    fresh exp."""
    plan: list[int | None] = []
    depth = 0
    for previous, rate in zip([None, *rates[:-1]], rates):
        k = None if previous is None else round(math.log2(rate / previous))
        if k is not None and abs(rate / previous - 2.0 ** k) <= 1e-9 * 2.0 ** k and depth + k <= max_squarings:
            plan.append(k)
            depth += k
        else:
            plan.append(None)
            depth = 0
    return plan


def kernel_terms(d2: Tensor, rates: Sequence[float], zero_diagonal: int | None = None, out: Tensor | None = None
                 ) -> Iterator[tuple[float, Tensor]]:
    """(rate, exp(-rate d2)) for each rate of ``rates`` (ascending), in one buffer shaped like
    ``d2`` (``out``, or a new one) that each step overwrites, by :func:`exponent_plan`. Direct
    exponents are floored at -:data:`LOG_FLOOR` (exp() of arguments below about -87 takes a slow
    path); squared kernels at :data:`SQUARED_FLOOR`: before k squarings the term is clamped at
    SQUARED_FLOOR^(1/2^k), so that no square is a denormal (denormal arithmetic takes a slow path on
    many CPUs). ``zero_diagonal``: the column offset of a diagonal set to 0 in every term (left
    out of an unbiased estimate)."""
    term = torch.empty_like(d2) if out is None else out
    for rate, squarings in zip(rates, exponent_plan(rates)):
        if squarings is None:
            torch.mul(d2, -rate, out=term).clamp_min_(-LOG_FLOOR).exp_()
            if zero_diagonal is not None:
                term.diagonal(offset=zero_diagonal, dim1=-2, dim2=-1).zero_()
        elif squarings > 0:
            term.clamp_min_(SQUARED_FLOOR ** (0.5 ** squarings))
            if zero_diagonal is not None:
                term.diagonal(offset=zero_diagonal, dim1=-2, dim2=-1).zero_()
            for _ in range(squarings):
                term.square_()
        yield rate, term


def _gaussian_mmd(x: Tensor, y: Tensor, sigmas: Sequence[float], unbiased: bool, grad_x: bool, grad_y: bool
                  ) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """(MMD^2 ``[...]``, d MMD^2/dx or None, d MMD^2/dy or None).

    Blocks: B = pairs (y_j, z_l) ``[..., m, N]`` with z = (x, y), and A = pairs (x_i, x_i')
    ``[..., n, n]``; MMD^2 = w_xx sum A + w_yy sum B[:, n:] + 2 w_xy sum B[:, :n], w_xy = -1/(nm).
    The gradient d/dz_i = 4 sum_l G_il (z_i - z_l), with G = W dk/d|z_i - z_l|^2 on the rows of
    the inputs that need it (d|a - b|^2/da = 2 (a - b), counted for il and li). A reuses B's
    buffers: each fresh matrix costs page faults, on a loaded machine as much as the arithmetic."""
    n, m = x.shape[-2], y.shape[-2]
    z = torch.cat([x, y], dim=-2)
    w_xx = 1 / (n * (n - 1)) if unbiased else 1 / (n * n)
    w_yy = 1 / (m * (m - 1)) if unbiased else 1 / (m * m)
    w_xy = -1 / (n * m)
    rates = sorted(0.5 / (s * s) for s in sigmas)
    batch = z.shape[:-2]
    buffers = [z.new_empty(batch.numel() * m * (n + m)) for _ in range(3)]  # distances, term, kernel sum

    def view(buffer: Tensor, rows: int, columns: int) -> Tensor:
        return buffer[:batch.numel() * rows * columns].view(*batch, rows, columns)

    # y against (x, y): the within-y and cross sums, and the slope on y's rows
    d2, term, kernel = (view(b, m, n + m) for b in buffers)
    slope_b = _kernel_sums(squared_distances(y, z, out=d2), rates, n if unbiased else None, grad_x or grad_y,
                           term, kernel)
    # row sums in the input dtype, their totals in float64: MMD^2 is a small difference of the block sums
    sum_yx, sum_yy = (rows.sum(-1).double().sum(-1) for rows in (kernel[..., :n], kernel[..., n:]))
    # x against x, in the same buffers when they are large enough
    fits = n * n <= m * (n + m)
    d2, term, kernel = (view(b, n, n) if fits else x.new_empty(*batch, n, n) for b in buffers)
    slope_a = _kernel_sums(squared_distances(x, x, out=d2), rates, 0 if unbiased else None, grad_x, term, kernel)
    sum_xx = kernel.sum(-1).double().sum(-1)
    mmd2 = (w_xx * sum_xx + w_yy * sum_yy + 2 * w_xy * sum_yx).to(z.dtype)
    if slope_b is None:
        return mmd2, None, None

    slope_b[..., :n].mul_(4 * w_xy)
    slope_b[..., n:].mul_(4 * w_yy)
    scratch = view(buffers[0], m, n + m)
    gy = _pull(slope_b, y, z, scratch) if grad_y else None
    gx = None
    if grad_x:  # x's rows: the x-x block, and the cross block's columns
        gx = _pull(slope_a.mul_(4 * w_xx), x, x) + _pull(slope_b[..., :n].transpose(-1, -2), x, y)
    return mmd2, gx, gy


def _kernel_sums(d2: Tensor, rates: Sequence[float], zero_diagonal: int | None, with_slope: bool,
                 term: Tensor, kernel: Tensor) -> Tensor | None:
    """Writes sum_r exp(-r d2) into ``kernel``; returns sum_r -r exp(-r d2) (a new tensor) when
    ``with_slope``. ``term``: the buffer of :func:`kernel_terms`; ``zero_diagonal`` as there."""
    slope = None
    for i, (rate, term) in enumerate(kernel_terms(d2, rates, zero_diagonal, out=term)):
        if i == 0:
            kernel.copy_(term)
            slope = torch.mul(term, -rate) if with_slope else None
        else:
            kernel.add_(term)
            if with_slope:
                slope.add_(term, alpha=-rate)
    return slope


def _pull(g: Tensor, rows: Tensor, columns: Tensor, scratch: Tensor | None = None) -> Tensor:
    """sum_l g_il (rows_i - columns_l), ``[..., r, d]`` for ``g`` ``[..., r, c]``. Up to
    :data:`DIRECT_MAX_DIM` dimensions the sum over l is taken per coordinate, elementwise (no
    matrix-vector kernel, whose rounding depends on the stack size, as in
    :func:`squared_distances`), in ``scratch`` (shaped like ``g``) if given; above, as one matrix
    product."""
    if rows.shape[-1] <= DIRECT_MAX_DIM:
        pulled = torch.stack([torch.mul(g, columns[..., None, :, k], out=scratch).sum(-1)
                              for k in range(rows.shape[-1])], dim=-1)
    else:
        pulled = g @ columns
    return rows * g.sum(-1, keepdim=True) - pulled


class _GaussianMMD(torch.autograd.Function):
    """MMD^2 of (x, y) whose forward computes the gradients as well (:func:`_gaussian_mmd`), only
    for the inputs that require one; backward scales them by each member's upstream gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, sigmas: tuple[float, ...], unbiased: bool) -> Tensor:
        dtypes = x.dtype, y.dtype
        with torch.autocast(x.device.type, enabled=False):  # bf16 training: the loss stays in float32 or wider
            x, y = (t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in (x, y))
            z_dtype = torch.promote_types(x.dtype, y.dtype)
            mmd2, gx, gy = _gaussian_mmd(x.to(z_dtype), y.to(z_dtype), sigmas, unbiased,
                                         ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        ctx.dtypes, ctx.x_rows = dtypes, x.shape[-2]
        ctx.save_for_backward(gx, gy)
        return mmd2

    @staticmethod
    def backward(ctx, grad: Tensor):
        gx, gy = ctx.saved_tensors
        scale = grad[..., None, None]
        if gy is not None:
            # y's gradient as the y-rows of a z = (x, y)-shaped tensor, the layout of the gradient of
            # the concatenation before: given a contiguous one, the backward of the stacked networks
            # rounded a trial trained stacked differently from the same trial alone, in the last
            # bit (tests/e2e/test_search.py), for a reason not found yet
            rows = ctx.x_rows
            padded = gy.new_zeros(*gy.shape[:-2], rows + gy.shape[-2], gy.shape[-1])
            gy = torch.mul(gy, scale.to(gy.dtype), out=padded[..., rows:, :])
        return (None if gx is None else (gx * scale.to(gx.dtype)).to(ctx.dtypes[0]),
                None if gy is None else gy.to(ctx.dtypes[1]), None, None)


def median_distance(x: Tensor) -> float:
    """Median pairwise Euclidean distance between distinct rows of ``x`` ``[n, d]``."""
    d2 = squared_distances(x, x)
    upper = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
    return float(d2[upper[0], upper[1]].median().sqrt())
