"""The warning before training when a sampler makes evaluation very long."""

import warnings

import pytest

from benchbench import default_registry, parse_suite
from benchbench.train import eval_cost


def suite_of(sampling_steps: int):
    raw = {"name": "slow", "seeds": 5, "steps": 2000, "eval": {"samples": 2500, "every": 250, "curve_samples": 500},
           "datasets": {"ring": {}}, "objectives": {"flow": {"sampling_steps": sampling_steps},
                                                    "gmmn": {"hidden": [32]}}}
    return parse_suite(raw, default_registry(), source="slow.yaml")


def test_a_sampler_of_100000_steps_warns_in_one_line_naming_its_settings():
    with pytest.warns(eval_cost.SlowEvaluationWarning) as caught:
        lines = eval_cost.warn_if_slow(suite_of(100_000), default_registry())
    assert len(lines) == len(caught) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("slow.yaml: objectives.flow: sampling for evaluation alone should take about ")
    assert "sampling_steps" in lines[0] and " h (2,500 samples x 5 seeds" in lines[0]


def test_the_estimate_grows_with_the_steps_and_skips_one_call_samplers():
    registry = default_registry()
    few, many = (dict((s.label, t) for s, t in eval_cost.estimate(suite_of(n), registry)) for n in (20, 2000))
    assert set(few) == set(many) == {"flow"}  # gmmn: one network call per sample, never probed
    assert 20 < many["flow"] / few["flow"] < 500  # 100x the calls (the probe's timing is noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert eval_cost.warn_if_slow(suite_of(20), registry) == []
