"""The least-squares GAN: benchbench's conformance checks (of the objective and of the whole
plugin), the losses against closed forms, the optimal critic, discovery through the entry
point, and the speed of one training step."""

import torch

import benchbench_lsgan
from benchbench import default_registry
from benchbench.testing import check_objective, check_plugin
from benchbench_lsgan import LeastSquares, LSGANConfig

SMALL = {"batch_size": 64, "hidden": [32, 32], "critic_hidden": [32, 32]}


def test_conforms_to_the_objective_contract():
    check_objective(LeastSquares)
    check_objective(LeastSquares, {"fake_target": -1.0, "real_target": 1.0, "generator_target": 0.0})


def test_the_plugin_module_conforms():
    """Its hooks' names (a typo fails here, with the right name) and every component it provides."""
    assert check_plugin(benchbench_lsgan) == {"objective": ["lsgan"]}


def constant_critic(values):
    """A critic whose output is ``values[i]`` for every sample of member ``i``."""
    values = torch.tensor(values)
    return lambda x: values[:, None, None].expand(x.shape[0], x.shape[1], 1)


def test_losses_of_a_constant_critic_are_the_closed_forms():
    objective = LeastSquares(LSGANConfig(), data=torch.zeros(8, 2))
    real, fake = torch.zeros(2, 16, 2), torch.ones(2, 16, 2)
    d = torch.tensor([0.3, -2.0])
    critic = constant_critic(d.tolist())
    torch.testing.assert_close(objective.critic_loss(critic, real, fake), 0.5 * (d - 1) ** 2 + 0.5 * d**2)
    torch.testing.assert_close(objective.generator_loss(critic, real, fake), 0.5 * (d - 1) ** 2)


def test_the_optimal_critic_is_p_data_over_p_data_plus_p_g():
    """On two points with p_data = (3/4, 1/4) and p_g = (1/4, 3/4) (exact proportions in the
    batches), the critic loss is stationary at D* = p_data / (p_data + p_g) and larger elsewhere."""
    objective = LeastSquares(LSGANConfig(), data=torch.zeros(8, 1))
    real = torch.tensor([0.0, 0.0, 0.0, 1.0]).reshape(1, 4, 1)
    fake = torch.tensor([0.0, 1.0, 1.0, 1.0]).reshape(1, 4, 1)

    def loss_at(d):
        return objective.critic_loss(lambda x: d[x.long()], real, fake)

    best = torch.tensor([0.75, 0.25], requires_grad=True)
    (grad,) = torch.autograd.grad(loss_at(best).sum(), best)
    torch.testing.assert_close(grad, torch.zeros(2))
    for shift in ([0.1, 0.0], [0.0, -0.1]):
        assert loss_at(best.detach() + torch.tensor(shift)) > loss_at(best.detach())


def test_the_installed_package_registers_lsgan():
    """Needs the package installed (pip install -e .): benchbench finds it through its entry point."""
    available = default_registry().available("objective")
    assert "lsgan" in available, "benchbench does not see lsgan: pip install -e . (its entry point makes it a plugin)"
    entry = available["lsgan"]
    assert entry.cls.__module__ == "benchbench_lsgan" and entry.plugin.distribution == "benchbench-lsgan"


def test_training_step_speed(benchmark_training_step):
    """4 stacked seeds on benchbench's test mixture; `pytest --benchmark-only` times it."""
    benchmark = benchmark_training_step(LeastSquares, SMALL, members=4, steps=10)
    assert benchmark.extra_info["objective"] == "lsgan" and benchmark.extra_info["members"] == 4
