"""How many seeds fit in one stacked model: an estimate of a member's memory against the device's
free memory. The estimate is deliberately rough (and halved for safety); a job that still runs
out of memory is retried in smaller groups (:func:`benchbench.train.trainer.run_job`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..api.dataset import Dataset
from ..api.objective import CriticConfig, ObjectiveConfig
from ..api.objective_config import generator_setting
from ..nets.models import critic_network, generator_network

BUDGET_SHARE = 0.5  # share of the free memory a job's members may use
OPTIMIZER_COPIES = 4  # parameter, gradient and two Adam moments
ACTIVATION_COPIES = 6  # real and fake passes, saved for backward, and their gradients


def member_bytes(cfg: ObjectiveConfig, dataset: Dataset) -> int:
    """Estimated training memory of one member: its parameters with gradients and optimizer state,
    and the activations of a batch, measured on a single-member copy of the networks on the CPU."""
    init = [torch.Generator().manual_seed(0)]
    nets = [generator_network(cfg, dataset, init)]
    if isinstance(cfg, CriticConfig):
        nets.append(critic_network(cfg, dataset, init))
    parameters = sum(p.numel() for net in nets for p in net.parameters())
    activations = sum(_activations_per_sample(net, cfg, dataset, i == 0) for i, net in enumerate(nets))
    return 4 * (OPTIMIZER_COPIES * parameters + ACTIVATION_COPIES * activations * cfg.batch_size)


def eval_bytes(cfg: ObjectiveConfig, dataset: Dataset, n: int) -> int:
    """Estimated memory of one member's evaluation on ``n`` samples: noise, the generator's
    activations (the whole batch at once, without gradients), and real and generated samples."""
    generator = generator_network(cfg, dataset, [torch.Generator().manual_seed(0)])
    noise_dim = generator_setting(cfg, "noise_dim")
    return 4 * n * (noise_dim + _activations_per_sample(generator, cfg, dataset, True) + 2 * dataset.dim)


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


def members_that_fit(cfg: ObjectiveConfig, dataset: Dataset, device: torch.device, workers: int = 1) -> int | None:
    """Most members whose estimated memory fits in half the free memory (None when unknown)."""
    free = free_bytes(device, workers)
    if free is None:
        return None
    return max(1, int(free * BUDGET_SHARE) // max(1, member_bytes(cfg, dataset)))


def _activations_per_sample(net: nn.Module, cfg: ObjectiveConfig, dataset: Dataset, is_generator: bool) -> int:
    """Floats produced by the leaf modules of ``net`` for one sample."""
    counted: list[int] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: counted.append(out.numel()))
             for m in net.modules() if not list(m.children())]
    noise_dim = generator_setting(cfg, "noise_dim")
    x = torch.zeros(1, 2, noise_dim) if is_generator else torch.zeros(1, 2, *dataset.shape)
    try:
        with torch.no_grad():
            net(x)
    finally:
        for hook in hooks:
            hook.remove()
    return sum(counted) // 2
