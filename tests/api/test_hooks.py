"""Every hook lives in four places: the spec, the docs, a test, and this test of the first three.
The contracts plugins implement, and the test kit, are documented member by member."""

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import benchbench
from benchbench import testing
from benchbench.api import hookspecs

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "writing-plugins.md"
HOOKS = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("benchbench_")]


def section(heading: str) -> str:
    """The text of the guide under ``### `heading` `` up to the next heading of any level."""
    text = GUIDE.read_text()
    marker = f"### `{heading}`\n"
    assert marker in text, f"docs/writing-plugins.md has no heading {marker.strip()}"
    return re.split(r"\n#{2,3} ", text.split(marker, 1)[1], maxsplit=1)[0]


def test_there_are_four_hooks_with_docstrings():
    assert sorted(HOOKS) == ["benchbench_datasets", "benchbench_metrics", "benchbench_objectives",
                             "benchbench_reporters"]
    assert all(getattr(hookspecs, name).__doc__ for name in HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_documented_with_its_signature(name):
    text = section(name)
    parameters = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert f"def {name}({parameters}) -> list[type[" in text, name


# Where each hook's components are tested (besides plugin loading in test_plugins.py and the
# conformance checks of every built-in in test_testing_kit.py).
HOOK_TESTS = {
    "benchbench_objectives": "plugins/test_losses.py",
    "benchbench_datasets": "plugins/test_datasets.py",
    "benchbench_metrics": "plugins/test_metrics_modes.py",
    "benchbench_reporters": "report/test_reporters.py",
}


def test_every_hook_has_builtins_and_tests():
    from benchbench import default_registry
    registry = default_registry()
    assert set(HOOK_TESTS) == set(HOOKS)
    kit_tests = (ROOT / "tests" / "testing" / "test_testing_kit.py").read_text()
    for name in HOOKS:
        kind = name.removeprefix("benchbench_")[:-1]
        builtins = [e for e in registry.available(kind).values() if e.plugin.distribution == "benchbench"]
        assert builtins, f"no built-in plugin implements {name}"
        assert (ROOT / "tests" / HOOK_TESTS[name]).is_file(), HOOK_TESTS[name]
        assert f"def test_builtin_{kind}_conforms(" in kit_tests, kind


def members(cls: type) -> list[str]:
    """Public attributes a plugin author uses: class attributes, annotations, dataclass fields."""
    names = [n for n in (*vars(cls), *getattr(cls, "__annotations__", {})) if not n.startswith("_")]
    if dataclasses.is_dataclass(cls):
        names += [f.name for f in dataclasses.fields(cls)]
    return sorted(set(names))


CONTRACTS = {  # heading -> the classes documented under it
    "Objective": [benchbench.Objective, benchbench.ObjectiveConfig, benchbench.GeneratorConfig,
                  benchbench.CriticConfig],
    "Dataset": [benchbench.Dataset, benchbench.Modes, benchbench.Split],
    "Metric": [benchbench.Metric, benchbench.Evaluation, benchbench.Timing],
    "Reporter": [benchbench.Reporter, benchbench.RunReport],
    "Output": [benchbench.Output],
    "Unavailable": [benchbench.Unavailable],
}


@pytest.mark.parametrize("heading", CONTRACTS)
def test_every_contract_is_documented_member_by_member(heading):
    text = section(heading)
    for cls in CONTRACTS[heading]:
        missing = [n for n in members(cls) if not re.search(rf"`[^`]*\b{n}\b[^`]*`", text)]
        assert not missing, f"### `{heading}` does not mention {cls.__name__}.{', '.join(missing)}"


def test_param_is_documented_with_its_signature():
    parameters = inspect.signature(benchbench.param).parameters
    text = section("param")
    assert all(re.search(rf"\b{p}\b", text) for p in parameters), list(parameters)


def test_every_name_of_the_test_kit_is_documented():
    text = GUIDE.read_text().split("## The test kit", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in testing.__all__ if f"`{name}" not in text]
    assert not missing, missing
    for name in ("check_objective", "check_dataset", "check_metric", "check_reporter", "check_plugin",
                 "training_stepper"):
        parameters = ", ".join(str(p).split(":")[0] if p.default is inspect.Parameter.empty
                               else f"{p.name}={p.default!r}"
                               for p in inspect.signature(getattr(testing, name)).parameters.values())
        assert f"`{name}({parameters})`".replace("'", '"') in " ".join(text.split()), (name, parameters)


@pytest.mark.parametrize("topic", [
    "To give an inherited setting another default, declare the field again",  # e.g. critic_steps: 5
    "{type: lsgan,",  # variants of an objective
    "call `super().__init__(config)`",  # datasets
    "def has_log_prob(self) -> bool:",  # a density for some settings only
    "One bad hook is left out alone; the plugin's other hooks load.",
    "#### Randomness and `autograd.grad` inside losses",
    "create_graph=True",
    "--traceback",
])
def test_the_guide_answers_what_plugin_authors_asked(topic):
    assert topic in GUIDE.read_text(), topic
