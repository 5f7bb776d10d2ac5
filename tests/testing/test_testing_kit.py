"""benchbench.testing, the plugin authors' kit: every built-in passes its conformance checks,
broken components fail them with a message that says what to fix (objectives through a real
pytest run, with pytester), the benchmark fixture times benchbench's own step, and the kit is
opt-in (no pytest11 entry point)."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import types
from importlib import metadata

import pytest
import torch

from benchbench import CriticConfig, Evaluation, Metric, Objective, Output, Unavailable, default_registry, hookimpl
from benchbench import testing as kit

pytest_plugins = ["pytester"]

REGISTRY = default_registry()


def builtins(kind: str) -> list[str]:
    return [name for name, e in REGISTRY.available(kind).items() if e.plugin.distribution == "benchbench"]


def needs_download(name: str) -> bool:
    """Datasets whose files come from the network (their own tests use tiny local copies)."""
    return "download" in {f.name for f in dataclasses.fields(REGISTRY.available("dataset")[name].cls.Config)}


# ---- the built-ins pass ------------------------------------------------------------------------------

def test_checks_run_on_one_thread_and_restore_the_setting():
    threads = torch.get_num_threads()
    seen = []

    class Counting(kit.KitMixture):
        name = "counting"

        def sample(self, n, generator):
            seen.append(torch.get_num_threads())
            return super().sample(n, generator)

    try:
        torch.set_num_threads(2)
        kit.check_dataset(Counting)
        assert set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_the_builtins_are_all_covered():
    assert {"minimax", "nonsaturating", "gmmn"} <= set(builtins("objective"))
    assert {"ring", "grid", "gaussian-1d", "mixture-1d", "digits"} <= {d for d in builtins("dataset")
                                                                       if not needs_download(d)}
    assert {"modes", "mmd", "kde-divergence", "throughput", "fid"} <= set(builtins("metric"))
    assert {"markdown", "plots"} <= set(builtins("reporter"))


@pytest.mark.parametrize("name", builtins("objective"))
def test_builtin_objective_conforms(name):
    kit.check_objective(name)


def test_objectives_conform_on_another_dataset_and_with_settings():
    kit.check_objective("nonsaturating", {"critic_steps": 2, "hidden": [8], "noise": "uniform"}, dataset="ring")
    kit.check_objective("gmmn", {"loss": "mmd2", "unbiased": True}, dataset="gaussian-1d", members=2)


@pytest.mark.parametrize("name", [d for d in builtins("dataset") if not needs_download(d)])
def test_builtin_dataset_conforms(name):
    kit.check_dataset(name)


def test_the_kit_mixture_conforms_and_its_density_integrates_to_one():
    kit.check_dataset(kit.KitMixture)
    axis = torch.linspace(-2, 2, 801)
    grid = torch.cartesian_prod(axis, axis)
    mass = kit.KitMixture().log_prob(grid).exp().sum() * (axis[1] - axis[0]) ** 2
    assert abs(float(mass) - 1) < 1e-3


@pytest.fixture(scope="module")
def image_evaluations(tmp_path_factory):
    """An evaluation on small stacked digits (a train split, per-channel labels) for the metrics of
    images; their classifier is trained once (about 3 s), into a temporary cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCHBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        cls = REGISTRY.available("dataset")["stacked-digits"].cls
        data = cls(cls.Config(size=64, test_size=250))
        real = data.heldout(250, torch.Generator().manual_seed(0))
        fake = data.sample(250, torch.Generator().manual_seed(1))
        yield [Evaluation(real, fake, data, seed=0)]


@pytest.mark.parametrize("name", builtins("metric"))
def test_builtin_metric_conforms(name, request):
    metric = REGISTRY.available("metric")[name].cls
    evaluations = kit.kit_evaluations()
    if not any(metric(metric.Config()).applies(e) for e in evaluations):
        evaluations = request.getfixturevalue("image_evaluations")
    applicable = [e for e in evaluations if metric(metric.Config()).applies(e)]
    assert applicable, f"{name} applies to none of the kit's evaluations: add one here"
    for evaluation in applicable:
        results = kit.check_metric(name, evaluation=evaluation)
        assert set(results[0]) == {o.name for o in metric(metric.Config()).outputs}  # an instance: its feature set


@pytest.mark.parametrize("name", builtins("reporter"))
def test_builtin_reporter_conforms(name, tmp_path):
    paths = kit.check_reporter(name, tmp_path)
    if name == "markdown":
        assert paths == [tmp_path / "summary.md"] and "kit-a" in paths[0].read_text()


# ---- broken datasets and metrics fail, saying what to fix -------------------------------------------

class GlobalRandom(kit.KitMixture):
    name = "global-random"

    def sample(self, n, generator):
        return torch.randn(n, 2)


class Float64(kit.KitMixture):
    name = "float64"

    def sample(self, n, generator):
        return super().sample(n, generator).double()


class WrongLogProb(kit.KitMixture):
    name = "wrong-log-prob"

    def log_prob(self, x):
        return super().log_prob(x)[:, None]


class MembersDiffer(kit.KitMixture):
    name = "members-differ"

    def sample_members(self, n, generators):
        return torch.stack([self.sample(n, generators[0]) for _ in generators])


@pytest.mark.parametrize("dataset, message", [
    (GlobalRandom, "not fixed by its generator: it uses the global random state"),
    (Float64, r"returned \(\(64, 2\), torch.float64, 'cpu'\); expected float32 of shape \(64, 2\)"),
    (WrongLogProb, r"log_prob of 64 samples returned \(64, 1\); expected a float tensor of shape \(64,\)"),
    (MembersDiffer, "sample_members.* differs from sample"),
])
def test_broken_datasets_fail_with_what_to_fix(dataset, message):
    with pytest.raises(kit.ConformanceError, match=message):
        kit.check_dataset(dataset)


class Scores(Metric):
    name = "scores"
    outputs = (Output("score_a", "quality"), Output("score_b", "quality"))

    def compute(self, evaluation):
        return {"score_a": 1.0, "score_b": Unavailable("not here")}


class MissingOutput(Scores):
    name = "missing-output"

    def compute(self, evaluation):
        return {"score_a": 1.0}


class TensorOutput(Scores):
    name = "tensor-output"

    def compute(self, evaluation):
        return {"score_a": evaluation.fake.mean(), "score_b": 0.0}


class GlobalRandomMetric(Scores):
    name = "global-random-metric"

    def compute(self, evaluation):
        return {"score_a": float(torch.rand(())), "score_b": 0.0}


class NeverApplies(Scores):
    name = "never-applies"

    def applies(self, evaluation):
        return False


def test_a_good_metric_passes_and_returns_what_it_computed():
    assert kit.check_metric(Scores)[0] == {"score_a": 1.0, "score_b": Unavailable("not here")}


@pytest.mark.parametrize("metric, message", [
    (MissingOutput, r"returned \['score_a'\]; expected exactly the declared outputs \['score_a', 'score_b'\]"),
    (TensorOutput, "output 'score_a' is Tensor .*; expected a plain float"),
    (GlobalRandomMetric, "other numbers for the same evaluation: draw randomness from evaluation.generator"),
    (NeverApplies, "applies.. is false for every evaluation tried"),
    (type("BadName", (Scores,), {"name": "Bad Name"}), "BadName.name is 'Bad Name'"),
])
def test_broken_metrics_fail_with_what_to_fix(metric, message):
    with pytest.raises(kit.ConformanceError, match=message):
        kit.check_metric(metric)


def test_a_reporter_that_returns_files_it_did_not_write_fails(tmp_path):
    from benchbench import Reporter

    class Liar(Reporter):
        name = "liar"

        def report(self, run, directory):
            return [directory / "never-written.md"]

    with pytest.raises(kit.ConformanceError, match="never-written.md, which is not a file it wrote"):
        kit.check_reporter(Liar, tmp_path)



# ---- gradient penalties, randomness inside losses, a job's own code path ----------------------------

SMALL = {"batch_size": 32, "hidden": [16], "critic_hidden": [16]}


class Penalised(Objective):
    """A Wasserstein critic with a gradient penalty at random interpolates (WGAN-GP's shape);
    each broken variant below changes one thing."""

    name = "penalised"
    Config = CriticConfig
    create_graph = True

    def weights(self, real):
        return self.uniform(real.shape[1])  # [M, B], from the members' own streams

    def critic_loss(self, critic, real, fake):
        e = self.weights(real)[..., None]
        x = (e * real + (1 - e) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=self.create_graph)
        return (critic(fake) - critic(real)).flatten(1).mean(1) + 10 * ((grad.norm(dim=2) - 1) ** 2).mean(1)

    def generator_loss(self, critic, real, fake):
        return -critic(fake).flatten(1).mean(1)


class PenaltyCut(Penalised):
    name = "penalty-cut"
    create_graph = False  # the penalty's value counts, its gradient never reaches the critic


class GlobalRandom(Penalised):
    name = "global-random"

    def weights(self, real):
        return torch.rand(real.shape[:2])  # the global random state: not reproducible, depends on the stack


class Uncountable(Penalised):
    """Refuses to run under a torch dispatch mode (as code with its own dispatch handling may):
    the job's FLOP counting fails on it, which every earlier check misses."""

    name = "uncountable"

    def critic_loss(self, critic, real, fake):
        from torch.utils._python_dispatch import is_in_torch_dispatch_mode
        if is_in_torch_dispatch_mode():
            raise RuntimeError("cannot run under a dispatch mode")
        return super().critic_loss(critic, real, fake)


class DrawsInDiagnose(Penalised):
    name = "draws-in-diagnose"
    diagnostics = (Output("kit_penalty_draw", "theory"),)

    def diagnose(self, critic, real, fake):
        return {"kit_penalty_draw": self.uniform(1)[:, 0]}  # the members' own "diagnose" streams


class DrawsGloballyInDiagnose(DrawsInDiagnose):
    name = "draws-globally-in-diagnose"

    def diagnose(self, critic, real, fake):
        return {"kit_penalty_draw": torch.rand(real.shape[0])}


def test_diagnostics_may_draw_from_the_members_diagnose_streams():
    kit.check_objective(DrawsInDiagnose, SMALL)


def test_a_gradient_penalty_with_per_member_randomness_passes_through_a_jobs_own_code_path():
    kit.check_objective(Penalised, SMALL)  # its job counts FLOPs through the penalty's autograd.grad


@pytest.mark.parametrize("objective, message", [
    (PenaltyCut, "PenaltyCut ('penalty-cut'): critic_loss's gradient with respect to the critic's parameters is not "
                 "its derivative (along a random direction: autograd * finite differences *): part of the loss is cut "
                 "from the graph. A gradient penalty needs torch.autograd.grad(..., create_graph=True)*"),
    (GlobalRandom, "GlobalRandom ('global-random'): critic_loss draws from the global random state (torch.rand/randn "
                   "without generator=, random, numpy.random): runs are not reproducible and a member's result depends "
                   "on its stack; draw with self.uniform(...) / self.normal(...), the members' own streams in self.rng"),
    (Uncountable, "Uncountable ('uncountable'): the FLOPs of its training step could not be counted (FLOPs not "
                  "counted: RuntimeError: cannot run under a dispatch mode); runs will report gflop_per_s as n/a*"),
    (DrawsGloballyInDiagnose, "DrawsGloballyInDiagnose ('draws-globally-in-diagnose'): diagnose draws from the "
                              "global random state*"),
], ids=lambda x: getattr(x, "name", "message"))
def test_broken_penalties_and_randomness_fail_with_what_to_fix(objective, message):
    with pytest.raises(kit.ConformanceError) as error:
        kit.check_objective(objective, SMALL)
    assert fnmatch.fnmatchcase(str(error.value), message), str(error.value)


# ---- whole plugins ---------------------------------------------------------------------------------

def plugin_module(name, **hooks):
    module = types.ModuleType(name)
    module.__dict__.update(hooks)
    return module


def test_check_plugin_checks_an_installed_plugin_and_returns_what_it_provides(tmp_path):
    assert kit.check_plugin("gan") == {"objective": ["minimax", "nonsaturating"]}
    assert kit.check_plugin(plugin_module("penalties", benchbench_objectives=hookimpl(lambda: [Penalised]))) == {
        "objective": ["penalised"]}


@pytest.mark.parametrize("hooks, message", [
    ({"benchbench_metric": hookimpl(lambda: []), "benchbench_objectives": hookimpl(lambda: [Penalised])},
     "plugin 'extras': unknown hook 'benchbench_metric': did you mean 'benchbench_metrics'? *"),
    ({"benchbench_objectives": lambda: [Penalised]},
     "plugin 'extras': benchbench_objectives is not marked with @benchbench.hookimpl: benchbench never calls it"),
    ({"benchbench_objectives": hookimpl(lambda: Penalised)},
     "plugin 'extras': benchbench_objectives: returned type, expected a list of Objective subclasses"),
    ({}, "plugin 'extras': provides no component: implement at least one of the hooks benchbench_objectives, *"),
    ({"benchbench_objectives": hookimpl(lambda: [Penalised, PenaltyCut])},
     "PenaltyCut ('penalty-cut'): critic_loss's gradient with respect to the critic's parameters is not its derivative*"),
], ids=["misspelled", "unmarked", "bad-return", "empty", "broken-component"])
def test_check_plugin_fails_a_broken_plugin_with_what_to_fix(hooks, message):
    with pytest.raises(kit.ConformanceError) as error:
        kit.check_plugin(plugin_module("extras", **hooks))
    assert fnmatch.fnmatchcase(str(error.value), message), str(error.value)


def test_check_plugin_of_a_name_nothing_installs_lists_the_installed():
    with pytest.raises(kit.ConformanceError, match=r"no installed plugin 'extras' .*installed: ddpm, density, .*gan, "):
        kit.check_plugin("extras")

# ---- broken objectives fail in a real pytest run ----------------------------------------------------

BROKEN_OBJECTIVES = '''
import torch.nn.functional as F
import pytest
from benchbench import CriticConfig, Objective
from benchbench.testing import check_objective


class Honest(Objective):
    """The non-saturating GAN, written from the public API."""
    name = "honest"
    Config = CriticConfig

    def critic_loss(self, critic, real, fake):
        return (F.softplus(-critic(real)) + F.softplus(critic(fake))).flatten(1).mean(1)

    def generator_loss(self, critic, real, fake):
        return F.softplus(-critic(fake)).flatten(1).mean(1)


class NaNLoss(Honest):
    name = "nan-loss"

    def generator_loss(self, critic, real, fake):
        return super().generator_loss(critic, real, fake) * float("nan")


class WrongShape(Honest):
    name = "wrong-shape"

    def critic_loss(self, critic, real, fake):
        return super().critic_loss(critic, real, fake).mean()


class Detached(Honest):
    name = "detached"

    def generator_loss(self, critic, real, fake):
        return super().generator_loss(critic, real, fake.detach())


class MixesMembers(Honest):
    """Normalises the logits over the whole [M, B] batch: every member sees the others."""
    name = "mixes-members"

    def generator_loss(self, critic, real, fake):
        logits = critic(fake)
        return F.softplus(-(logits - logits.mean()) / logits.std()).flatten(1).mean(1)


class MixesMembersKnowingly(MixesMembers):
    name = "mixes-knowingly"
    stackable = False


@pytest.mark.parametrize("objective", [Honest, NaNLoss, WrongShape, Detached, MixesMembers, MixesMembersKnowingly],
                         ids=lambda cls: cls.name)
def test_conforms(objective):
    check_objective(objective)
'''


def test_broken_objectives_fail_the_checks_with_a_clear_message(pytester):
    pytester.makeconftest('pytest_plugins = ["benchbench.testing.fixtures"]\n')
    pytester.makepyfile(test_objectives=BROKEN_OBJECTIVES)
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "--benchmark-disable")
    result.assert_outcomes(passed=2, failed=4)
    result.stdout.fnmatch_lines([
        "*ConformanceError: NaNLoss ('nan-loss'): generator_loss is not finite at initialisation: [[]nan, nan, nan[]]*",
        "*ConformanceError: WrongShape ('wrong-shape'): critic_loss returned shape (); expected (3,): one loss per "
        "stacked member*",
        "*ConformanceError: Detached ('detached'): generator_loss does not depend on the generator's parameters "
        "(is `fake` detached*",
        "*ConformanceError: MixesMembers ('mixes-members'): generator_loss of member 0 has a nonzero gradient with "
        "respect to member 1's generator parameters: the loss mixes the stacked members*stackable = False",
    ], consecutive=False)
    output = result.stdout.str()
    assert "FAILED test_objectives.py::test_conforms[honest]" not in output
    assert "benchbench/testing/" not in output  # the kit's frames are hidden: the failure is the author's line


BENCHMARKED = '''
from benchbench.testing import KitMixture


def test_speed(benchmark_training_step):
    benchmark_training_step("nonsaturating", {"batch_size": 32, "hidden": [16], "critic_hidden": [16]},
                            dataset=KitMixture(), members=2, steps=3, rounds=2)
'''


def test_benchmark_training_step_times_the_trainers_step(pytester):
    pytester.makepyfile(test_speed=BENCHMARKED)
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "-p", "benchbench.testing.fixtures",
                                "--benchmark-json=bench.json")
    result.assert_outcomes(passed=1)
    (bench,) = json.loads((pytester.path / "bench.json").read_text())["benchmarks"]
    assert bench["stats"]["rounds"] == 2
    info = bench["extra_info"]
    assert info["objective"] == "nonsaturating" and info["members"] == 2 and info["steps"] == 3
    assert info["device"] == "cpu" and info["torch_threads"] >= 1
    assert math.isclose(info["member_steps_per_s"], 3 * 2 / bench["stats"]["median"])


def test_the_kit_is_opt_in(pytester):
    assert not [ep for ep in metadata.entry_points(group="pytest11") if ep.value.startswith("benchbench")]
    pytester.makepyfile(test_speed=BENCHMARKED)
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "--benchmark-disable")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'benchmark_training_step' not found*"])
