"""WGAN-GP: benchbench's conformance checks (which run a job's own code path, FLOP counting
included), the gradient penalty against its closed form for a linear critic, randomness that
depends on a member's seed alone, discovery through the entry point, and the speed of one step."""

import torch

from benchbench import default_registry
from benchbench.testing import check_objective, check_plugin
from benchbench_wgan_gp import WGANGP, WGANGPConfig, gradient_penalty

import benchbench_wgan_gp

SMALL = {"batch_size": 64, "hidden": [32, 32], "critic_hidden": [32, 32]}


def test_conforms_to_the_objective_contract():
    check_objective(WGANGP)
    check_objective(WGANGP, {**SMALL, "penalty": 1.0, "critic_steps": 2})


def test_the_plugin_module_conforms():
    check_plugin(benchbench_wgan_gp)


def linear_critic(w, b):
    """D_i(x) = w_i . x + b_i for member i: ``w`` ``[M, d]``, ``b`` ``[M]``; samples ``[M, B, d]`` -> ``[M, B, 1]``."""
    return lambda x: (x * w[:, None, :]).sum(-1, keepdim=True) + b[:, None, None]


def test_the_penalty_of_a_linear_critic_is_the_closed_form_and_reaches_its_weights():
    """grad_x D = w everywhere, so the penalty is (||w|| - 1)^2 whatever the samples and weights
    e, and its gradient with respect to w is 2 (||w|| - 1) w / ||w||."""
    w = torch.tensor([[3.0, 4.0], [0.6, 0.0], [0.0, 1.0]], requires_grad=True)  # norms 5, 0.6, 1
    b = torch.tensor([0.5, -1.0, 2.0])
    real, fake = torch.randn(3, 16, 2), torch.randn(3, 16, 2)
    e = torch.rand(3, 16)
    penalty = gradient_penalty(linear_critic(w, b), real, fake, e)
    torch.testing.assert_close(penalty, torch.tensor([16.0, 0.16, 0.0]))
    (grad,) = torch.autograd.grad(penalty.sum(), w)
    norms = w.detach().norm(dim=1, keepdim=True)
    torch.testing.assert_close(grad, 2 * (norms - 1) * w.detach() / norms)


def test_the_critic_loss_of_a_linear_critic_is_the_closed_form():
    objective = WGANGP(WGANGPConfig(), data=torch.zeros(8, 2))
    objective.rng = [torch.Generator().manual_seed(s) for s in range(2)]
    w, b = torch.tensor([[3.0, 4.0], [0.0, 0.5]]), torch.zeros(2)
    real, fake = torch.ones(2, 8, 2), torch.zeros(2, 8, 2)
    expected = -(w.sum(1)) + 10 * (w.norm(dim=1) - 1) ** 2  # E[D(fake)] - E[D(real)] + lambda (||w|| - 1)^2
    torch.testing.assert_close(objective.critic_loss(linear_critic(w, b), real, fake), expected)
    torch.testing.assert_close(objective.generator_loss(linear_critic(w, b), real, fake), torch.zeros(2))


def test_a_members_interpolation_weights_depend_on_its_seed_alone():
    """Member 1 of a stack of three draws what it draws alone, and the global random state is untouched."""
    objective = WGANGP(WGANGPConfig(), data=torch.zeros(8, 2))
    state = torch.get_rng_state()
    objective.rng = [torch.Generator().manual_seed(s) for s in (0, 1, 2)]
    stacked = objective.uniform(5)
    objective.rng = [torch.Generator().manual_seed(1)]
    alone = objective.uniform(5)
    assert stacked.shape == (3, 5) and torch.equal(stacked[1:2], alone)
    assert torch.equal(torch.get_rng_state(), state)


def test_the_installed_package_registers_wgan_gp():
    """Needs the package installed (pip install -e .): benchbench finds it through its entry point."""
    available = default_registry().available("objective")
    assert "wgan-gp" in available, "benchbench does not see wgan-gp: pip install -e . (its entry point makes it a plugin)"
    entry = available["wgan-gp"]
    assert entry.cls.__module__ == "benchbench_wgan_gp" and entry.plugin.distribution == "benchbench-wgan-gp"
    assert entry.cls.Config().critic_steps == 5 and entry.cls.Config().betas == (0.5, 0.9)


def test_training_step_speed(benchmark_training_step):
    """4 stacked seeds on benchbench's test mixture (5 critic steps per step); `pytest --benchmark-only` times it."""
    benchmark = benchmark_training_step(WGANGP, SMALL, members=4, steps=5)
    assert benchmark.extra_info["objective"] == "wgan-gp" and benchmark.extra_info["members"] == 4
