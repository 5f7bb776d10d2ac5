"""Plugin loading: entry points, and every way a plugin can be broken named, the others loading."""

import sys
import textwrap
import types

import pytest

from benchbench import ConfigError, Objective, default_registry, hookimpl, registry_with
from benchbench.registry.components import build_registry
from benchbench.registry.entry_points import load_plugins
from benchbench_plugins.objectives.gan import NonSaturating


def module(name, **attributes):
    mod = types.ModuleType(name)
    mod.__dict__.update(attributes)
    return mod


def test_builtins_register_through_entry_points():
    registry = default_registry()
    assert {"minimax", "nonsaturating", "gmmn"} <= set(registry.available("objective"))
    assert {"ring", "grid", "gaussian-1d", "mixture-1d"} <= set(registry.available("dataset"))
    gan = registry.plugins["gan"]
    assert gan.distribution == "benchbench" and gan.module == "benchbench_plugins.objectives.gan"
    assert registry.provided_by("gan")["objective"] == ["minimax", "nonsaturating"]
    assert not [f for f in registry.failures if f.plugin in ("gan", "gmmn", "mixtures")]


class Clash(NonSaturating):
    name = "nonsaturating"


def test_duplicate_name_names_both_plugins_and_is_withheld():
    registry = registry_with([("copycat", module("copycat", benchbench_objectives=hookimpl(lambda: [Clash])))])
    assert "nonsaturating" not in registry.available("objective")
    assert any("'copycat'" in str(f) and "'gan'" in str(f) for f in registry.failures)
    with pytest.raises(ConfigError, match="provided by both plugins 'copycat' and 'gan'; uninstall one"):
        registry.get("objective", "nonsaturating", "s.yaml: objectives.nonsaturating")
    assert "minimax" in registry.available("objective")  # the rest of both plugins still loads


@pytest.mark.parametrize("returned, message", [
    (lambda: Clash, "returned type, expected a list of Objective subclasses"),
    (lambda: [int], "returned <class 'int'>, expected Objective subclasses"),
    (lambda: [type("Bad", (Objective,), {"name": "Bad Name"})], "Bad.name is 'Bad Name'"),
    (lambda: 1 / 0, "benchbench_objectives raised ZeroDivisionError"),
])
def test_bad_hook_returns_name_the_plugin(returned, message):
    registry = registry_with([("broken", module("broken", benchbench_objectives=hookimpl(returned)))])
    failures = [str(f) for f in registry.failures if f.plugin == "broken"]
    assert failures and message in failures[0], failures
    assert "minimax" in registry.available("objective")


class SwissRoll(Objective):  # any component: what matters is that its plugin's other hooks still load
    name = "swiss-roll-objective"

    def generator_loss(self, critic, real, fake):
        return fake.flatten(1).mean(1)


def test_a_misspelled_hook_is_left_out_with_a_did_you_mean_and_the_plugins_other_hooks_load():
    plugin = module("extras", benchbench_metric=hookimpl(lambda: []),
                    benchbench_objectives=hookimpl(lambda: [SwissRoll]))
    registry = registry_with([("extras", plugin)])
    (failure,) = [str(f) for f in registry.failures if f.plugin == "extras"]
    assert failure.startswith("plugin 'extras': unknown hook 'benchbench_metric': did you mean 'benchbench_metrics'? "
                              "left out, the plugin's other hooks load")
    assert "extras" in registry.plugins and "swiss-roll-objective" in registry.available("objective")
    with pytest.raises(ConfigError) as error:  # a suite naming what the bad hook would have provided
        registry.get("metric", "nearest-neighbour", "s.yaml: metrics")
    assert "unknown metric 'nearest-neighbour'" in str(error.value)
    assert "(plugin problems, see `benchbench plugins`: plugin 'extras': unknown hook 'benchbench_metric': did you " \
           "mean 'benchbench_metrics'?" in str(error.value)


def test_a_hook_left_unmarked_is_named():
    registry = registry_with([("unmarked", module("unmarked", benchbench_objectives=lambda: [SwissRoll]))])
    (failure,) = [str(f) for f in registry.failures if f.plugin == "unmarked"]
    assert failure == "plugin 'unmarked': benchbench_objectives is not marked with @benchbench.hookimpl: benchbench " \
                      "never calls it"
    assert "swiss-roll-objective" not in registry.available("objective")


def broken_distribution(path, message: str) -> None:
    """An installed distribution "broken-plugin" under ``path`` whose entry point raises ImportError(message)."""
    dist = path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[benchbench]\nbroken = broken_plugin_module\n")
    (path / "broken_plugin_module.py").write_text(f"raise ImportError({message!r})\n")


def test_plugin_that_fails_to_import_is_named_and_others_load(tmp_path, monkeypatch):
    """A real third-party distribution on sys.path whose entry point cannot be imported."""
    broken_distribution(tmp_path, "needs libfoo")
    (tmp_path / "lsgan_plugin-2.0.dist-info").mkdir()
    (tmp_path / "lsgan_plugin-2.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: lsgan-plugin\nVersion: 2.0\n")
    (tmp_path / "lsgan_plugin-2.0.dist-info" / "entry_points.txt").write_text("[benchbench]\nlsgan = lsgan_plugin\n")
    (tmp_path / "lsgan_plugin.py").write_text(textwrap.dedent("""
        import torch
        from benchbench import CriticConfig, Objective, hookimpl

        class LeastSquares(Objective):
            name = "lsgan"
            Config = CriticConfig
            def critic_loss(self, critic, real, fake):
                return ((critic(real) - 1) ** 2).flatten(1).mean(1) + (critic(fake) ** 2).flatten(1).mean(1)
            def generator_loss(self, critic, real, fake):
                return ((critic(fake) - 1) ** 2).flatten(1).mean(1)

        @hookimpl
        def benchbench_objectives():
            return [LeastSquares]
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = build_registry(load_plugins())
    failure = next(str(f) for f in registry.failures if f.plugin == "broken")
    assert "failed to load broken_plugin_module: ImportError: needs libfoo" in failure
    assert registry.plugins["lsgan"].distribution == "lsgan-plugin" and registry.plugins["lsgan"].version == "2.0"
    assert {"lsgan", "minimax", "gmmn"} <= set(registry.available("objective"))
    sys.modules.pop("lsgan_plugin", None)


# ---- BENCHBENCH_PLUGINS (and `benchbench --plugins`, which sets it) ------------------------------

def test_the_restriction_variable_is_a_comma_separated_list_of_entry_point_names():
    from benchbench.registry.entry_points import enabled_plugins
    assert enabled_plugins({}) is None and enabled_plugins({"BENCHBENCH_PLUGINS": " , "}) is None
    assert enabled_plugins({"BENCHBENCH_PLUGINS": "gan, mixtures,,"}) == {"gan", "mixtures"}


def test_a_restricted_registry_skips_the_others_without_importing_them(tmp_path, monkeypatch):
    broken_distribution(tmp_path, "imported although skipped")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = build_registry(load_plugins(only={"gan", "mixtures", "not-installed"}))
    assert set(registry.plugins) == {"gan", "mixtures"}
    assert {"broken", "gmmn", "modes"} <= set(registry.skipped)
    assert registry.skipped["broken"].distribution == "broken-plugin"
    assert "broken_plugin_module" not in sys.modules
    (failure,) = [str(f) for f in registry.failures]
    assert failure.startswith("plugin 'not-installed': named in $BENCHBENCH_PLUGINS (or --plugins) but not installed; "
                              "installed: broken, ")
    with pytest.raises(ConfigError, match=r"unknown objective 'gmmn'; available: minimax, nonsaturating .*"
                                          r"\(plugins skipped by \$BENCHBENCH_PLUGINS: .*gmmn"):
        registry.get("objective", "gmmn", "s.yaml: objectives.gmmn")


def test_default_registry_honours_the_variable_and_extra_plugins_still_load(monkeypatch):
    monkeypatch.setenv("BENCHBENCH_PLUGINS", "gan,mixtures")
    assert list(default_registry().available("objective")) == ["minimax", "nonsaturating"]
    assert "gmmn" in default_registry().skipped and not default_registry().available("metric")
    extra = registry_with([("copy", module("copy", benchbench_objectives=hookimpl(lambda: [Renamed])))])
    assert list(extra.available("objective")) == ["minimax", "nonsaturating", "renamed"]
    monkeypatch.delenv("BENCHBENCH_PLUGINS")
    assert "gmmn" in default_registry().available("objective")


class Renamed(NonSaturating):
    name = "renamed"
