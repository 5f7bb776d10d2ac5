"""FLOP counting: torch's formulas for matrix products, one FLOP per element for elementwise
operators and reductions; the sampler's FLOPs grow with its network evaluations."""

import subprocess
import sys

import pytest
import torch
from benchbench_plugins.datasets.mixtures import Ring
from benchbench_plugins.objectives.flow import FlowConfig, FlowMatching

from benchbench.train.models import StackedLinear
from benchbench.train.sampling import count_sample_flops
from benchbench.train.stack import build_networks
from benchbench.train.timing import count_flops


def test_matrix_products_count_by_torchs_formula_and_elementwise_operators_by_their_outputs():
    a, b = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    assert count_flops(lambda: torch.bmm(a, b)) == 2 * 2 * 3 * 4 * 5
    x = torch.randn(10, 7)
    assert count_flops(lambda: x * 2 + 1) == 2 * 70  # mul and add: one per output element
    assert count_flops(lambda: x.sum(1)) == 70  # a reduction: one per input element
    assert count_flops(lambda: x.clone()) is None  # a copy computes nothing


def test_an_elementwise_layer_does_not_count_as_zero():
    layer = StackedLinear(8, 1, [torch.Generator().manual_seed(0)])  # fan-out 1: a broadcast product and a sum
    x = torch.randn(1, 16, 8)
    assert count_flops(lambda: layer(x)) == 16 * 8 + 16 * 8 + 16  # product, sum, bias


@pytest.mark.parametrize("solver, factor", [("euler", 1), ("midpoint", 2)])
def test_sampler_flops_grow_with_its_network_evaluations(solver, factor):
    data = Ring(Ring.Config())
    counts = []
    for steps in (4, 8):
        flow = FlowMatching(FlowConfig(hidden=(16,), solver=solver, sampling_steps=steps), torch.zeros(8, 2))
        nets = build_networks(flow, data, [0, 1], torch.device("cpu"))
        per_sample, note = count_sample_flops(nets, flow, data, [0, 1], torch.device("cpu"))
        assert per_sample and not note
        counts.append(per_sample)
    assert counts[1] == pytest.approx(2 * counts[0], rel=0.02)
    # one evaluation of the velocity MLP (3 -> 16 -> 2) is about 2 x (3 x 16 + 16 x 2) FLOPs
    assert counts[0] / (4 * factor) == pytest.approx(2 * (3 * 16 + 16 * 2), rel=0.5)


def test_the_kit_imports_without_pytest():
    code = "import sys; sys.modules['pytest'] = None; import benchbench.testing; benchbench.testing.check_objective"
    subprocess.run([sys.executable, "-c", code], check=True)
