"""A job that raises, reported as a user reads it: one line naming the job, the component, its
plugin and distribution, and the fix; `--traceback` shows where it failed, in its worker process."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import yaml
from clirun import invoke

from benchbench.registry.components import _installed_registry

BROKEN = textwrap.dedent("""
    from benchbench import CriticConfig, Objective, hookimpl
    from benchbench_plugins.objectives.flow import FlowMatching

    class MeanOverMembers(Objective):
        name = "mean-over-members"
        Config = CriticConfig

        def critic_loss(self, critic, real, fake):
            return critic(fake).mean() - critic(real).mean()  # one number for the whole stack

        def generator_loss(self, critic, real, fake):
            return -critic(fake).flatten(1).mean(1)

    class WrongSamples(FlowMatching):
        name = "wrong-samples"

        def sample(self, nets, n):
            return self.normal(n, 3)  # 3 coordinates for 2-D data

    @hookimpl
    def benchbench_objectives():
        return [MeanOverMembers, WrongSamples]
""")


@pytest.fixture
def extras(tmp_path, monkeypatch):
    """The plugin above installed as distribution benchbench-extras 0.3 (entry point `extras`),
    for this process and the worker processes it spawns; a suite file that trains it."""
    site = tmp_path / "site"
    dist = site / "benchbench_extras-0.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: benchbench-extras\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[benchbench]\nextras = extras_module\n")
    (site / "extras_module.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.delenv("BENCHBENCH_PLUGINS", raising=False)
    _installed_registry.cache_clear()
    small = {"batch_size": 16, "hidden": [8], "critic_hidden": [8]}
    suite = {"name": "broken", "seeds": 2, "steps": 2, "eval": {"samples": 50, "curve_samples": 20, "plot_samples": 0},
             "datasets": {"ring": {}}, "objectives": {"mean-over-members": small, "nonsaturating": small},
             "metrics": [], "reporters": [], "execution": {"workers": 1}}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    yield path
    _installed_registry.cache_clear()
    sys.modules.pop("extras_module", None)


LINE = ("error: job failed: ring/mean-over-members (seeds 0, 1): objective 'mean-over-members' of plugin 'extras' "
        "(benchbench-extras 0.3): critic_loss returned shape (); expected one loss per stacked member, shape (2,): "
        "reduce each member with .flatten(1).mean(1), never a plain .mean()")


def test_a_wrong_shape_loss_is_one_line_naming_component_plugin_distribution_fix_and_the_flag(extras, capsys):
    code, _, err = invoke(["run", str(extras), "-q", "--out", str(extras.parent / "run")], capsys)
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert line == LINE + " (rerun with --traceback to see where)"
    assert "Traceback" not in err


def test_traceback_shows_where_the_job_failed_in_its_worker_process(extras, capsys):
    args = ["run", str(extras), "-q", "--out", str(extras.parent / "run"), "--workers", "2", "--traceback"]
    code, _, err = invoke(args, capsys)  # 3 jobs on 2 spawned workers
    assert code == 1
    assert [x for x in err.splitlines() if x.startswith("error:")] == [LINE]
    worker = err.split("RemoteTraceback", 1)[1]  # the worker process's own traceback
    assert "in _run_in_worker" in worker and "in training_step" in worker and "in per_member" in worker


def test_a_declaration_that_cannot_run_is_one_line_naming_key_and_distribution_before_anything_trains(extras, capsys):
    suite = yaml.safe_load(extras.read_text())
    suite["objectives"] = {"wrong-samples": {"batch_size": 8, "hidden": [8]}, "nonsaturating": suite["objectives"][
        "nonsaturating"]}
    extras.write_text(yaml.safe_dump(suite))
    code, _, err = invoke(["run", str(extras), "-q", "--out", str(extras.parent / "run")], capsys)
    assert code == 2
    assert err.splitlines() == [
        f"error: {extras}: objectives.wrong-samples: objective 'wrong-samples' of plugin 'extras' (benchbench-extras "
        f"0.3): sample(nets, 2) returned shape (1, 2, 3) (torch.float32); expected floating-point samples of shape "
        f"(1, 2, 2): [members, n, *data shape]"]
    assert not (extras.parent / "run").exists()  # nothing trained, nothing written
