"""Malformed suites, generated: every one is exactly one line on stderr naming the file and key,
exit code 2, no traceback, and nothing written under the results directory.

Each strategy below makes a suite that is wrong in one known way (so none of them ever trains)
and the key the error must name. The suites are run through ``benchbench.cli.main`` in-process.
"""

import contextlib
import copy
import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchbench import default_registry
from benchbench.cli import main
from benchbench.config.suite import MAX_SEEDS, MAX_STEPS, MAX_WORKERS, TOP_LEVEL, EvalSettings, ExecutionSettings
from benchbench.registry.components import COMPONENT_NAME

FEW = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FILE = "bad.yaml"

# A valid suite that would train in well under a second: every case breaks it in one way.
BASE = {
    "name": "bad",
    "seeds": 1,
    "steps": 1,
    "eval": {"samples": 10, "every": 0, "curve_samples": 10, "plot_samples": 0, "reference": False},
    "execution": {"workers": 1},
    "datasets": {"ring": {"radius": 1.0}},
    "objectives": {"minimax": {"batch_size": 2, "hidden": 2, "critic_hidden": 2, "lr": 0.001}},
    "metrics": ["modes"],
    "reporters": [],
}


@pytest.fixture(autouse=True)
def _temporary_files_removed(monkeypatch):
    """What a test here writes through tempfile lands in one short-named directory (error lines name
    the suite file's path), removed after the test."""
    directory = tempfile.mkdtemp(prefix="bb-")
    monkeypatch.setattr(tempfile, "tempdir", directory)
    yield
    shutil.rmtree(directory, ignore_errors=True)


def run_cli(content: str | bytes) -> tuple[int, str, str, Path]:
    """Write ``content`` as bad.yaml, run ``benchbench run`` on it; (exit code, stdout, stderr, results root)."""
    directory = Path(tempfile.mkdtemp(prefix="bad-input-"))
    path = directory / FILE
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    results = directory / "results"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["run", str(path), "--results", str(results), "-q"])
            code = 0
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue(), results


def assert_rejected(content: str | bytes, key: str = "") -> None:
    """Exit code 2, one line ``error: <dir>/bad.yaml: <key>...``, no traceback, no results."""
    code, stdout, stderr, results = run_cli(content)
    assert code == 2, (code, stderr)
    assert stderr.startswith("error: ") and stderr.count("\n") == 1 and stderr.endswith("\n"), stderr
    assert "Traceback" not in stderr and stdout == "", stderr
    assert f"{FILE}: {key}" in stderr, (key, stderr)
    assert not results.exists(), list(results.rglob("*"))


def suite_with(path: str, value) -> str:
    """BASE with ``value`` at the dotted ``path`` (created if missing), as YAML."""
    suite = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = suite
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return yaml.safe_dump(suite, sort_keys=False)


def test_the_base_suite_is_valid():
    """Otherwise every case below would pass for the wrong reason."""
    code, _, stderr, results = run_cli(yaml.safe_dump(BASE))
    assert code == 0, stderr


# ---- wrong types ---------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                      max_leaves=6)


def _not_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


NOT_INT = VALUES.filter(lambda v: isinstance(v, bool) or not isinstance(v, int))
NOT_FLOAT = VALUES.filter(lambda v: isinstance(v, bool) or not isinstance(v, (int, float))).filter(
    lambda v: not (isinstance(v, str) and not _not_float(v)))
NOT_BOOL = VALUES.filter(lambda v: not isinstance(v, bool))
NOT_MAPPING = VALUES.filter(lambda v: v is not None and not isinstance(v, dict))
NOT_DEVICE = VALUES.filter(lambda v: not (isinstance(v, str) and (v in ("auto", "cpu") or v.startswith("cuda"))))

WRONG_TYPES = st.one_of(
    *(st.tuples(st.just(key), NOT_INT) for key in ("steps", "eval.samples", "eval.every", "execution.workers",
                                                   "objectives.minimax.batch_size", "objectives.minimax.critic_steps")),
    *(st.tuples(st.just(key), NOT_FLOAT) for key in ("objectives.minimax.lr", "datasets.ring.radius")),
    *(st.tuples(st.just(key), NOT_BOOL) for key in ("eval.reference", "execution.stack_seeds")),
    *(st.tuples(st.just(key), NOT_MAPPING) for key in ("eval", "execution", "datasets.ring", "objectives.minimax")),
    st.tuples(st.just("device"), NOT_DEVICE),
    st.tuples(st.just("objectives.minimax.optimizer"), VALUES.filter(lambda v: v not in ("adam", "sgd", "rmsprop"))),
    st.tuples(st.just("name"), VALUES.filter(lambda v: not (isinstance(v, str) and COMPONENT_NAME.fullmatch(v)))),
)


@FEW
@given(WRONG_TYPES)
def test_wrong_types(case):
    key, value = case
    assert_rejected(suite_with(key, value), key)


# ---- unknown keys --------------------------------------------------------------------------------

KEYS = st.one_of(TEXT.filter(bool), st.integers(), st.booleans())
SECTIONS = {"": set(TOP_LEVEL), "eval": set(EvalSettings.__dataclass_fields__),
            "execution": set(ExecutionSettings.__dataclass_fields__),
            "objectives.minimax": {"type", *default_registry().get("objective", "minimax", "").cls.Config.__dataclass_fields__},
            "datasets.ring": {"type", *default_registry().get("dataset", "ring", "").cls.Config.__dataclass_fields__}}


@FEW
@given(st.sampled_from(sorted(SECTIONS)), KEYS, SCALARS)
def test_unknown_keys(section, key, value):
    if key in SECTIONS[section]:
        return
    suite = copy.deepcopy(BASE)
    node = suite
    for part in filter(None, section.split(".")):
        node = node[part]
    node[key] = value
    assert_rejected(yaml.safe_dump(suite, sort_keys=False), section)


# ---- unknown plugin names ------------------------------------------------------------------------

NAMES = st.from_regex(COMPONENT_NAME, fullmatch=True).filter(lambda n: len(n) < 40)


@FEW
@given(st.sampled_from(["dataset", "objective", "metric", "reporter"]), NAMES, st.booleans())
def test_unknown_plugin_names(kind, name, via_type):
    if name in default_registry().available(kind):
        return
    section = f"{kind}s"
    if via_type:  # label: {type: name}
        text, key = suite_with(section, {"thing": {"type": name}}), f"{section}.thing.type"
    else:
        text, key = suite_with(section, {name: {}} if kind in ("dataset", "objective") else [name]), f"{section}.{name}"
    code, _, stderr, _ = run_cli(text)
    assert f"unknown {kind} {name!r}" in stderr, stderr
    assert_rejected(text, key)


# ---- negative or absurd sizes --------------------------------------------------------------------

def outside(low: int | None, high: int | None):
    """Whole numbers below ``low`` or above ``high`` (either may be None: unbounded there)."""
    parts = []
    if low is not None:
        parts.append(st.integers(max_value=low - 1))
    if high is not None:
        parts.append(st.integers(min_value=high + 1))
    return st.one_of(*parts)


SIZES = st.one_of(
    st.tuples(st.just("steps"), outside(1, MAX_STEPS)),
    st.tuples(st.just("seeds"), outside(1, MAX_SEEDS)),
    st.tuples(st.just("seeds"), st.lists(st.integers(max_value=-1), min_size=1, max_size=3)),
    st.tuples(st.just("eval.samples"), outside(10, 10**8)),
    st.tuples(st.just("eval.curve_samples"), outside(10, 10**8)),
    st.tuples(st.just("eval.plot_samples"), outside(0, 10**8)),
    st.tuples(st.just("eval.every"), outside(0, MAX_STEPS)),
    st.tuples(st.just("execution.workers"), outside(0, MAX_WORKERS)),
    st.tuples(st.just("execution.max_members"), outside(0, 100_000)),
    st.tuples(st.just("objectives.minimax.batch_size"), st.integers(max_value=1)),
    st.tuples(st.just("objectives.minimax.hidden"), st.lists(st.integers(max_value=0), min_size=1, max_size=3)),
    st.tuples(st.just("objectives.minimax.lr"), st.floats(max_value=0) | st.just(float("inf")) | st.just(float("nan"))),
    st.tuples(st.just("datasets.ring.radius"), st.floats(max_value=0, allow_nan=False)),
)


@FEW
@given(SIZES)
def test_negative_or_absurd_sizes(case):
    key, value = case
    assert_rejected(suite_with(key, value), key)


def test_absurd_sizes_say_the_allowed_range():
    code, _, stderr, _ = run_cli(suite_with("steps", 10**12))
    assert code == 2 and f"steps: must be <= {MAX_STEPS}" in stderr, stderr
    code, _, stderr, _ = run_cli(suite_with("eval.samples", 10**9))
    assert code == 2 and "eval.samples: must be <= 100000000" in stderr, stderr


# ---- empty lists and duplicated entries ----------------------------------------------------------

@pytest.mark.parametrize("key, value", [("datasets", []), ("objectives", []), ("datasets", {}), ("objectives", {}),
                                        ("seeds", [])])
def test_empty_lists(key, value):
    assert_rejected(suite_with(key, value), key)


@FEW
@given(st.sampled_from([("metrics", "modes"), ("reporters", "tables"), ("datasets", "ring"), ("objectives", "gmmn")]),
       st.integers(min_value=0, max_value=2**40))
def test_duplicated_entries(section_name, seed):
    section, name = section_name
    assert_rejected(suite_with(section, [name, name]), section)
    assert_rejected(suite_with("seeds", [seed, seed]), "seeds")


@FEW
@given(st.data())
def test_duplicated_yaml_keys(data):
    """Any line of the suite written twice: a mapping key or a list entry given twice."""
    lines = yaml.safe_dump(BASE, sort_keys=False, default_flow_style=False).splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    text = "\n".join(lines[:i + 1] + lines[i:]) + "\n"
    code, _, stderr, _ = run_cli(text)
    assert code == 2 and ("duplicate key" in stderr or "listed twice" in stderr), (text, stderr)
    assert_rejected(text)


def test_a_duplicate_key_names_it_and_both_lines():
    code, _, stderr, _ = run_cli("steps: 1\nseeds: 1\nsteps: 2\ndatasets: {ring: {}}\nobjectives: {gmmn: {}}\n")
    assert code == 2 and f"{FILE}: line 3: invalid YAML: duplicate key 'steps' (first at line 1)" in stderr, stderr


# ---- malformed YAML text -------------------------------------------------------------------------

BREAKERS = ["\t", "{", "[", "]", "}", "'", '"', "*nowhere ", "- ", "!!python/object/apply:os.system ['true'] ", "? "]


@FEW
@given(st.data())
def test_malformed_yaml(data):
    lines = yaml.safe_dump(BASE, sort_keys=False).splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    breaker = data.draw(st.sampled_from(BREAKERS))
    assert_rejected("\n".join(lines[:i] + [breaker + lines[i]] + lines[i + 1:]) + "\n")


@FEW
@given(st.one_of(TEXT, st.binary(max_size=40), st.text(max_size=200)))
def test_any_text_or_bytes(content):
    assert_rejected(content)


def test_deeply_nested_yaml():
    assert_rejected("[" * 5000 + "]" * 5000)


# ---- inputs that would exhaust the machine: refused in well under a second -------------------------

def _alias_bomb(levels: int = 9) -> str:
    """~500 bytes standing for 9**levels values (the "billion laughs")."""
    items = ["&a0 [x, x, x, x, x, x, x, x, x]"] + [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]"
                                                  for i in range(1, levels)]
    return "datasets: {ring: {}}\nobjectives: {gmmn: {}}\nname: [" + ", ".join(items) + "]\n"


def _costly(content: str) -> tuple[float, float, str]:
    """(seconds, peak MB allocated, the error) of loading ``content`` as a suite."""
    import time
    import tracemalloc

    from benchbench import ConfigError, load_suite
    path = Path(tempfile.mkdtemp(prefix="bad-input-")) / FILE
    path.write_text(content)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as error:
        load_suite(path, default_registry())
    seconds = time.perf_counter() - start
    tracemalloc.start()  # again, for the memory (tracing makes it several times slower)
    with pytest.raises(ConfigError):
        load_suite(path, default_registry())
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, str(error.value)


HUGE = {
    "alias bomb": (_alias_bomb(), "line 3: refused: the document expands to more than 20,000 values"),
    "self-reference": ("name: &a [*a]\n", "line 1: refused: alias *a refers to a value that contains it"),
    "5 million seeds": ("seeds: [" + ", ".join(["0"] * 5_000_000) + "]\n", "larger than 128 KiB"),
    "a 15,000-entry list": ("seeds: [" + ", ".join(map(str, range(15_000))) + "]\n", "line 1: refused: a list of more than 10,000 entries"),
    "a 5000-digit seed": ("seeds: [1" + "0" * 5000 + "]\n", "invalid YAML: Exceeds the limit"),
}


@pytest.mark.parametrize("case", list(HUGE))
def test_inputs_that_would_exhaust_the_machine_are_refused_at_once(case):
    content, message = HUGE[case]
    seconds, peak, error = _costly(content)
    print(f"{case}: {seconds * 1000:.0f} ms, peak {peak:.1f} MiB allocated")  # numbers for the note
    assert message in error and len(error) < 200, error
    if case == "a 15,000-entry list":  # stops at the 10,001st entry: about what the longest valid list costs
        valid = _seconds_to_load("seeds: [" + ", ".join(map(str, range(10_000))) + "]\n")
        print(f"  (a valid list of 10,000 seeds: {valid * 1000:.0f} ms)")
        assert seconds < 5 * valid + 0.5, (seconds, valid)  # (timings on a shared machine are noisy)
    else:
        assert seconds < 0.25, seconds
    assert peak < 64, peak
    assert_rejected(content)


def _seconds_to_load(content: str) -> float:
    import time

    from benchbench.config.suite import read_suite_file
    path = Path(tempfile.mkdtemp(prefix="bad-input-")) / FILE
    path.write_text(content)
    start = time.perf_counter()
    read_suite_file(path)
    return time.perf_counter() - start


def test_a_huge_list_given_as_data_is_refused_before_its_items_are_looked_at():
    import time

    from benchbench import ConfigError, parse_suite
    for key, raw in (("seeds", {"seeds": [0] * 5_000_000}),
                     ("objectives.gmmn.hidden", {"seeds": 1, "objectives": {"gmmn": {"hidden": [8] * 5_000_000}}})):
        start = time.perf_counter()
        with pytest.raises(ConfigError, match="a list of 5,000,000 "):
            parse_suite({"datasets": {"ring": {}}, "objectives": {"gmmn": {}}, **raw}, default_registry(), FILE)
        assert time.perf_counter() - start < 0.25, key


def test_a_huge_value_is_quoted_short_without_being_expanded():
    from benchbench.api.params import show
    value = ["x"]
    for _ in range(40):  # 2**40 strings once expanded
        value = [value, value]
    assert len(show(value)) <= 60 and len(show(10**5000)) <= 60 and len(show("y" * 10**6)) <= 60


def test_a_long_suite_name_is_refused():
    assert_rejected(suite_with("name", "n" * 300), "name")


# ---- sizes that cannot fit, data that is not there: refused before training -----------------------

@pytest.mark.parametrize("key, value, message", [
    ("objectives.minimax.batch_size", 10**11, "one member training with batch_size 100,000,000,000 on ring takes"),
    ("objectives.minimax.hidden", [10**6, 10**6], "objectives.minimax: networks of 1,000,006,000,011 parameters "
                                                  "(generator 1,000,006,000,002, critic 9) take"),
    ("eval.samples", 10**8, "generating 100,000,000 samples of ring with minimax takes"),
    ("datasets.ring.modes", 10**8, "must be <= 10000"),
    ("seeds", [10**23], "must be <= 9223372036854775807"),
])
def test_sizes_that_cannot_fit_are_refused_before_training(key, value, message):
    if key == "eval.samples":  # with the default widths: 256 activations a sample
        text = suite_with("objectives.minimax", {"batch_size": 2})
        text = yaml.safe_dump({**yaml.safe_load(text), "eval": {**BASE["eval"], "samples": value}})
    else:
        text = suite_with(key, value)
    code, _, stderr, _ = run_cli(text)
    assert code == 2 and message in stderr, stderr
    assert_rejected(text, key.removesuffix(".hidden"))  # the networks as built, whatever settings sized them


def test_missing_dataset_files_are_one_line_before_training(tmp_path):
    text = suite_with("datasets", {"mnist": {"root": str(tmp_path / "empty"), "download": False}})
    code, _, stderr, _ = run_cli(text)
    assert code == 2 and "downloads are switched off" in stderr and str(tmp_path / "empty") in stderr, stderr
    assert_rejected(text, "datasets.mnist")


# ---- objectives whose declarations cannot run (issues 19, 29): one line, exit 2, before anything trains ----

def _flow_variant(name, **methods):
    from benchbench_plugins.objectives.flow import FlowMatching
    return type(name.title().replace("-", ""), (FlowMatching,), {"name": name, **methods})


def _refuses_its_data(self, config, data):
    raise ValueError("sigma must be below the data's spread")


def _inconsistent_objectives():
    from benchbench import Network, Update

    def extra_network(self, dataset):
        return (*super(type(self), self).networks(dataset), Network("critic", tuple(dataset.shape), (1,)))

    return [
        (_flow_variant("trains-missing", updates=lambda self: (Update("model", ("velocty",), self.loss),)),
         "update 'model' trains network 'velocty', which networks() does not declare (declared: velocity)"),
        (_flow_variant("untrained", networks=extra_network),
         "network 'critic' is trained by no update"),
        (_flow_variant("loss-uses-missing", loss=lambda self, nets, real: nets.score(real).flatten(1).mean(1)),
         "update 'model': its loss uses network 'score', which networks() does not declare (declared: velocity)"),
        (_flow_variant("wrong-sample", sample=lambda self, nets, n: self.normal(n, 3)),
         "sample(nets, 2) returned shape (1, 2, 3) (torch.float32); expected floating-point samples of shape (1, 2, 2)"),
        (_flow_variant("no-evaluations", nfe=lambda self: 0),
         "nfe() returned 0; expected the network evaluations per sample, a whole number >= 1"),
        (_flow_variant("unknown-lr", updates=lambda self: (Update("model", ("velocity",), self.loss,
                                                                  lr_setting="velocity_lr"),)),
         "update 'model': lr_setting 'velocity_lr' is not a positive number setting of FlowConfig"),
        (_flow_variant("networks-raise", networks=lambda self, dataset: 1 / 0),
         "ZeroDivisionError: division by zero"),
        (_flow_variant("init-refuses", __init__=_refuses_its_data),
         "ValueError: sigma must be below the data's spread"),
        (_flow_variant("wrong-nfe", nfe=lambda self: 3),  # 4 steps of Euler: 4 calls
         "nfe() returned 3, but sample(nets, 2) called its networks more than 3 times"),
        (_flow_variant("fewer-nfe", nfe=lambda self: 9),
         "nfe() returned 9, but sample(nets, 2) called its networks 4 times"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_objective_declarations_that_cannot_run_are_one_line_naming_key_and_plugin(case, monkeypatch):
    from benchbench import hookimpl, registry_with
    objective, message = _inconsistent_objectives()[case]
    plugin = type("P", (), {"benchbench_objectives": staticmethod(hookimpl(lambda: [objective]))})
    monkeypatch.setattr("benchbench.runner.default_registry", lambda: registry_with([("broken", plugin)]))
    small = {"batch_size": 2, "hidden": [2], "sampling_steps": 4}
    suite = {**copy.deepcopy(BASE), "objectives": {"flow": small, objective.name: small}}
    text = yaml.safe_dump(suite)
    code, _, stderr, _ = run_cli(text)
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"error: ") and f"{FILE}: objectives.{objective.name}: objective {objective.name!r} of " \
        f"plugin 'broken': " in stderr and message in stderr, stderr
    assert_rejected(text, f"objectives.{objective.name}")  # before anything trains: nothing written
