"""The training recipe every objective has: the learning rate of each step, the moving average of the weights,
gradient clipping per member and network, against closed forms; members of a stack independent."""

import math

import pytest
import torch
from torch import nn

from benchbench.train.ema import EMA
from benchbench.train.grad_clip import clip_gradients, member_norms
from benchbench.train.lr_schedule import lr_factor
from benchbench.train.member_optim import MemberOptimizer


def test_warmup_ramps_linearly_then_each_schedule_decays_to_its_floor():
    assert [lr_factor(s, 10, "constant", warmup=4) for s in range(1, 7)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    # after 2 warmup steps, 8 decay steps: p = (s - 3) / 8
    assert lr_factor(3, 10, "linear", 2) == 1.0 and lr_factor(3, 10, "cosine", 2) == 1.0
    assert lr_factor(7, 10, "linear", 2, floor=0.1) == pytest.approx(0.1 + 0.9 * (1 - 4 / 8))
    assert lr_factor(7, 10, "cosine", 2) == pytest.approx((1 + math.cos(math.pi * 4 / 8)) / 2)
    assert lr_factor(10, 10, "cosine", 0, floor=0.2) == pytest.approx(0.2 + 0.8 * (1 + math.cos(math.pi * 0.9)) / 2)
    linear = [lr_factor(s, 100, "linear", floor=0.3) for s in range(1, 101)]
    assert linear == sorted(linear, reverse=True) and linear[0] == 1.0 and min(linear) > 0.3


def test_the_moving_average_follows_its_closed_form_and_scoring_it_leaves_the_weights_alone():
    layer = nn.Linear(3, 2)
    ema = EMA({"net": layer}, decay=0.9)
    assert [ema.decay_at(t) for t in (0, 1, 8)] == [0.1, 2 / 11, 0.5] and ema.decay_at(1000) == 0.9
    expected = [p.detach().clone() for p in layer.parameters()]
    for t in range(30):
        with torch.no_grad():
            for p in layer.parameters():
                p.add_(torch.randn_like(p))
        ema.update()
        d = min(0.9, (1 + t) / (10 + t))
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, layer.parameters())]
    raw = [p.detach().clone() for p in layer.parameters()]
    with ema.applied():
        for p, e in zip(layer.parameters(), expected):
            torch.testing.assert_close(p.detach(), e)
    assert all(torch.equal(p, r) for p, r in zip(layer.parameters(), raw))  # raw weights back, bit for bit
    assert ema.flops_per_step() == 3 * (3 * 2 + 2)


def stacked_grads(members: int, rows: int = 7):
    """A two-parameter 'network' of ``members`` stacked members with known gradients."""
    torch.manual_seed(0)
    net = nn.Module()
    net.w = nn.Parameter(torch.zeros(members, rows, 5))
    net.b = nn.Parameter(torch.zeros(members, 3))
    net.w.grad = torch.randn(members, rows, 5) * 0.2 * torch.arange(1, members + 1).view(-1, 1, 1).float()
    net.b.grad = torch.randn(members, 3)
    return net


def test_clipping_bounds_each_members_global_norm_as_torch_does_for_one_network():
    net = stacked_grads(4)
    before = [(net.w.grad[i].clone(), net.b.grad[i].clone()) for i in range(4)]
    norms = member_norms(net, 4)
    assert (norms > 3).any() and (norms < 3).any()
    clip_gradients([net], 4, 3.0)
    for i, (w, b) in enumerate(before):
        alone = [torch.zeros_like(w, requires_grad=True), torch.zeros_like(b, requires_grad=True)]
        alone[0].grad, alone[1].grad = w.clone(), b.clone()
        torch.testing.assert_close(torch.nn.utils.clip_grad_norm_(alone, 3.0), norms[i])
        torch.testing.assert_close(net.w.grad[i], alone[0].grad)
        torch.testing.assert_close(net.b.grad[i], alone[1].grad)


def test_a_clipped_member_is_bit_identical_alone_or_stacked():
    stacked = stacked_grads(5, rows=33)
    expected = [(stacked.w.grad[i].clone(), stacked.b.grad[i].clone()) for i in range(5)]
    clip_gradients([stacked], 5, 2.5)
    for i, (w, b) in enumerate(expected):
        alone = nn.Module()
        alone.w, alone.b = nn.Parameter(torch.zeros(1, 33, 5)), nn.Parameter(torch.zeros(1, 3))
        alone.w.grad, alone.b.grad = w.unsqueeze(0).clone(), b.unsqueeze(0).clone()
        clip_gradients([alone], 1, 2.5)
        assert torch.equal(alone.w.grad[0], stacked.w.grad[i]) and torch.equal(alone.b.grad[0], stacked.b.grad[i])


def test_the_member_optimizer_scales_every_members_rate_and_its_state_round_trips():
    params = [nn.Parameter(torch.ones(2, 4))]
    optimizer = MemberOptimizer(params, "sgd", [0.1, 0.2], [(0.9, 0.999)] * 2, [0.0, 0.0])
    params[0].grad = torch.ones(2, 4)
    optimizer.lr_scale = 0.5
    optimizer.step()
    assert params[0][0, 0].item() == pytest.approx(1 - 0.05) and params[0][1, 0].item() == pytest.approx(1 - 0.1)
    state = optimizer.state_dict()
    again = MemberOptimizer(params, "sgd", [0.1, 0.2], [(0.9, 0.999)] * 2, [0.0, 0.0])
    again.load_state_dict(state)
    assert again.steps == 1


def test_only_a_decaying_learning_rate_makes_training_depend_on_the_budget():
    from benchbench.api.objective import ObjectiveConfig
    assert not ObjectiveConfig().budget_dependent
    assert not ObjectiveConfig(ema=0.999, warmup=100, grad_clip=1.0).budget_dependent  # scored at any step
    assert ObjectiveConfig(lr_schedule="cosine").budget_dependent and ObjectiveConfig(lr_schedule="linear").budget_dependent
