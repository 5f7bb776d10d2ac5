import pytest
import yaml

from benchbench import ConfigError, default_registry, load_suite, parse_suite


def parse(raw):
    return parse_suite(raw, default_registry(), source="s.yaml")


def test_defaults_are_filled_and_resolved_suite_round_trips(tiny):
    suite = parse(tiny)
    assert suite.seeds == (0, 1) and suite.device == "cpu"
    assert [o.label for o in suite.objectives] == ["minimax", "nonsaturating", "gmmn"]
    assert suite.objectives[0].config.critic_steps == 1
    resolved = suite.resolved()
    assert resolved["datasets"]["ring"] == {"type": "ring", "modes": 8, "radius": 1.0, "std": 0.01}
    again = parse(yaml.safe_load(yaml.safe_dump(resolved)))
    assert again.resolved() == resolved


def test_labels_with_type_allow_variants(tiny):
    tiny["objectives"] = {"ns-k5": {"type": "nonsaturating", "critic_steps": 5}}
    suite = parse(tiny)
    assert suite.objectives[0].type == "nonsaturating" and suite.objectives[0].config.critic_steps == 5


def test_overrides(tiny):
    suite = parse(tiny).with_overrides(seeds=4, steps=7)
    assert suite.seeds == (0, 1, 2, 3) and suite.steps == 7
    with pytest.raises(ConfigError, match="--steps: must be >= 1"):
        parse(tiny).with_overrides(steps=0)


@pytest.mark.parametrize("change, message", [
    ({"stepz": 3}, "s.yaml: stepz: unknown key; allowed: name, description, seeds"),
    ({"steps": "many"}, "s.yaml: steps: expected a whole number, got 'many'"),
    ({"steps": 0}, "s.yaml: steps: must be >= 1, got 0"),
    ({"seeds": 0}, "s.yaml: seeds: must be >= 1"),
    ({"seeds": [1, 1]}, "s.yaml: seeds: expected a number of seeds or a list of 1 to 10000 distinct seeds, got [1, 1]"),
    ({"device": "tpu"}, "s.yaml: device: got 'tpu'; allowed: auto, cpu, cuda, cuda:N"),
    ({"objectives": {"minimaxx": {}}}, "s.yaml: objectives.minimaxx: unknown objective 'minimaxx'; available: "
                                       "flow, gmmn, minimax, nonsaturating"),
    ({"objectives": {"minimax": {"lr": -1}}}, "s.yaml: objectives.minimax.lr: must be > 0, got -1.0"),
    ({"objectives": {"gmmn": {"critic_steps": 2}}}, "s.yaml: objectives.gmmn.critic_steps: unknown setting"),
    ({"objectives": {}}, "s.yaml: objectives: expected a mapping of label: settings"),
    ({"datasets": {"ring": {"std": 0}}}, "s.yaml: datasets.ring.std: must be > 0, got 0.0"),
    ({"datasets": {"gaussian-1d": {"means": [0, 1], "stds": [1, 1, 1]}}},
     "s.yaml: datasets.gaussian-1d.stds: give one std or one per mean (2), got 3"),
    ({"metrics": ["nope"]}, "s.yaml: metrics.nope: unknown metric 'nope'; available:"),
    ({"eval": {"samples": 5}}, "s.yaml: eval.samples: must be >= 10, got 5"),
    ({"execution": {"workers": -1}}, "s.yaml: execution.workers: must be >= 0, got -1"),
])
def test_bad_input_is_one_line_naming_file_and_key(tiny, change, message):
    tiny.update(change)
    with pytest.raises(ConfigError) as info:
        parse(tiny)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_missing_section_and_unreadable_files(tmp_path, tiny):
    del tiny["datasets"]
    with pytest.raises(ConfigError, match="s.yaml: missing key 'datasets'"):
        parse(tiny)
    with pytest.raises(ConfigError, match="no such suite file"):
        load_suite(tmp_path / "absent.yaml", default_registry())
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+: invalid YAML"):
        load_suite(bad, default_registry())
