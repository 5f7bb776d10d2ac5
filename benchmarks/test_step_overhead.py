"""One training step of each objective in benchbench versus a minimal hand-written PyTorch loop of
the same model on the same batch (one seed, ring data, 2x128 MLPs, batch 128, Adam).

Each round trains STEPS (1,000) steps; the trainer's fixed costs (set-up, evaluation at the start and end,
no metrics) are included, so the ratio is an upper bound of the per-step overhead. Run with
``python -m pytest benchmarks`` (the test suite's ``testpaths`` leave them out).
Target: benchbench at most 5% slower.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchbench import default_registry, parse_suite
from benchbench.plan.cells import plan
from benchbench.train.trainer import run_job
from benchbench_plugins.kernels import median_distance, mmd2_gaussian

STEPS = 1000
SMOKE_STEPS = 20
OBJECTIVES = ("minimax", "nonsaturating", "gmmn")


def suite(objective, steps):
    raw = {"seeds": [0], "steps": steps, "datasets": {"ring": {}}, "objectives": {objective: {}},
           "metrics": [], "reporters": [], "eval": {"samples": 100, "curve_samples": 100, "plot_samples": 0,
                                                    "reference": False}}
    return parse_suite(raw, default_registry(), source="benchmark")


def benchbench_training(objective, steps):
    registry = default_registry()
    (job,) = plan(suite(objective, steps), registry)
    return lambda: run_job(job, registry)


def mlp(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


def handwritten_training(objective, steps):
    """The loop a researcher would write by hand for the same model, batch and data."""
    angles = 2 * math.pi * torch.arange(8) / 8
    centers = torch.stack([angles.cos(), angles.sin()], 1)
    weights = torch.full((8,), 1 / 8)
    batch = 128

    def data(g):
        return centers[torch.multinomial(weights, batch, replacement=True, generator=g)] + \
            0.01 * torch.randn(batch, 2, generator=g)

    def train():
        g = torch.Generator().manual_seed(0)
        generator = mlp([2, 128, 128, 2])
        opt_g = torch.optim.Adam(generator.parameters(), 1e-3, betas=(0.5, 0.999))
        if objective == "gmmn":
            sigmas = [s * median_distance(data(g)) for s in (0.03125, 0.0625, 0.125, 0.25, 0.5, 1.0)]
            for _ in range(steps):
                fake = generator(torch.randn(batch, 2, generator=g))
                loss = mmd2_gaussian(data(g), fake, sigmas, unbiased=False).clamp_min(1e-12).sqrt()
                opt_g.zero_grad()
                loss.backward()
                opt_g.step()
            return
        critic = mlp([2, 128, 128, 1])
        opt_d = torch.optim.Adam(critic.parameters(), 1e-3, betas=(0.5, 0.999))
        for _ in range(steps):
            real = data(g)
            with torch.no_grad():
                fake = generator(torch.randn(batch, 2, generator=g))
            loss_d = F.softplus(-critic(real)).mean() + F.softplus(critic(fake)).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            logits = critic(generator(torch.randn(batch, 2, generator=g)))
            loss_g = -F.softplus(logits).mean() if objective == "minimax" else F.softplus(-logits).mean()
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
    return train


@pytest.mark.parametrize("impl", ["benchbench", "handwritten"])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_training_steps(benchmark, objective, impl):
    torch.set_num_threads(1)
    benchmark.group = objective
    benchmark.extra_info["impl"] = impl
    steps = SMOKE_STEPS if benchmark.disabled else STEPS  # a plain test run only checks that it works
    benchmark.extra_info["steps"] = steps
    fn = benchbench_training(objective, steps) if impl == "benchbench" else handwritten_training(objective, steps)
    benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
