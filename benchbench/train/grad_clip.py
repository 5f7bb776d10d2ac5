"""Gradient clipping (``grad_clip`` in the objective's config): each network's gradient scaled, member by
member, so that its global norm is at most ``grad_clip`` (``torch.nn.utils.clip_grad_norm_``'s rule,
``min(1, clip / (norm + 1e-6))``, applied to each member of a stack alone).

Every parameter of a stacked network holds its members contiguously along its first dimension, so row
``i`` of ``grad.view(M, -1)`` is member ``i``'s. Each member's norm is computed from its own rows only, by
the same operations whatever the stack (row norms, then the norm of those), so a clipped member is
bit-identical to the same member trained alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

EPS = 1e-6  # as torch.nn.utils.clip_grad_norm_


@torch.no_grad()
def member_norms(module: nn.Module, members: int) -> torch.Tensor | None:
    """The global gradient norm of each member of ``module``, shape ``[M]`` (None without gradients)."""
    grads = [p.grad.view(members, -1) for p in module.parameters() if p.grad is not None]
    if not grads:
        return None
    rows = torch._foreach_norm([g[i] for i in range(members) for g in grads])  # member-major
    per = len(grads)
    return torch.stack([torch.linalg.vector_norm(torch.stack(rows[i * per:(i + 1) * per])) for i in range(members)])


@torch.no_grad()
def clip_gradients(modules: Iterable[nn.Module], members: int, max_norm: float) -> None:
    """Scale the gradient of each member of each module to a global norm of at most ``max_norm``."""
    for module in modules:
        norms = member_norms(module, members)
        if norms is None:
            continue
        scale = (max_norm / (norms + EPS)).clamp_(max=1.0).view(members, 1)
        for p in module.parameters():
            if p.grad is not None:
                p.grad.view(members, -1).mul_(scale)
