"""The suite's ``targets:``: parsed against the outputs the suite's metrics declare; a target on a
metric with no direction or outside its range is one line, exit code 2, nothing trained."""

import pytest
import yaml
from clirun import invoke

from benchbench import ConfigError, default_registry, parse_suite


def parse(raw):
    return parse_suite(raw, default_registry(), source="s.yaml")


def test_targets_are_parsed_and_round_trip_through_the_resolved_suite(tiny):
    tiny["targets"] = {"jsd": 0.05, "high_quality_pct": 90}
    suite = parse(tiny)
    assert suite.targets == {"jsd": 0.05, "high_quality_pct": 90.0}
    resolved = suite.resolved()
    assert resolved["targets"] == {"jsd": 0.05, "high_quality_pct": 90.0}
    assert parse(yaml.safe_load(yaml.safe_dump(resolved))).targets == suite.targets
    del tiny["targets"]
    assert parse(tiny).targets == {} and "targets" not in parse(tiny).resolved()


@pytest.mark.parametrize("targets, metrics, message", [
    ({"nfe": 4}, "all", "s.yaml: targets.nfe: nfe has no direction (better: none), so no score is a target; "
                        "outputs with a direction: "),
    ({"jsd": 0.9}, "all", "s.yaml: targets.jsd: 0.9 is outside the range of jsd, [0, 0.693]"),
    ({"high_quality_pct": 120}, "all", "s.yaml: targets.high_quality_pct: 120 is outside the range of "
                                       "high_quality_pct, [0, 100]"),
    ({"jsd": 0.05}, ["modes"], "s.yaml: targets.jsd: no metric of this suite reports it; outputs with a "
                               "direction: high_quality_pct, mode_kl, modes_captured"),
    ({"jsd": "low"}, "all", "s.yaml: targets.jsd: expected a finite number, got 'low'"),
    ({"jsd": True}, "all", "s.yaml: targets.jsd: expected a finite number, got True"),
    ([0.05], "all", "s.yaml: targets: expected a mapping of metric: target score"),
])
def test_bad_targets_name_the_key(tiny, targets, metrics, message):
    tiny.update(targets=targets, metrics=metrics)
    with pytest.raises(ConfigError) as error:
        parse(tiny)
    assert message in str(error.value), str(error.value)


def test_a_bad_target_exits_2_with_one_line_and_trains_nothing(tiny, write_suite, tmp_path, capsys):
    tiny["targets"] = {"train_steps": 100}
    code, stdout, stderr = invoke(["run", str(write_suite(tiny)), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert "tiny.yaml: targets.train_steps: train_steps has no direction" in stderr
    assert not (tmp_path / "r").exists()
