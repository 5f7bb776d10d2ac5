"""Optimizers whose settings differ per member of a stacked model: the trials of a search, stacked.

Every parameter of a stacked network holds its members contiguously along its first dimension
(weights ``[M, in, out]``, grouped convolutions ``[M * out, ...]``), so ``p.view(M, -1)`` puts member
``i`` in row ``i`` and per-member learning rates, betas and momenta are ``[M, 1]`` tensors broadcast
over the rows. Only elementwise operations are used, each rounded once (no fused multiply-add, no
reduction across members), so a member's update is bit-identical whatever the other members of
the stack are: a trial trained inside a stack equals the same trial trained alone.

The formulas are PyTorch's (``torch.optim.Adam``, ``SGD``, ``RMSprop`` with their default eps and
alpha); the per-step factors (bias corrections) are computed per member in float64, then rounded.
Jobs whose members share their settings keep ``torch.optim.Adam(fused=True)``
(:func:`benchbench.train.trainer.make_optimizer`): this optimizer is for trial stacks only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

EPS = 1e-8
RMSPROP_ALPHA = 0.99


class MemberOptimizer(torch.optim.Optimizer):
    """Adam, SGD or RMSprop with one learning rate, betas and momentum per member."""

    def __init__(self, parameters: Iterable[Tensor], kind: str, lr: Sequence[float],
                 betas: Sequence[tuple[float, float]], momentum: Sequence[float]):
        super().__init__(list(parameters), {})
        assert kind in ("adam", "sgd", "rmsprop"), kind
        assert len(lr) == len(betas) == len(momentum), "one setting per member"
        self.kind, self.members, self.steps = kind, len(lr), 0
        self.lr_scale = 1.0  # the learning-rate schedule's factor of this step (benchbench.train.lr_schedule)
        self.lr = torch.tensor(lr, dtype=torch.float64)
        self.beta1 = torch.tensor([b[0] for b in betas], dtype=torch.float64)
        self.beta2 = torch.tensor([b[1] for b in betas], dtype=torch.float64)
        self.momentum = torch.tensor(momentum, dtype=torch.float64)

    def __getstate__(self) -> dict:  # torch.optim.Optimizer keeps only its own fields (copies, pickles)
        return self.__dict__.copy()

    def state_dict(self) -> dict:  # noqa: D102 - torch.optim's, with the step count (checkpoints)
        return {**super().state_dict(), "steps": self.steps}

    def load_state_dict(self, state_dict: dict) -> None:  # noqa: D102
        state_dict = dict(state_dict)
        self.steps = int(state_dict.pop("steps"))
        super().load_state_dict(state_dict)

    def _factors(self, like: Tensor) -> dict[str, Tensor]:
        """This step's per-member numbers, each ``[M, 1]`` on ``like``'s device and dtype: computed
        in float64, rounded once, moved to the device in one copy."""
        t, lr = self.steps, self.lr * self.lr_scale
        values = {"beta1": self.beta1, "keep1": 1 - self.beta1, "beta2": self.beta2, "keep2": 1 - self.beta2,
                  "step_size": lr / (1 - self.beta1 ** t), "root2": (1 - self.beta2 ** t).sqrt(),
                  "momentum": self.momentum, "lr": lr}
        table = torch.stack(list(values.values())).to(like.dtype).to(like.device)
        return {name: row.view(-1, 1) for name, row in zip(values, table)}

    @torch.no_grad()
    def step(self, closure=None) -> None:  # noqa: D102 - torch.optim's signature
        assert closure is None, "no closures"
        self.steps += 1
        factors: dict[tuple, dict[str, Tensor]] = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    where = (p.device, p.dtype)
                    if where not in factors:
                        factors[where] = self._factors(p)
                    self._update(p.view(self.members, -1), p.grad.view(self.members, -1), self.state[p],
                                 factors[where])

    def _update(self, x: Tensor, g: Tensor, state: dict, f: dict[str, Tensor]) -> None:
        if self.kind == "adam":
            if not state:
                state["m"], state["v"] = torch.zeros_like(x), torch.zeros_like(x)
            m, v = state["m"], state["v"]
            m.mul_(f["beta1"]).add_(g * f["keep1"])
            v.mul_(f["beta2"]).add_((g * g) * f["keep2"])
            denom = (v.sqrt() / f["root2"]).add_(EPS)
            x.sub_((m / denom) * f["step_size"])
        elif self.kind == "sgd":
            if "buffer" not in state:  # PyTorch: the first buffer is the gradient itself
                state["buffer"] = g.clone()
            else:
                state["buffer"].mul_(f["momentum"]).add_(g)
            x.sub_(state["buffer"] * f["lr"])
        else:
            if not state:
                state["square"], state["buffer"] = torch.zeros_like(x), torch.zeros_like(x)
            square = state["square"].mul_(RMSPROP_ALPHA).add_((g * g) * (1 - RMSPROP_ALPHA))
            state["buffer"].mul_(f["momentum"]).add_(g / square.sqrt().add_(EPS))
            x.sub_(state["buffer"] * f["lr"])


def member_optimizer(parameters: Iterable[Tensor], configs: Sequence, lr_name: str) -> MemberOptimizer:
    """The optimizer of a trial stack: member ``i`` trains with ``configs[i]``'s ``lr_name``
    (``lr`` or ``critic_lr``), betas and momentum; all members share the optimizer kind."""
    kinds = {c.optimizer for c in configs}
    assert len(kinds) == 1, f"one optimizer kind per stack, got {sorted(kinds)}"
    return MemberOptimizer(parameters, kinds.pop(), [getattr(c, lr_name) for c in configs],
                           [tuple(c.betas) for c in configs], [c.momentum for c in configs])
