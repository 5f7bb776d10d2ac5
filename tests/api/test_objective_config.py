"""The settings of objectives by family (benchbench.api.objective_config): what every objective has,
a generator's, a critic's; the built-ins declare only settings they use; a plugin written before
GeneratorConfig keeps working and warns; randomness reaches losses through one context manager."""

from __future__ import annotations

import dataclasses
import pickle
import sys
import types
import warnings

import pytest
import torch

from benchbench import CriticConfig, GeneratorConfig, Nets, Objective, ObjectiveConfig, default_registry, param
from benchbench.api import params
from benchbench.train.stack import Prior

REGISTRY = default_registry()
GENERATOR = {"noise_dim", "noise", "architecture", "hidden", "channels"}


def config_of(name: str) -> type:
    return REGISTRY.get("objective", name, name).cls.Config


def test_every_objective_has_the_base_settings_and_only_generators_have_noise():
    base = {f.name for f in dataclasses.fields(ObjectiveConfig)}
    assert not base & (GENERATOR | {"critic_steps"})
    for name in ("minimax", "nonsaturating", "gmmn", "flow", "ddpm", "vae"):
        fields = {f.name for f in dataclasses.fields(config_of(name))}
        assert base <= fields, name
        has_noise = {"noise", "noise_dim"} <= fields
        assert has_noise == (name in ("minimax", "nonsaturating", "gmmn")), name


def test_no_builtin_setting_is_documented_as_unused_and_base_docs_name_no_gan():
    for name in ("minimax", "gmmn", "flow", "ddpm", "vae"):
        for row in params.describe(config_of(name)):
            assert "unused" not in row["doc"] and "not used" not in row["doc"], (name, row)
    docs = {row["name"]: row["doc"] for row in params.describe(ObjectiveConfig)}
    assert "generator" not in docs["lr"] and "Algorithm 1" in docs["batch_size"] and "per update" in docs["batch_size"]


def test_betas_per_family_keep_every_builtin_value():
    assert ObjectiveConfig().betas == (0.9, 0.999) and GeneratorConfig().betas == (0.5, 0.999)
    assert CriticConfig().betas == (0.5, 0.999)
    for name, betas in {"minimax": (0.5, 0.999), "gmmn": (0.5, 0.999), "flow": (0.9, 0.999),
                        "ddpm": (0.9, 0.999), "vae": (0.9, 0.999)}.items():
        assert config_of(name)().betas == betas, name


def test_a_suite_giving_flow_a_generator_setting_is_refused_naming_the_key():
    with pytest.raises(Exception, match=r"objectives\.flow\.noise_dim: unknown setting"):
        params.build(config_of("flow"), {"noise_dim": 4}, "<suite>: objectives.flow")


def define_old_plugin(module_name: str):
    """A plugin written before GeneratorConfig: a GAN-shaped objective without a critic whose config
    derives from ObjectiveConfig, defined in a module of its own (so its config pickles by name)."""
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module
    source = '''
import dataclasses
from benchbench import Objective, ObjectiveConfig, param

@dataclasses.dataclass(frozen=True)
class OldConfig(ObjectiveConfig):
    weight: float = param(1.0, "a weight")
    lr: float = param(2e-3, "generator learning rate", gt=0)

class Old(Objective):
    name = "old"
    Config = OldConfig

    def generator_loss(self, critic, real, fake):
        return self.config.weight * (real.mean(1) - fake.mean(1)).pow(2).sum(-1)
'''
    exec(compile(source, module_name, "exec"), module.__dict__)
    return module


def test_an_old_plugin_config_warns_and_gets_the_generator_settings_with_the_old_defaults():
    with pytest.warns(FutureWarning, match=r"derive OldConfig from benchbench\.GeneratorConfig"):
        module = define_old_plugin("old_plugin_for_test")
    try:
        config = module.Old.Config
        assert config.__name__ == "OldConfig" and issubclass(config, module.OldConfig)
        assert issubclass(config, GeneratorConfig)
        built = params.build(config, {"hidden": [16], "noise_dim": 3, "weight": 2.0}, "<suite>: objectives.old")
        assert (built.hidden, built.noise_dim, built.noise, built.weight) == ((16,), 3, "normal", 2.0)
        assert built.betas == (0.5, 0.999) and built.lr == 2e-3  # the old defaults; its own redeclaration kept
        assert pickle.loads(pickle.dumps(built)) == built  # workers receive configs pickled
    finally:
        del sys.modules["old_plugin_for_test"]


def test_a_new_form_config_defines_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")

        @dataclasses.dataclass(frozen=True)
        class NewConfig(GeneratorConfig):
            weight: float = param(1.0, "a weight")

        class New(Objective):
            name = "new"
            Config = NewConfig

    assert New.Config is NewConfig


def test_reading_a_generator_setting_a_config_lacks_warns_and_gives_the_old_default():
    config = config_of("flow")()
    with pytest.warns(FutureWarning, match="FlowConfig has no setting 'noise_dim'"):
        assert config.noise_dim == 2
    with pytest.raises(AttributeError, match="no setting 'critic_steps'"):
        config.critic_steps  # noqa: B018
    assert getattr(config, "critic_steps", 0) == 0


def test_the_prior_refuses_a_config_without_noise_settings():
    prior = Prior([torch.Generator().manual_seed(0)], config_of("flow")())
    with pytest.raises(TypeError, match="nets.prior.*GeneratorConfig.*self.normal"):
        Nets({}, prior).prior(4)
    noise = Prior([torch.Generator().manual_seed(0)], GeneratorConfig(noise_dim=3))(5)
    assert noise.shape == (1, 5, 3)


def test_random_streams_sets_the_members_streams_for_the_block_and_restores_them():
    objective = REGISTRY.get("objective", "flow", "flow").cls(config_of("flow")(), torch.zeros(4, 2))
    with pytest.raises(RuntimeError, match="random_streams"):
        objective.uniform(3)
    streams = [torch.Generator().manual_seed(s) for s in (0, 1)]
    with objective.random_streams(streams) as same:
        assert same is objective
        drawn = objective.uniform(3)
        inner = [torch.Generator().manual_seed(7)]
        with objective.random_streams(inner):
            assert objective.normal(2).shape == (1, 2)
        assert list(objective.rng) == streams  # the outer block's again
    assert objective.rng == ()
    expected = torch.stack([torch.rand(3, generator=torch.Generator().manual_seed(s)) for s in (0, 1)])
    assert torch.equal(drawn, expected)
    with pytest.raises(ValueError), objective.random_streams(streams):
        raise ValueError
    assert objective.rng == ()  # restored when the block raises
