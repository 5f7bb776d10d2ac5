"""The sampler as a run draws it: every stacked member in one network call per solver step, the
same samples on every repeat of the throughput measurement, and a slow sampler timed once."""

import pytest
import torch

from benchbench.train import sampling
from benchbench.train.sampling import draw, timed_draw
from benchbench.train.stack import build_networks
from benchbench_plugins.datasets.mixtures import Ring
from benchbench_plugins.objectives.diffusion import DDPM, DDPMConfig
from benchbench_plugins.objectives.flow import FlowConfig, FlowMatching

SEEDS = [0, 1, 2]


def built(objective):
    data = Ring(Ring.Config())
    return data, build_networks(objective, data, SEEDS, torch.device("cpu"))


@pytest.mark.parametrize("objective, steps", [
    (FlowMatching(FlowConfig(hidden=(16,), solver="midpoint", sampling_steps=5), torch.zeros(8, 2)), 10),
    (DDPM(DDPMConfig(hidden=(16,), timesteps=40, sampling_steps=7), torch.randn(64, 2)), 7),
])
def test_every_member_is_sampled_in_one_network_call_per_solver_step(objective, steps):
    data, nets = built(objective)
    (network,) = nets.modules.values()
    batches = []
    hook = network.register_forward_hook(lambda module, args, out: batches.append(tuple(args[0].shape[:2])))
    try:
        fake = draw(nets, objective, data, SEEDS, 11, "eval")
    finally:
        hook.remove()
    assert fake.shape == (3, 11, 2)
    assert batches == [(3, 11)] * steps  # one call per network evaluation, all members, all samples


def test_the_throughput_repeats_draw_the_same_samples_and_a_slow_sampler_is_timed_once(monkeypatch):
    flow = FlowMatching(FlowConfig(hidden=(16,), sampling_steps=3), torch.zeros(8, 2))
    data, nets = built(flow)
    calls = []
    original = flow.sample
    monkeypatch.setattr(flow, "sample", lambda view, n: calls.append(n) or original(view, n))
    fake, seconds = timed_draw(nets, flow, data, SEEDS, 13, torch.device("cpu"))
    assert len(calls) == sampling.SAMPLING_REPEATS and seconds > 0  # fast: the fastest of three
    assert torch.equal(fake, draw(nets, flow, data, SEEDS, 13, "eval"))
    calls.clear()
    monkeypatch.setattr(sampling, "REPEAT_WITHIN_S", 0.0)  # every draw counts as slow
    again, _ = timed_draw(nets, flow, data, SEEDS, 13, torch.device("cpu"))
    assert len(calls) == 1 and torch.equal(again, fake)
