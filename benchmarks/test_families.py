"""Per-model training throughput of stacked seeds for the non-GAN families, and samples/s of each sampler.

Training: ROUND_STEPS steps of benchbench's own step (:func:`benchbench.train.trainer.stepper`) for a
stack of 1 and of 32 members of flow matching and DDPM on the ring (2x64 MLPs, batch 64, as the
"small" model of test_stacked_step.py); the terminal summary prints the per-model ratio
(steps x members / median time), measured side by side in one run.

Sampling: the real sampler (:func:`benchbench.train.sampling.draw`, what a run's final evaluation
times) of a freshly built stack of 8 members, drawing SAMPLES samples each: flow matching with Euler
(50 steps) and midpoint (25 steps: the same 50 network evaluations), DDPM's ancestral sampler (100
steps) and, for scale, the non-saturating GAN's one-shot generator. The summary prints samples/s per
member and the network evaluations per sample (nfe).
"""

import os

import pytest
import torch

from benchbench import default_registry, parse_suite
from benchbench.plan.build import build
from benchbench.train.sampling import draw
from benchbench.train.stack import build_networks
from benchbench.train.trainer import stepper

ROUND_STEPS = 20
SAMPLES = 500  # per member, per sampling round
SAMPLING_MEMBERS = 8
THREADS = int(os.environ.get("BENCHBENCH_THREADS", os.cpu_count() or 1))
SMALL = {"hidden": [64, 64], "batch_size": 64}
SAMPLERS = {
    "flow-euler": ("flow", {**SMALL, "solver": "euler", "sampling_steps": 50}),
    "flow-midpoint": ("flow", {**SMALL, "solver": "midpoint", "sampling_steps": 25}),
    "ddpm-ancestral": ("ddpm", {**SMALL, "timesteps": 100}),
    "gan-one-shot": ("nonsaturating", {**SMALL, "critic_hidden": [64, 64]}),
}


def built(objective: str, settings: dict, members: int):
    """(objective instance, dataset, seeds) as a run builds them, on the CPU."""
    registry = default_registry()
    suite = parse_suite({"seeds": members, "datasets": {"ring": {}}, "objectives": {objective: settings}},
                        registry, source="benchmark")
    dataset = build(registry, suite.datasets[0])
    return build(registry, suite.objectives[0], dataset, torch.device("cpu")), dataset, suite.seeds


@pytest.mark.parametrize("members", [1, 32])
@pytest.mark.parametrize("objective", ["flow", "ddpm"])
def test_stacked_training_step(benchmark, objective, members):
    torch.set_num_threads(THREADS)
    instance, dataset, seeds = built(objective, SMALL, members)
    step = stepper(instance, dataset, seeds, torch.device("cpu"))

    def run():
        for _ in range(ROUND_STEPS):
            step()

    benchmark.group = f"family step {objective} cpu"
    benchmark.extra_info.update(impl="benchbench", members=members, steps=ROUND_STEPS, threads=THREADS)
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_sampler_throughput(benchmark, sampler):
    torch.set_num_threads(THREADS)
    objective, settings = SAMPLERS[sampler]
    instance, dataset, seeds = built(objective, settings, SAMPLING_MEMBERS)
    nets = build_networks(instance, dataset, seeds, torch.device("cpu"))
    fake = draw(nets, instance, dataset, seeds, SAMPLES, "benchmark")
    assert fake.shape == (SAMPLING_MEMBERS, SAMPLES, *dataset.shape)
    benchmark.group = "sampling"
    benchmark.extra_info.update(sampler=sampler, samples=SAMPLES, sampling_members=SAMPLING_MEMBERS,
                                nfe=instance.nfe(), threads=THREADS)
    benchmark.pedantic(draw, args=(nets, instance, dataset, seeds, SAMPLES, "benchmark"), rounds=5, iterations=1,
                       warmup_rounds=1)
