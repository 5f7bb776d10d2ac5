"""Every hook lives in four places: the spec, the docs, a test, and this test of the first three."""

import inspect
from pathlib import Path

from benchbench import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("benchbench_")]


def test_there_are_four_hooks_with_docstrings():
    assert sorted(HOOKS) == ["benchbench_datasets", "benchbench_metrics", "benchbench_objectives",
                             "benchbench_reporters"]
    assert all(getattr(hookspecs, name).__doc__ for name in HOOKS)


def test_every_hook_is_documented():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for name in HOOKS:
        assert f"### `{name}`" in docs, name


# Where each hook's components are tested (besides plugin loading in test_plugins.py).
HOOK_TESTS = {
    "benchbench_objectives": "test_losses.py",
    "benchbench_datasets": "test_datasets.py",
    "benchbench_metrics": "test_metrics_modes.py",
    "benchbench_reporters": "test_reporters.py",
}


def test_every_hook_has_builtins_and_tests():
    from benchbench import default_registry
    registry = default_registry()
    assert set(HOOK_TESTS) == set(HOOKS)
    for name in HOOKS:
        kind = name.removeprefix("benchbench_")[:-1]
        builtins = [e for e in registry.available(kind).values() if e.plugin.distribution == "benchbench"]
        assert builtins, f"no built-in plugin implements {name}"
        assert (ROOT / "tests" / HOOK_TESTS[name]).is_file(), HOOK_TESTS[name]
