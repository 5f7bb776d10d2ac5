"""The stacked networks of a job, built from an objective's declarations, with one optimizer per
update (:func:`build_networks`).

Members are initialised from their own "init" streams, one stream per member shared by the
networks in their declared order (the generator, then the critic), so a member's weights depend
on its seed alone. A declared free parameter (:class:`benchbench.FreeParameter`) is built as a
module holding one tensor ``[M, *shape]``, so it is optimised, clipped, averaged and checkpointed
like a network's weights; losses see it as that tensor (:meth:`Networks.view`).

The core owns the optimizers: ``torch.optim.Adam(fused=True)`` (or SGD, RMSprop) when every
member shares its settings, the per-member optimizer of
:mod:`benchbench.train.member_optim` for the trials of a search; each update's learning rate is
the config field its ``lr_setting`` names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..api.dataset import Dataset
from ..api.objective import Declaration, FreeParameter, Nets, Objective, ObjectiveConfig, Update
from ..config.suite import ExecutionSettings
from ..nets.models import build_declared
from ..plan.cells import stream
from .declarations import declared_networks, declared_nfe, declared_updates, name_of
from .member_optim import member_optimizer


class Prior:
    """``prior(n)``: generator noise ``[M, n, noise_dim]`` (the config's ``noise``), member ``i``
    drawn from ``rng[i]`` alone."""

    def __init__(self, rng: Sequence[torch.Generator], cfg: ObjectiveConfig):
        self.rng, self.cfg = rng, cfg

    def __call__(self, n: int) -> Tensor:
        if not all(hasattr(type(self.cfg), f) for f in ("noise", "noise_dim")):
            raise TypeError(f"nets.prior(n) draws a generator's noise, but {type(self.cfg).__name__} has no "
                            f"noise and noise_dim settings: derive it from benchbench.GeneratorConfig, or draw "
                            f"the objective's own noise with self.normal(...)")
        return sample_noise(self.rng, n, self.cfg)


@dataclasses.dataclass
class Networks:
    """The built networks of a job (by declared name), its updates with one optimizer each."""

    modules: dict[str, nn.Module]
    specs: tuple[Declaration, ...]
    updates: tuple[Update, ...]
    optimizers: tuple[torch.optim.Optimizer, ...]  # one per update, in update order
    members: int
    cfg: ObjectiveConfig
    nfe: int = 1
    loss_rng: list[torch.Generator] = dataclasses.field(default_factory=list)  # per member: Objective.rng
    bounds: tuple[float, float] | None = None  # the data's, for the samplers

    def view(self, noise: Sequence[torch.Generator]) -> Nets:
        """The networks as losses and samplers see them, ``prior`` drawing from ``noise``."""
        return Nets(seen_by_losses(self.modules, self.specs), Prior(noise, self.cfg), self.bounds)

    def train_only(self, names: Sequence[str]) -> None:
        """``requires_grad`` on the networks of one update only: the others' parameters get no
        gradient (a GAN's generator step differentiates through the critic, not into it)."""
        for name, module in self.modules.items():
            module.requires_grad_(name in names)


def build_networks(objective: Objective, dataset: Dataset, seeds: Sequence[int], device: torch.device,
                   execution: ExecutionSettings = ExecutionSettings()) -> Networks:
    """One member per seed, each initialised from its own "init" stream; an optimizer per update."""
    cfg: ObjectiveConfig = objective.config
    specs = declared_networks(objective, dataset)
    updates = declared_updates(objective, specs)
    init = [stream(s, "init", device) for s in seeds]
    modules = {spec.name: build_declared(spec, dataset, init, name_of(objective)).to(device) for spec in specs}
    optimizers = tuple(update_optimizer(objective, modules, update) for update in updates)
    if execution.compile and device.type == "cuda":
        modules = {spec.name: modules[spec.name] if isinstance(spec, FreeParameter)
                   else torch.compile(modules[spec.name], mode="reduce-overhead") for spec in specs}
    return Networks(modules, specs, updates, optimizers, len(seeds), cfg, declared_nfe(objective),
                    [stream(s, "loss", device) for s in seeds], dataset.bounds)


def seen_by_losses(modules: dict[str, nn.Module], specs: Sequence[Declaration]) -> dict[str, nn.Module | Tensor]:
    """``modules`` as :class:`benchbench.Nets` holds them: networks as they are, a free parameter as its
    tensor ``[M, *shape]`` (the module's own, updated in place by its optimizer)."""
    free = {spec.name for spec in specs if isinstance(spec, FreeParameter)}
    return {name: module.value if name in free else module for name, module in modules.items()}


def update_optimizer(objective: Objective, modules: dict[str, nn.Module], update: Update) -> torch.optim.Optimizer:
    """The optimizer of one update, over the parameters of its networks."""
    parameters = [p for name in update.networks for p in modules[name].parameters()]
    if objective.members is None:
        return make_optimizer(parameters, objective.config, getattr(objective.config, update.lr_setting))
    return member_optimizer(parameters, objective.members, update.lr_setting)  # a search's trials


def make_optimizer(parameters, cfg: ObjectiveConfig, lr: float) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":  # the fused kernel: one pass over all parameters, 2-3x faster than foreach
        return torch.optim.Adam(parameters, lr=lr, betas=cfg.betas, fused=True)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, momentum=cfg.momentum)
    return torch.optim.SGD(parameters, lr=lr, momentum=cfg.momentum)


def sample_noise(rng: Sequence[torch.Generator], n: int, cfg: ObjectiveConfig) -> Tensor:
    """Noise ``[M, n, noise_dim]``, member ``i`` drawn from ``rng[i]`` alone."""
    device = rng[0].device
    if cfg.noise == "uniform":
        return stack([torch.rand(n, cfg.noise_dim, generator=g, device=device) for g in rng]).mul_(2).sub_(1)
    return stack([torch.randn(n, cfg.noise_dim, generator=g, device=device) for g in rng])


def stack(tensors: list[Tensor]) -> Tensor:
    """``torch.stack``, without the copy for a stack of one."""
    return tensors[0].unsqueeze(0) if len(tensors) == 1 else torch.stack(tensors)
