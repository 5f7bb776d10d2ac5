"""Flow matching / rectified flow against closed forms: a Gaussian target's exact velocity field,
the loss of the optimal field, the sampler's shapes and network evaluations; the conformance kit;
a member trained alone or stacked."""

import json
import math

import pytest
import torch

from benchbench import Nets, default_registry, parse_suite, run, sampling_settings, testing
from benchbench_plugins.objectives.flow import FlowConfig, FlowMatching, flow_matching_loss, integrate, interpolate

MU, S = torch.tensor([1.5, -0.5]), 0.5  # the Gaussian target N(MU, S^2 I)


def exact_velocity(mu: torch.Tensor, s: float):
    """v*(x, t) = E[x1 - x0 | x_t = x] for x0 ~ N(0, I), x1 ~ N(mu, s^2 I), x_t = (1 - t) x0 + t x1:
    x_t ~ N(t mu, sigma_t^2 I), sigma_t^2 = (1 - t)^2 + t^2 s^2, Cov(x1 - x0, x_t) = t s^2 - (1 - t)."""
    def v(x, t):
        t = t.to(x.dtype).unsqueeze(-1)
        var = (1 - t) ** 2 + t ** 2 * s ** 2
        return mu + (t * s ** 2 - (1 - t)) / var * (x - t * mu)
    return v


def objective(**settings):
    return FlowMatching(FlowConfig(**settings), torch.zeros(8, 2))


def test_interpolation_is_noise_at_zero_and_data_at_one():
    x0, x1 = torch.randn(2, 5, 2), torch.randn(2, 5, 2)
    assert torch.equal(interpolate(x0, x1, torch.zeros(2, 5)), x0)
    assert torch.equal(interpolate(x0, x1, torch.ones(2, 5)), x1)


@pytest.mark.parametrize("solver, steps, tolerance", [("euler", 2000, 2e-3), ("midpoint", 100, 1e-4)])
def test_the_exact_field_of_a_gaussian_carries_noise_to_its_sample(solver, steps, tolerance):
    # The flow of v* maps x0 to mu + s x0 (the path t mu + sigma_t x0 solves dx/dt = v*).
    x0 = torch.randn(3, 400, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x1 = integrate(exact_velocity(MU.double(), S), x0, steps, solver)
    assert (x1 - (MU.double() + S * x0)).abs().max() < tolerance


def test_the_sampler_draws_from_the_members_streams_and_integrates_the_field():
    flow = objective(sampling_steps=400, solver="midpoint")
    flow.rng = [torch.Generator().manual_seed(s) for s in (0, 1)]
    samples = flow.sample(Nets({"velocity": exact_velocity(MU, S)}), 5000)
    assert samples.shape == (2, 5000, 2)
    torch.testing.assert_close(samples.mean(1), MU.expand(2, 2), atol=0.03, rtol=0)
    torch.testing.assert_close(samples.std(1), torch.full((2, 2), S), atol=0.02, rtol=0)
    flow.rng = [torch.Generator().manual_seed(1)]  # member 1 alone: the same samples
    assert torch.equal(flow.sample(Nets({"velocity": exact_velocity(MU, S)}), 5000)[0], samples[1])


def test_the_loss_of_the_optimal_field_is_the_conditional_variance():
    # E||v* - (x1 - x0)||^2 / d = E_t[Var(x1 - x0 | x_t)] = E_t[1 + s^2 - (t s^2 - (1 - t))^2 / sigma_t^2]
    t = torch.linspace(0, 1, 100_001, dtype=torch.float64)
    expected = float(torch.trapezoid(1 + S ** 2 - (t * S ** 2 - (1 - t)) ** 2 / ((1 - t) ** 2 + t ** 2 * S ** 2), t))
    g = torch.Generator().manual_seed(0)
    n = 400_000
    x0, t = torch.randn(1, n, 2, generator=g, dtype=torch.float64), torch.rand(1, n, generator=g, dtype=torch.float64)
    x1 = MU.double() + S * torch.randn(1, n, 2, generator=g, dtype=torch.float64)
    loss = flow_matching_loss(exact_velocity(MU.double(), S), x0, x1, t)
    assert float(loss) == pytest.approx(expected, rel=5e-3)
    # any other field does worse: the optimal one plus a constant c pays |c|^2 / d more
    worse = flow_matching_loss(lambda x, t: exact_velocity(MU.double(), S)(x, t) + 0.3, x0, x1, t)
    assert float(worse) == pytest.approx(expected + 0.09, rel=5e-3)


@pytest.mark.parametrize("solver, steps, nfe", [("euler", 1, 1), ("euler", 50, 50), ("midpoint", 20, 40)])
def test_network_evaluations_per_sample(solver, steps, nfe):
    flow = objective(solver=solver, sampling_steps=steps)
    calls = []

    def velocity(x, t):
        calls.append(x.shape)
        return torch.zeros_like(x)

    flow.rng = [torch.Generator().manual_seed(0)]
    flow.sample(Nets({"velocity": velocity}), 7)
    assert flow.nfe() == nfe == len(calls) and all(c == (1, 7, 2) for c in calls)


def test_solver_and_steps_are_sampling_settings():
    assert sampling_settings(FlowConfig) == ("weights", "solver", "sampling_steps")  # which weights: any objective


def test_flow_matching_passes_the_conformance_kit():
    testing.check_objective("flow", {"batch_size": 16, "hidden": [16], "sampling_steps": 3})
    testing.check_objective("flow", {"batch_size": 16, "hidden": [16], "sampling_steps": 2, "solver": "midpoint"},
                            dataset="ring")


SUITE = {
    "name": "flow", "seeds": 3, "steps": 6, "execution": {"workers": 1},
    "eval": {"samples": 100, "every": 3, "curve_samples": 50, "plot_samples": 10, "reference": False},
    "datasets": {"ring": {}}, "metrics": ["modes", "throughput"], "reporters": [],
    "objectives": {"flow": {"batch_size": 16, "hidden": [16, 16], "sampling_steps": 4}},
}


def cells(outcome):
    return {d["cell"]: d for d in (json.loads(p.read_text()) for p in (outcome.directory / "cells").glob("*.json"))}


def test_a_member_trains_bit_identically_alone_or_stacked(tmp_path):
    registry = default_registry()
    stacked = run(parse_suite(SUITE, registry), out=tmp_path / "stacked", registry=registry)
    alone = run(parse_suite({**SUITE, "execution": {"workers": 1, "stack_seeds": False}}, registry),
                out=tmp_path / "alone", registry=registry)
    a, b = cells(stacked), cells(alone)
    assert set(a) == set(b) and len(a) == 3 and not stacked.failed_jobs
    untimed = {"eval_time_s", "train_time_s", "model_steps_per_s", "samples_per_s", "peak_memory_mb", "gflop_per_s"}
    for key in a:
        assert a[key]["curves"] == b[key]["curves"], key
        assert {k: v for k, v in a[key]["scores"].items() if k not in untimed} == \
               {k: v for k, v in b[key]["scores"].items() if k not in untimed}, key
    scores = next(iter(a.values()))["scores"]
    assert scores["nfe"] == 4 and scores["train_steps"] == 6 and scores["flops_per_sample"] > 0
    curves = next(iter(a.values()))["curves"]
    assert math.isfinite(scores["flow_matching_loss"]) and "model_loss" in {c[1] for c in curves}
