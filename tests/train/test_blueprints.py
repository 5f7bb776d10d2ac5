"""The blueprint of a (dataset, objective) against the networks and training step it stands for: for every
built-in objective on a mixture and on images, its parameter counts equal the built networks', its
activations are within 2x of the bytes autograd saves in one real training step (and of the CUDA peak on
a GPU), its FLOPs equal the counted ones and its nfe the network calls of one sample."""

import pytest
import torch

from benchbench import default_registry, parse_suite
from benchbench.plan.blueprint import Fit, recall
from benchbench.plan.cells import group_size
from benchbench.train.blueprints import suite_blueprints
from benchbench.train.sampling import count_sample_flops
from benchbench.train.stack import build_networks
from benchbench.train.timing import count_flops
from benchbench.train.trainer import build, stepper

OBJECTIVES = ["minimax", "nonsaturating", "gmmn", "flow", "ddpm", "vae"]
DATASETS = {"ring": ({}, {"batch_size": 48}),
            "digits": ({}, {"batch_size": 24, "architecture": "dcgan", "channels": 8})}
CPU = torch.device("cpu")


def blueprint_of(dataset: str, objective: str, **settings):
    data, given = DATASETS[dataset]
    raw = {"name": "b", "seeds": 1, "steps": 1, "datasets": {dataset: data},
           "objectives": {objective: {**given, **settings}}, "metrics": [], "reporters": []}
    registry = default_registry()
    suite = parse_suite(raw, registry, source="b.yaml")
    (made,) = suite_blueprints(suite, registry)
    return made, suite, registry


def saved_in_one_step(step) -> int:
    """Bytes autograd saves for backward in ``step()``: the measurement the estimate answers to."""
    saved = 0

    def pack(tensor):
        nonlocal saved
        saved += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return saved


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_the_blueprint_agrees_with_the_networks_and_the_step_it_stands_for(dataset, objective):
    blueprint, suite, registry = blueprint_of(dataset, objective)
    data = build(registry, suite.datasets[0])
    instance = build(registry, suite.objectives[0], data, CPU)
    nets = build_networks(instance, data, [0], CPU)
    assert {n.name: n.parameters for n in blueprint.networks} == {
        name: sum(p.numel() for p in module.parameters()) for name, module in nets.modules.items()}
    assert blueprint.counted_nfe == blueprint.nfe == instance.nfe()
    assert blueprint.updates_per_step == sum(u.repeats for u in instance.updates())

    measured = saved_in_one_step(stepper(instance, data, [0], CPU))  # at the objective's own batch size
    assert 0.5 <= blueprint.saved_bytes() / measured <= 2, (blueprint.saved_bytes(), measured)
    assert blueprint.activation_bytes_per_sample() > 0
    assert blueprint.step_flops == pytest.approx(count_flops(stepper(instance, data, [0], CPU)), rel=1e-9)
    per_sample, _ = count_sample_flops(nets, instance, data, [0], CPU)
    assert blueprint.sample_flops == pytest.approx(per_sample, rel=0.05)  # 2 samples against 16
    assert blueprint.train_bytes() > blueprint.parameter_bytes() > 0 and blueprint.eval_bytes(100) > 0


def test_the_saved_bytes_are_fitted_exactly_at_a_batch_far_from_the_measured_ones():
    # GMMN's kernel saves its gradient (linear in the batch), not its [N, N] matrices: the fit finds c = 0.
    # A loss that saves pairwise matrices is quadratic: Fit.through recovers a quadratic exactly.
    blueprint, suite, registry = blueprint_of("ring", "gmmn", batch_size=100)
    data = build(registry, suite.datasets[0])
    step = stepper(build(registry, suite.objectives[0], data, CPU), data, [0], CPU)
    assert blueprint.saved_bytes() == saved_in_one_step(step)
    assert Fit.through([1, 2, 3], [6, 11, 18]) == Fit(3, 2, 1)


def test_flops_of_a_step_too_large_to_run_are_fitted_exactly(monkeypatch):
    monkeypatch.setattr("benchbench.train.blueprints.COUNT_LIMIT", 0)  # as if batch_size were huge
    blueprint, suite, registry = blueprint_of("ring", "gmmn", batch_size=100)
    data = build(registry, suite.datasets[0])
    step = stepper(build(registry, suite.objectives[0], data, CPU), data, [0], CPU)
    assert blueprint.step_flops == pytest.approx(count_flops(step), rel=1e-9)


def test_networks_too_large_to_build_are_sized_without_allocating():
    blueprint, _, _ = blueprint_of("ring", "gmmn", hidden=[10**6, 10**6])
    assert blueprint.parameters == 3 * 10**6 + (10**6 + 1) * 10**6 + (10**6 + 1) * 2
    assert blueprint.saved is None and blueprint.step_flops is None and "too large" in blueprint.note


def test_planning_sizes_stacks_from_the_blueprint(monkeypatch):
    blueprint, suite, registry = blueprint_of("ring", "nonsaturating", critic_steps=3)
    suite = suite.with_overrides(seeds=8)
    assert recall(registry, suite.datasets[0], suite.objectives[0]) is blueprint
    monkeypatch.setattr("benchbench.plan.sizing.free_bytes", lambda device, workers=1: 6 * blueprint.train_bytes())
    assert group_size(suite, registry, suite.datasets[0], suite.objectives[0]) == 3  # half the memory, 3 members
    from benchbench.runner import expected_work
    from benchbench.plan.cells import plan
    (job,) = [j for j in plan(suite, registry) if j.objective][:1]
    assert expected_work(job, registry) == suite.steps * len(job.cells) * 4  # 3 critic updates and 1 generator's


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_the_activation_estimate_is_within_2x_of_the_cuda_peak(dataset, objective):
    blueprint, suite, registry = blueprint_of(dataset, objective)
    device = torch.device("cuda")
    data = build(registry, suite.datasets[0])
    step = stepper(build(registry, suite.objectives[0], data, device), data, [0], device)
    step()  # the optimizer's state allocated
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    assert 0.5 <= blueprint.saved_bytes() / peak <= 2, (blueprint.saved_bytes(), peak)
