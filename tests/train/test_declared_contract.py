"""What a new family needs from the objective contract, without workarounds: networks declared in a
loop and indexed by name, an activation and a zero-initialised last layer per network, and a free
parameter (a learned prior scale) that the core stacks, optimises, averages and counts. A tiny
RealNVP trained by exact likelihood uses all of them and passes the plugin authors' kit (which trains
it a few steps and runs a job through the trainer)."""

from __future__ import annotations

import dataclasses
import math
import re
import warnings

import pytest
import torch
from torch import Tensor, nn

from benchbench import (FreeParameter, Nets, Network, Objective, ObjectiveConfig, PluginError, Update,
                        default_registry, param)
from benchbench import testing as kit
from benchbench.nets.models import build_network
from benchbench.train.declarations import declared_networks
from benchbench.train.ema import make_ema
from benchbench.train.stack import build_networks
from benchbench.train.trainer import training_step

LOG_2PI = math.log(2 * math.pi)


@dataclasses.dataclass(frozen=True)
class RealNVPConfig(ObjectiveConfig):
    couplings: int = param(4, "affine coupling layers", ge=1, le=64)
    hidden: tuple[int, ...] = param((16,), "widths of each coupling's conditioner", gt=0)


class RealNVP(Objective):
    """Affine couplings on vectors (Dinh et al. 2017), each conditioner a tanh MLP whose last layer
    starts at zero (every coupling starts as the identity), and a learned log-scale of the N(0, diag)
    prior: a free parameter."""

    name = "realnvp-test"
    Config = RealNVPConfig

    def __init__(self, config, data):
        super().__init__(config, data)
        self.dim = data.shape[1]

    def halves(self, i: int) -> tuple[list[int], list[int]]:
        first, second = list(range(self.dim // 2)), list(range(self.dim // 2, self.dim))
        return (first, second) if i % 2 == 0 else (second, first)

    def networks(self, dataset):
        cfg = self.config
        nets = [Network(f"coupling{i}", (len(self.halves(i)[0]),), (2 * len(self.halves(i)[1]),), cfg.hidden,
                        activation="tanh", zero_init=True) for i in range(cfg.couplings)]
        return (*nets, FreeParameter("log_scale", (self.dim,), init=0.0))

    def updates(self):
        names = tuple(f"coupling{i}" for i in range(self.config.couplings))
        return (Update("model", (*names, "log_scale"), self.loss),)

    def coupling(self, nets: Nets, i: int, x: Tensor) -> tuple[Tensor, Tensor, list[int], list[int]]:
        keep, move = self.halves(i)
        s, t = nets[f"coupling{i}"](x[..., keep]).chunk(2, -1)
        return torch.tanh(s), t, keep, move

    def loss(self, nets: Nets, real: Tensor) -> Tensor:
        """Negative log-likelihood per coordinate, per member."""
        x, logdet = real, torch.zeros(real.shape[:2], dtype=real.dtype, device=real.device)
        for i in range(self.config.couplings):
            s, t, keep, move = self.coupling(nets, i, x)
            x = x.clone()
            x[..., move] = x[..., move] * s.exp() + t
            logdet = logdet + s.sum(-1)
        log_scale = nets.log_scale.unsqueeze(1)  # [M, 1, d]
        prior = (-0.5 * (x * torch.exp(-log_scale)).pow(2) - log_scale - 0.5 * LOG_2PI).sum(-1)
        return -(prior + logdet).mean(1) / self.dim

    def sample(self, nets: Nets, n: int) -> Tensor:
        x = self.normal(n, self.dim) * nets.log_scale.exp().unsqueeze(1)
        for i in reversed(range(self.config.couplings)):
            s, t, keep, move = self.coupling(nets, i, x)
            x = x.clone()
            x[..., move] = (x[..., move] - t) * torch.exp(-s)
        return x

    def nfe(self):
        return self.config.couplings


@pytest.mark.slow
def test_a_realnvp_with_couplings_by_name_zero_init_and_a_learned_prior_scale_passes_the_kit():
    kit.check_objective(RealNVP, {"batch_size": 16, "couplings": 3}, dataset="ring", members=2)


def ring():
    return default_registry().get("dataset", "ring", "ring").cls(
        default_registry().get("dataset", "ring", "ring").cls.Config())


def realnvp(**settings) -> RealNVP:
    data = ring()
    return RealNVP(RealNVPConfig(**settings), data.sample(64, torch.Generator().manual_seed(0)))


def test_declared_activation_and_zero_init_are_built():
    data = ring()
    generators = lambda: [torch.Generator().manual_seed(s) for s in (0, 1)]  # noqa: E731
    zeroed = build_network(Network("f", (2,), (3,), (8, 8), activation="tanh", zero_init=True), data, generators(),
                           "test")
    plain = build_network(Network("f", (2,), (3,), (8, 8)), data, generators(), "test")
    assert [type(m) for m in zeroed.modules() if isinstance(m, (nn.Tanh, nn.ReLU))] == [nn.Tanh, nn.Tanh]
    assert [type(m) for m in plain.modules() if isinstance(m, (nn.Tanh, nn.ReLU))] == [nn.ReLU, nn.ReLU]
    layers = [m for m in zeroed.modules() if hasattr(m, "weight")]
    same = [m for m in plain.modules() if hasattr(m, "weight")]
    assert all(torch.equal(p, torch.zeros_like(p)) for p in layers[-1].parameters())
    for a, b in zip(layers[:-1], same[:-1]):  # drawn from the same streams: only the last layer differs
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert torch.equal(zeroed(torch.randn(2, 5, 2)), torch.zeros(2, 5, 3))
    # the streams moved as without zero_init: a network built after it is initialised the same
    g1, g2 = generators(), generators()
    build_network(Network("f", (2,), (3,), (8,), zero_init=True), data, g1, "test")
    build_network(Network("f", (2,), (3,), (8,)), data, g2, "test")
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(g1, g2))


def test_a_zero_initialised_convolutional_network_starts_as_the_zero_map():
    images = dataclasses.make_dataclass("Images", [], bases=())
    images.shape, images.bounds, images.name = (1, 8, 8), (0.0, 1.0), "images"
    generators = [torch.Generator().manual_seed(0)]
    for spec in (Network("d", (1, 8, 8), (1, 8, 8), architecture="dcgan", channels=4, time=True, zero_init=True),
                 Network("c", (1, 8, 8), (3,), architecture="dcgan", channels=4, zero_init=True)):
        net = build_network(spec, images, generators, "test")
        args = (torch.rand(1, 3, 1, 8, 8),) + ((torch.rand(1, 3),) if spec.time else ())
        assert torch.equal(net(*args), torch.zeros(1, 3, *spec.output)), spec.name


def test_a_free_parameter_is_stacked_optimised_averaged_and_counted():
    objective, data = realnvp(couplings=2, batch_size=16), ring()
    nets = build_networks(objective, data, [0, 1, 2], torch.device("cpu"))
    scale = nets.view([torch.Generator()]).log_scale
    assert isinstance(scale, Tensor) and scale.shape == (3, 2) and torch.equal(scale, torch.zeros(3, 2))
    assert scale is nets.modules["log_scale"].value  # the trained tensor itself, not a copy
    per_member = sum(p.numel() for m in nets.modules.values() for p in m.parameters()) // 3
    couplings = 2 * ((1 + 1) * 16 + (16 + 1) * 2)  # two conditioners 1 -> 16 -> 2
    assert per_member == couplings + 2
    ema = make_ema(nets.modules, 0.9)
    assert any(p is scale for p in ema.parameters)
    rng = [torch.Generator().manual_seed(s) for s in range(3)]
    losses = torch.zeros(1, 3)
    for _ in range(3):
        training_step(nets, objective, data, rng, losses)
    assert not torch.equal(scale, torch.zeros(3, 2)) and scale is nets.view(rng).log_scale
    assert len({tuple(row.tolist()) for row in scale.detach()}) == 3  # members trained apart


def test_a_free_parameter_trains_the_same_alone_or_stacked():
    objective, data = realnvp(couplings=2, batch_size=16), ring()
    found = []
    for seeds in ([0, 1], [1]):
        nets = build_networks(objective, data, seeds, torch.device("cpu"))
        rng = [torch.Generator().manual_seed(10 + s) for s in seeds]
        for _ in range(3):
            training_step(nets, objective, data, rng, torch.zeros(1, len(seeds)))
        found.append(nets.modules["log_scale"].value.detach())
    assert torch.allclose(found[0][1], found[1][0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("declaration, message", [
    (Network("f", (2,), (2,), activation="swish"), "activation 'swish'; allowed for architecture mlp: relu"),
    (Network("f", (1, 8, 8), (1,), architecture="dcgan", activation="tanh"), "dcgan networks have DCGAN's own"),
    (FreeParameter("f", (0,)), "free parameter 'f': shape is (0,)"),
    (FreeParameter("f", (2,), init=float("nan")), "init is nan; expected a finite number"),
    (FreeParameter("bounds"), "not a method or attribute of Nets"),
])
def test_impossible_declarations_are_one_line_naming_the_objective(declaration, message):
    objective = realnvp(couplings=1)
    objective.networks = lambda dataset: (declaration,)
    with pytest.raises(PluginError, match=re.escape(message)) as caught:
        declared_networks(objective, ring())
    assert "realnvp-test" in str(caught.value) and "\n" not in str(caught.value)


def test_a_run_of_a_family_without_generator_settings_reads_none_and_warns_nothing(tiny, tmp_path):
    from benchbench import hookimpl, parse_suite, registry_with, run
    plugin = type("P", (), {"benchbench_objectives": staticmethod(hookimpl(lambda: [RealNVP]))})
    registry = registry_with([("realnvp", plugin)])
    raw = {**tiny, "seeds": 2, "steps": 6, "metrics": ["throughput"], "reporters": [],
           "datasets": {"ring": {}}, "objectives": {"realnvp-test": {"batch_size": 16, "couplings": 2}}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no core code reads a generator setting it lacks
        outcome = run(parse_suite(raw, registry), out=tmp_path / "r", registry=registry)
    assert not outcome.failed_jobs, outcome.tracebacks
    records = outcome.records.set_index(["seed", "metric"]).value
    assert records[(0, "nfe")] == 2 and records[(0, "train_flops")] > 0
