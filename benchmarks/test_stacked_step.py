"""Per-model training throughput of stacked seeds versus one model in a hand-written loop.

Each benchmark round runs ROUND_STEPS training steps (Algorithm 1 iterations) of one objective:
benchbench's own step (:func:`benchbench.train.trainer.stepper`) on a stack of 1 or 32 members, and a
hand-written PyTorch loop of ONE model of the same architecture on the same batch. The terminal
summary prints per-model throughput ratios (steps x members / time), measured side by side in
one run. Both sides use the same intra-op threads: every core (set BENCHBENCH_THREADS=1 to see
one core, as each of benchbench's worker processes has).

Models: "small" is the REFERENCE setting (ring data, 2x64 ReLU MLPs, batch 64, k=1); "mixture"
the networks of suites/mixture.yaml (2x128, batch 128). Both sides compute the same math (the GMMN
loss is :func:`benchbench_plugins.kernels.mmd2_gaussian` in both), so the ratio is what stacking buys.
Targets: on the CPU, small, 32 members >= 8x; on CUDA (skipped without a GPU), 256 members >= 100x.
"""

import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchbench import default_registry, parse_suite
from benchbench.plan.build import build
from benchbench.train.trainer import stepper
from benchbench_plugins.kernels import median_distance, mmd2_gaussian

ROUND_STEPS = 20
THREADS = int(os.environ.get("BENCHBENCH_THREADS", os.cpu_count() or 1))
MODELS = {"small": {"hidden": [64, 64], "critic_hidden": [64, 64], "batch_size": 64},
          "mixture": {"hidden": [128, 128], "critic_hidden": [128, 128], "batch_size": 128}}
OBJECTIVES = ("minimax", "nonsaturating", "gmmn")


def settings(objective, model):
    values = dict(MODELS[model])
    if objective == "gmmn":
        values.pop("critic_hidden")
    return values


def benchbench_round(objective, model, members, device="cpu"):
    registry = default_registry()
    suite = parse_suite({"seeds": members, "datasets": {"ring": {}},
                         "objectives": {objective: settings(objective, model)}}, registry, source="benchmark")
    device = torch.device(device)
    dataset = build(registry, suite.datasets[0])
    step = stepper(build(registry, suite.objectives[0], dataset, device), dataset, suite.seeds, device)
    return repeat(step, device)


def repeat(step, device):
    """``run()``: ROUND_STEPS steps, then wait for the device (CUDA runs asynchronously)."""
    def run():
        for _ in range(ROUND_STEPS):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return run


def mlp(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


def handwritten_round(objective, model, device="cpu"):
    """The loop a researcher would write by hand for one model of the same size and batch."""
    config = MODELS[model]
    batch, hidden = config["batch_size"], config["hidden"]
    device = torch.device(device)
    entry = default_registry().get("dataset", "ring", "benchmark")
    ring = entry.cls(entry.cls.Config())
    g = torch.Generator(device).manual_seed(0)
    generator = mlp([2, *hidden, 2]).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), 1e-3, betas=(0.5, 0.999))
    critic = mlp([2, *hidden, 1]).to(device)
    opt_d = torch.optim.Adam(critic.parameters(), 1e-3, betas=(0.5, 0.999))
    sigmas = [s * median_distance(ring.sample(1024, g)) for s in (0.03125, 0.0625, 0.125, 0.25, 0.5, 1.0)]

    def step():
        if objective == "gmmn":
            fake = generator(torch.randn(batch, 2, generator=g, device=device))
            loss = mmd2_gaussian(ring.sample(batch, g), fake, sigmas, unbiased=False).clamp_min(1e-12).sqrt()
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()
            return
        real = ring.sample(batch, g)
        with torch.no_grad():
            fake = generator(torch.randn(batch, 2, generator=g, device=device))
        loss_d = F.softplus(-critic(real)).mean() + F.softplus(critic(fake)).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        critic.requires_grad_(False)
        logits = critic(generator(torch.randn(batch, 2, generator=g, device=device)))
        loss_g = -F.softplus(logits).mean() if objective == "minimax" else F.softplus(-logits).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        critic.requires_grad_(True)

    return repeat(step, device)


CASES = [("cpu", "handwritten", 1), ("cpu", "benchbench", 1), ("cpu", "benchbench", 32),
         ("cuda", "handwritten", 1), ("cuda", "benchbench", 1), ("cuda", "benchbench", 256)]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("device, impl, members", [
    pytest.param(*case, id=f"{case[0]}-{case[1]}-{case[2]}", marks=[needs_cuda, pytest.mark.gpu] if case[0] == "cuda"
                 else []) for case in CASES])
@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_training_step(benchmark, objective, model, device, impl, members):
    torch.set_num_threads(THREADS)
    benchmark.group = f"step {objective} {model} {device}"
    benchmark.extra_info.update(impl=impl, members=members, steps=ROUND_STEPS, model=model, threads=THREADS,
                                device=device)
    fn = handwritten_round(objective, model, device) if impl == "handwritten" else \
        benchbench_round(objective, model, members, device)
    benchmark.pedantic(fn, rounds=7, iterations=1, warmup_rounds=1)
