"""The cost of a budget ladder: one training scored with the full final evaluation at 5 rungs (two
decades, half a decade apart) against a single run at the top rung, for one job of
``suites/families.yaml`` (nonsaturating GAN on the ring, its 6 seeds stacked, every metric, 2,500
samples, curves at every 1/8 of the budget) at 3e10 training FLOPs per model, a third of that suite's
top rung, so the evaluations weigh more than they do there.

The ladder's extra cost is its 4 lower rungs' evaluations (samples drawn and scored, timed as
``eval_time_s``); the training is the same. Run with ``python -m pytest benchmarks/test_ladder_cost.py
--benchmark-enable`` (a plain test run trains a few steps to check that it works). Target: at most 1.3x.
"""

import pytest
import torch

from benchbench import default_registry, parse_suite
from benchbench.plan.cells import plan
from benchbench.train.trainer import run_job

TOP = 3.0e10  # a rung of suites/families.yaml's ladder, low enough that the evaluations weigh heavily
SMOKE_TOP = 1.0e10
RUNGS = 5


def job(budget, smoke):
    raw = {"seeds": 2 if smoke else 6, "budget": budget, "datasets": {"ring": {}}, "objectives": {"nonsaturating": {}},
           "metrics": ["modes"] if smoke else "all", "reporters": [],
           "eval": {"samples": 200 if smoke else 2500, "every": 8, "curve_samples": 500, "reference": False}}
    suite = parse_suite(raw, default_registry(), source="benchmark")
    (only,) = plan(suite, default_registry())
    return only


@pytest.mark.parametrize("impl", ["single", "ladder"])
def test_ladder_against_a_single_run_at_its_top_rung(benchmark, impl):
    torch.set_num_threads(1)
    benchmark.group = "ladder of 5 rungs vs the top rung alone"
    benchmark.extra_info["impl"] = impl
    smoke = benchmark.disabled
    top = SMOKE_TOP if smoke else TOP
    budget = {"flops": top, "rungs": RUNGS, "lowest": top / 100} if impl == "ladder" else {"flops": top}
    the_job, registry = job(budget, smoke), default_registry()
    outcome = benchmark.pedantic(lambda: run_job(the_job, registry), rounds=3, iterations=1, warmup_rounds=0)
    assert len(outcome.rungs) == (RUNGS - 1 if impl == "ladder" else 0)
    assert all(len(rung.scores) == len(the_job.cells) for rung in outcome.rungs)
