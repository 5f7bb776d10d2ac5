"""A recipe or checkpoint setting out of range is one line naming the file, the key and the allowed values,
exit code 2, before anything trains (the helpers of test_bad_input)."""

import copy

import pytest
import yaml
from test_bad_input import BASE, assert_rejected, run_cli, suite_with

OBJECTIVE = "objectives.minimax"


@pytest.mark.parametrize(("key", "value", "allowed"), [
    (f"{OBJECTIVE}.ema", 1.0, "< 1"),
    (f"{OBJECTIVE}.ema", -0.1, ">= 0"),
    (f"{OBJECTIVE}.lr_schedule", "exponential", "constant, linear, cosine"),
    (f"{OBJECTIVE}.grad_clip", 0, "> 0"),
    (f"{OBJECTIVE}.grad_clip", -1.0, "> 0"),
    (f"{OBJECTIVE}.lr_floor", 1.5, "<= 1"),
    (f"{OBJECTIVE}.warmup", 1, "0 to 0"),  # BASE trains 1 step
    ("execution.checkpoint_every", 0, "a positive number of steps"),
    ("execution.checkpoint_every", "-5min", "a positive number of steps"),
    ("execution.checkpoint_every", "soon", "or never"),
])
def test_a_bad_recipe_or_checkpoint_setting_is_one_line_naming_it(key, value, allowed):
    code, _, stderr, _ = run_cli(suite_with(key, value))
    assert allowed in stderr, stderr
    assert_rejected(suite_with(key, value), key)


def test_a_decay_under_a_seconds_budget_is_refused():
    suite = copy.deepcopy(BASE)
    del suite["steps"]
    suite["budget"] = {"seconds": 5}
    suite["objectives"]["minimax"]["lr_schedule"] = "cosine"
    assert_rejected(yaml.safe_dump(suite), f"{OBJECTIVE}.lr_schedule")


def test_a_raw_row_label_taken_by_another_objective_is_refused():
    suite = copy.deepcopy(BASE)
    suite["objectives"]["minimax"]["ema"] = 0.9
    suite["objectives"]["minimax.raw"] = {"type": "minimax", "batch_size": 2, "hidden": 2, "critic_hidden": 2}
    assert_rejected(yaml.safe_dump(suite), "objectives.minimax.raw")


def test_a_warmup_longer_than_a_flop_budget_is_refused():
    suite = copy.deepcopy(BASE)
    del suite["steps"]
    suite["budget"] = {"flops": 1e6}  # a few steps of the tiny networks
    suite["objectives"]["minimax"]["warmup"] = 10_000
    code, _, stderr, _ = run_cli(yaml.safe_dump(suite))
    assert "the budget pays for" in stderr, stderr
    assert_rejected(yaml.safe_dump(suite), f"{OBJECTIVE}.warmup")
