"""The GMMN training step where its kernel matrix is the cost: 5 members stacked, 2-D ring data,
batch 128, the mixture suite's networks (2x128) and the default six kernel scales; and the kernel
alone (:func:`benchbench_plugins.kernels.mmd2_gaussian`, forward and backward, on the same shapes).

Each round runs ROUND_STEPS steps. One intra-op thread, as each of benchbench's worker processes
has (or $BENCHBENCH_THREADS). On a loaded machine pass ``--benchmark-timer=time.process_time``.
Issue 28's target: the step 2x faster than before its kernel was rewritten; compare with a saved
run of the old code (``--benchmark-compare``).
"""

import os

import pytest
import torch

from benchbench import default_registry, parse_suite
from benchbench.train.trainer import build, stepper
from benchbench_plugins.kernels import median_distance, mmd2_gaussian
from benchbench_plugins.objectives.gmmn import GMMNConfig

THREADS = int(os.environ.get("BENCHBENCH_THREADS", 1))
MEMBERS, BATCH, ROUND_STEPS = 5, 128, 20


def training_round():
    registry = default_registry()
    suite = parse_suite({"seeds": MEMBERS, "datasets": {"ring": {}},
                         "objectives": {"gmmn": {"hidden": [128, 128], "batch_size": BATCH}}},
                        registry, source="benchmark")
    dataset = build(registry, suite.datasets[0])
    device = torch.device("cpu")
    step = stepper(build(registry, suite.objectives[0], dataset, device), dataset, suite.seeds, device)

    def run():
        for _ in range(ROUND_STEPS):
            step()
    return run


def kernel_round():
    entry = default_registry().get("dataset", "ring", "benchmark")
    ring = entry.cls(entry.cls.Config())
    g = torch.Generator().manual_seed(0)
    real = torch.stack([ring.sample(BATCH, g) for _ in range(MEMBERS)])
    fake = (real + 0.1 * torch.randn(real.shape, generator=g)).requires_grad_()
    sigmas = [s * median_distance(real[0]) for s in GMMNConfig().scales]

    def run():
        for _ in range(ROUND_STEPS):
            loss = mmd2_gaussian(real, fake, sigmas, unbiased=False).clamp_min(1e-12).sqrt()
            torch.autograd.grad(loss.sum(), fake)
    return run


@pytest.mark.parametrize("part", ["training-step", "kernel"])
def test_gmmn_step(benchmark, part):
    torch.set_num_threads(THREADS)
    benchmark.group = f"gmmn {MEMBERS} members, batch {BATCH}, 2-D"
    benchmark.extra_info.update(part=part, stack=MEMBERS, batch=BATCH, steps=ROUND_STEPS, threads=THREADS)
    benchmark.pedantic(training_round() if part == "training-step" else kernel_round(),
                       rounds=7, iterations=1, warmup_rounds=1)
