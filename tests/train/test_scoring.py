"""Scoring validates what metrics return: a value outside its output's declared range is an
estimator failure, recorded as missing with a note, never a score."""

import math

import pytest
import torch

from benchbench import Metric, Output
from benchbench.train.evaluation import NamedMetric, score
from benchbench_plugins.datasets.mixtures import Ring

LOG2 = math.log(2)


def fixed_metric(**values):
    class Fixed(Metric):
        name = "fixed"
        outputs = (Output("jsd", "divergence", "lower", range=(0.0, LOG2), tolerance=0.01),
                   Output("kl", "divergence", "lower", range=(0.0, math.inf)),
                   Output("free", "quality", "higher"))

        def compute(self, evaluation):
            return values

    return NamedMetric("fixed", "fixed", Fixed(None))


def scored(**values):
    real = fake = torch.zeros(1, 10, 2)
    scores, notes, problems = score([fixed_metric(**values)], Ring(Ring.Config()), [0], real, fake)
    assert problems == []
    return scores[0], notes[0]


def test_out_of_range_is_missing_with_an_estimator_failure_note():
    scores, notes = scored(jsd=-0.113, kl=2.0, free=-5.0)
    assert math.isnan(scores["jsd"])
    assert notes["jsd"] == "estimator failure: jsd = -0.113 outside [0, 0.693] (metric 'fixed')"
    assert scores["kl"] == 2.0 and scores["free"] == -5.0 and set(notes) == {"jsd"}  # no range: any value


@pytest.mark.parametrize("value, kept", [(-0.01, True), (LOG2 + 0.01, True), (-0.0101, False), (0.704, False),
                                         (0.3, True)])
def test_the_tolerance_widens_the_range(value, kept):
    scores, notes = scored(jsd=value)
    assert (scores["jsd"] == value) is kept and ("jsd" in notes) is not kept


def test_negative_kl_and_an_infinite_one():
    scores, notes = scored(kl=-1e-9)
    assert math.isnan(scores["kl"]) and notes["kl"].startswith("estimator failure: kl = -1e-09 outside [0, inf]")
    scores, notes = scored(kl=math.inf)  # not finite: reported as before, not as a range failure
    assert scores["kl"] == math.inf and notes["kl"] == "metric 'fixed' returned inf"


def test_output_declares_a_valid_range():
    with pytest.raises(AssertionError, match="range"):
        Output("x", "quality", range=(1.0, 0.0))
    with pytest.raises(AssertionError, match="tolerance"):
        Output("x", "quality", range=(0.0, 1.0), tolerance=-1)
    assert Output("x", "quality").out_of_range(-1e300) is None
