"""Per-model training throughput of a search's trials: 16 trials x 2 selection seeds trained as ONE
stacked model (members differing in learning rates and Adam betas, benchbench.train.member_optim) versus
the same 32 models trained one at a time (each a stack of one, the same code). Each round runs
ROUND_STEPS training steps of every one of the 32 models; the terminal summary prints the ratio
of per-model throughputs, measured side by side in one run.

Model: the "small" setting of test_stacked_step (ring, 2x64 ReLU MLPs, batch 64, k=1).
"""

import pytest
import torch
from test_stacked_step import ROUND_STEPS, THREADS, settings

from benchbench import default_registry, parse_suite
from benchbench.plan.build import build
from benchbench.plan.trials import trial_specs
from benchbench.train.trainer import stepper

TRIALS, SEEDS = 16, 2


def trial_models(objective):
    """(objective built for trial stacks, one config per model, one seed per model): 32 models."""
    registry = default_registry()
    searched = {"lr": {"loguniform": [1e-4, 1e-2]}, "betas.0": {"uniform": [0, 0.9]}}
    if objective != "gmmn":
        searched["critic_lr"] = {"loguniform": [1e-4, 1e-2]}
    suite = parse_suite({"seeds": 1, "datasets": {"ring": {}}, "metrics": ["kde-divergence"],
                         "objectives": {objective: {**settings(objective, "small"), "search": searched}},
                         "search": {"trials": TRIALS, "seeds": SEEDS, "select": {"metric": "jsd"}}},
                        registry, source="benchmark")
    specs = trial_specs(suite)[objective]
    dataset = build(registry, suite.datasets[0])
    configs = [spec.config for spec in specs for _ in suite.search.seeds]
    seeds = [seed for _ in specs for seed in suite.search.seeds]
    return registry, suite, dataset, configs, seeds


def round_of(objective, stacked):
    registry, suite, dataset, configs, seeds = trial_models(objective)
    device = torch.device("cpu")

    def make(members, member_seeds):
        built = build(registry, suite.objectives[0], dataset, device)
        built.members = tuple(members)
        return stepper(built, dataset, member_seeds, device)

    steps = [make(configs, seeds)] if stacked else [make([c], [s]) for c, s in zip(configs, seeds)]

    def run():
        for step in steps:
            for _ in range(ROUND_STEPS):
                step()
    return run


@pytest.mark.parametrize("impl", ["one-at-a-time", "stacked"])
@pytest.mark.parametrize("objective", ["nonsaturating", "gmmn"])
def test_trials_step(benchmark, objective, impl):
    torch.set_num_threads(THREADS)
    benchmark.group = f"trials {objective} small cpu"
    benchmark.extra_info.update(impl=impl, members=TRIALS * SEEDS, steps=ROUND_STEPS, model="small",
                                threads=THREADS, device="cpu")
    benchmark.pedantic(round_of(objective, impl == "stacked"), rounds=5, iterations=1, warmup_rounds=1)

