"""Suite files: YAML in, a validated :class:`Suite` out, or one :class:`ConfigError` naming file and key.

Everything is checked before any training starts: unknown keys, wrong types, impossible values,
and names of datasets, objectives, metrics and reporters that no installed plugin provides. A key
given twice in one YAML mapping, or a name listed twice, is an error (PyYAML would keep the last).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import yaml

from ..api import params
from ..api.errors import ConfigError
from ..api.params import key_text, param, show
from ..registry.components import Registry, valid_name
from . import search
from .checkpoints import parse_interval
from .compute import MAX_STEPS, PROGRESS_UNITS, Budget, parse_budget
from .eval_defaults import with_eval_defaults
from .recipes import with_raw_rows
from .targets import parse_targets, suite_outputs
from .yaml_limits import MAX_BYTES, BoundedComposer, DocumentTooLarge

TOP_LEVEL = ("name", "description", "seeds", "steps", "budget", "device", "eval", "execution",
             "datasets", "objectives", "metrics", "reporters", "search", "targets")
# Sizes beyond these are typos, not experiments: rejected with the allowed range before anything runs.
MAX_SEEDS = 10_000  # seeds of one suite
MAX_SEED = 2**63 - 1  # a seed is stored as a 64-bit integer
MAX_SAMPLES = 10**8  # samples per evaluation
MAX_WORKERS = 1024  # worker processes
MAX_NAME = 100  # characters of a suite's name (it names the run directories)


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    samples: int = param(2500, "held-out generated (and real) samples per cell for the final metrics", ge=10,
                         le=MAX_SAMPLES)
    every: int = param(0, "evaluate metric curves every N training steps; with a FLOP or seconds budget, at every "
                          "1/N of it (0: only before and after)", ge=0, le=MAX_STEPS)
    curve_samples: int = param(500, "samples per curve point (smaller than `samples`: curves show trends)", ge=10,
                               le=MAX_SAMPLES)
    plot_samples: int = param(1000, "generated samples kept per cell for the sample plots", ge=0, le=MAX_SAMPLES)
    reference: bool = param(True, "also score fresh data samples as a `(data)` row: what a perfect generator gets")
    features: Literal["classifier", "inception"] = param(
        "classifier", "features of the image metrics that leave it to the suite (`features: eval`): classifier "
                      "(the dataset's own, offline) or inception (torch-fidelity's Inception-v3, "
                      "benchbench[inception])")
    inception_weights: str = param("", "Inception-v3 weight file ('': $BENCHBENCH_INCEPTION_WEIGHTS, else "
                                       "torch-fidelity's cache)")
    inception_sha256: str = param("", "SHA-256 the Inception weight file must have ('': torch-fidelity's "
                                      "published file)")


@dataclasses.dataclass(frozen=True)
class ExecutionSettings:
    workers: int = param(0, "worker processes; 0: one per CPU core on the CPU, 1 on CUDA", ge=0, le=MAX_WORKERS)
    stack_seeds: bool = param(True, "train the seeds of a (dataset, objective) pair as one stacked model")
    max_members: int = param(0, "most seeds per stacked model; 0: as many as fit in half the free device memory",
                             ge=0, le=100_000)
    precision: Literal["fp32", "bf16"] = param("fp32", "bf16: bfloat16 autocast of the networks' forward passes")
    compile: bool = param(False, "torch.compile the networks (CUDA graphs on CUDA); ignored on the CPU")
    job_timeout: float = param(0.0, "seconds a job may run (training and scoring) before it fails alone, its worker "
                                    "ended; 0: no limit", ge=0, le=10**7)
    checkpoint_every: int | str = param("10min", "write each job's training state this often, so that --resume "
                                                 "continues it: steps (500) or wall time (90s, 10min, 2h); never")
    keep_weights: bool = param(False, "keep each job's last checkpoint (final weights, EMA, optimizer state) in "
                                      "checkpoints/ once its cells are written")

    def __post_init__(self):
        parse_interval(self.checkpoint_every)  # ValueError("checkpoint_every: ...") when it is not an interval


@dataclasses.dataclass(frozen=True)
class ComponentSpec:
    """A dataset, objective, metric or reporter as the suite configures it."""

    kind: str
    label: str  # key in the suite; names the rows of the tables
    type: str  # the plugin component's ``name``
    config: Any  # instance of the component's Config dataclass

    def resolved(self) -> dict[str, Any]:
        return {"type": self.type, **params.as_dict(self.config)}


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    description: str
    seeds: tuple[int, ...]
    budget: Budget  # training per model: steps, FLOPs or seconds (benchbench.config.compute)
    device: str  # resolved: "cpu", "cuda" or "cuda:N"
    eval: EvalSettings
    execution: ExecutionSettings
    datasets: tuple[ComponentSpec, ...]
    objectives: tuple[ComponentSpec, ...]
    metrics: tuple[ComponentSpec, ...]
    reporters: tuple[ComponentSpec, ...]
    source: str = "<suite>"
    search: search.SearchSettings | None = None  # equal-budget hyperparameter search (benchbench.config.search)
    targets: dict[str, float] = dataclasses.field(default_factory=dict)  # metric -> score (config.targets)

    @property
    def steps(self) -> int:
        """Training steps per model of a step budget. With a FLOP or seconds budget the steps are known
        only when each job starts: then PROGRESS_UNITS, the units in which jobs report progress per model."""
        return self.budget.steps or PROGRESS_UNITS

    def resolved(self) -> dict[str, Any]:
        """The suite with every default filled in (saved beside the results): itself a valid suite,
        which ``benchbench report`` reads back (a search's spaces stay in each objective's block).
        A step budget is written as the top-level ``steps`` (as before budgets had units)."""
        spaces = self.search.resolved_spaces() if self.search else {}
        single_steps = self.budget.steps and not self.budget.rungs
        budget = {"steps": self.budget.steps} if single_steps else {"budget": self.budget.resolved()}
        return {
            "name": self.name, "description": self.description, "seeds": list(self.seeds),
            **budget, "device": self.device,
            "eval": params.as_dict(self.eval), "execution": params.as_dict(self.execution),
            **{section: {s.label: {**s.resolved(), **({"search": spaces[s.label]} if spaces.get(s.label) else {})}
                         for s in getattr(self, section)}
               for section in ("datasets", "objectives", "metrics", "reporters")},
            **({"search": self.search.resolved()} if self.search else {}),
            **({"targets": dict(self.targets)} if self.targets else {}),
        }

    def with_overrides(self, seeds: int | None = None, steps: int | None = None,
                       device: str | None = None, workers: int | None = None) -> Suite:
        """Apply command-line overrides (``--seeds N`` means seeds 0..N-1; ``--steps N`` a budget of N steps,
        whatever the suite's budget)."""
        changes: dict[str, Any] = {}
        if seeds is not None:
            changes["seeds"] = _seeds(seeds, "--seeds")
            if self.search:
                search.check_disjoint(self.search.seeds, changes["seeds"], "--seeds")
        if steps is not None:
            changes["budget"] = Budget("steps", params.check(steps, int, {"ge": 1, "le": MAX_STEPS}, "--steps"))
        if device is not None:
            changes["device"] = resolve_device(device, "--device")
        if workers is not None:
            changes["execution"] = dataclasses.replace(
                self.execution, workers=params.check(workers, int, {"ge": 0, "le": MAX_WORKERS}, "--workers"))
        return dataclasses.replace(self, **changes)


def load_suite(path: str | Path, registry: Registry) -> Suite:
    path = Path(path)
    return parse_suite(read_suite_file(path), registry, source=str(path), default_name=path.stem)


def read_suite_file(path: Path) -> Any:
    """The YAML of a suite file as plain data (:class:`SuiteLoader`), or a :class:`ConfigError`
    naming the file (and line) when it cannot be read or parsed."""
    where = str(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise ConfigError(where, f"larger than {MAX_BYTES >> 10} KiB: a suite is a small YAML text file")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(where, "no such suite file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(where, f"not UTF-8 text (byte {exc.start}): a suite is a YAML text file") from None
    except OSError as exc:
        raise ConfigError(where, f"cannot read: {exc.strerror}") from None
    try:
        raw = yaml.load(text, Loader=SuiteLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}" if mark else "YAML"
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        kind = "refused" if isinstance(exc, DocumentTooLarge) else "invalid YAML"
        raise ConfigError(f"{where}: {at}", f"{kind}: {problem}") from None
    except RecursionError:
        raise ConfigError(where, "invalid YAML: nested too deeply") from None
    except ValueError as exc:  # e.g. a number of more than 4300 digits
        raise ConfigError(where, f"invalid YAML: {' '.join(str(exc).split())[:120]}") from None
    return raw


class SuiteLoader(BoundedComposer, yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error, and a document
    that expands to too many values is refused before it is built (:mod:`benchbench.config.yaml_limits`)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:  # before merges ("<<") are flattened in: overriding those is fine
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    if key in first_line:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {show(key)} (first at line {first_line[key] + 1})",
                            key_node.start_mark)
                    first_line[key] = key_node.start_mark.line
                except TypeError:  # unhashable: the safe loader names it below
                    continue
        return super().construct_mapping(node, deep=deep)


def parse_suite(raw: Any, registry: Registry, source: str = "<suite>", default_name: str = "suite") -> Suite:
    if not isinstance(raw, Mapping):
        raise ConfigError(source, "a suite must be a mapping with keys " + ", ".join(TOP_LEVEL))
    for key in raw:
        if key not in TOP_LEVEL:
            raise ConfigError(f"{source}: {key_text(key)}", f"unknown key; allowed: {', '.join(TOP_LEVEL)}")
    at = lambda key: f"{source}: {key}"  # noqa: E731

    name = params.check(raw.get("name", default_name), str, {}, at("name"))
    if not valid_name(name) or len(name) > MAX_NAME:
        raise ConfigError(at("name"), f"{show(name)} must be at most {MAX_NAME} lower-case letters, digits, "
                                      f"'-', '_' or '.'")
    for section in ("datasets", "objectives"):
        if section not in raw:
            raise ConfigError(source, f"missing key {section!r}: name at least one")
    objectives, searches = search.split_objective_searches(raw["objectives"])
    eval_settings = params.build(EvalSettings, raw.get("eval"), at("eval"))
    suite = Suite(
        name=name,
        description=params.check(raw.get("description", ""), str, {}, at("description")),
        seeds=_seeds(raw.get("seeds", 3), at("seeds")),
        budget=parse_budget(raw, source),
        device=resolve_device(raw.get("device", "auto"), at("device")),
        eval=eval_settings,
        execution=params.build(ExecutionSettings, raw.get("execution"), at("execution")),
        datasets=_components(raw["datasets"], "dataset", registry, at("datasets"), required=True),
        objectives=with_raw_rows(_components(objectives, "objective", registry, at("objectives"), required=True),
                                 None if "search" in raw else objectives, at("objectives")),
        metrics=with_eval_defaults(_components(raw.get("metrics", "all"), "metric", registry, at("metrics")),
                                   eval_settings),
        reporters=_components(raw.get("reporters", "all"), "reporter", registry, at("reporters")),
        source=source,
    )
    _check_architectures(suite, registry)
    outputs = suite_outputs(suite.metrics, suite.objectives, registry)
    targets = parse_targets(raw.get("targets"), outputs, at("targets"))
    return dataclasses.replace(suite, targets=targets,
                               search=search.parse_search(raw.get("search"), searches, suite, registry))


def _check_architectures(suite: Suite, registry: Registry) -> None:
    """Convolutional networks need square images: say so before anything trains."""
    for objective in suite.objectives:
        if vars(objective.config).get("architecture", "mlp") != "dcgan":  # a setting some objectives have
            continue
        for dataset in suite.datasets:
            shape = tuple(registry.build(dataset).shape)
            if len(shape) != 3 or shape[1] != shape[2]:
                raise ConfigError(f"{suite.source}: objectives.{objective.label}.architecture",
                                  f"dcgan needs square images (C, H, H), but dataset {dataset.label!r} has shape "
                                  f"{shape}; use architecture: mlp")


def resolve_device(value: Any, where: str) -> str:
    value = params.check(value, str, {}, where)
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value == "cpu":
        return value
    if value == "cuda" or (value.startswith("cuda:") and value[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(where, f"{value!r} asked for, but torch sees no CUDA device; use auto or cpu")
        if ":" in value and int(value[5:]) >= torch.cuda.device_count():
            raise ConfigError(where, f"{value!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return value
    raise ConfigError(where, f"got {show(value)}; allowed: auto, cpu, cuda, cuda:N")


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_SEEDS:
            raise ConfigError(where, f"must be >= 1 and <= {MAX_SEEDS} (a number of seeds) or a list of seeds, "
                                     f"got {show(value)}")
        return tuple(range(value))
    if isinstance(value, (list, tuple)) and len(value) > MAX_SEEDS:  # before looking at each
        raise ConfigError(where, f"a list of {len(value):,} seeds; at most {MAX_SEEDS}")
    seeds = params.check(value, tuple[int, ...], {"ge": 0, "le": MAX_SEED}, where)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(where, f"expected a number of seeds or a list of 1 to {MAX_SEEDS} distinct seeds, "
                                 f"got {show(value)}")
    return seeds


def _components(value: Any, kind: str, registry: Registry, where: str, required: bool = False
                ) -> tuple[ComponentSpec, ...]:
    """``all``, a list of names, or a mapping label -> settings (with optional ``type``)."""
    if value == "all" and not required:
        value = {name: None for name in registry.available(kind)}
    elif isinstance(value, list) and all(isinstance(i, str) for i in value):
        twice = next((item for item, n in collections.Counter(value).items() if n > 1), None)
        if twice is not None:
            raise ConfigError(where, f"{show(twice)} is listed twice")
        value = dict.fromkeys(value)
    if not isinstance(value, Mapping) or (required and not value):
        allowed = "a mapping of label: settings" + ("" if required else ", a list of names, or all")
        raise ConfigError(where, f"expected {allowed}; available {kind}s: "
                                 f"{', '.join(registry.available(kind)) or 'none'}")
    specs = []
    for label, settings in value.items():
        at = f"{where}.{key_text(label)}"
        if not valid_name(label):
            raise ConfigError(at, "labels must be lower-case letters, digits, '-', '_' or '.'")
        settings = {} if settings is None else settings
        if not isinstance(settings, Mapping):
            raise ConfigError(at, f"expected a mapping of settings, got {show(settings)}")
        settings = dict(settings)
        type_name = params.check(settings.pop("type", label), str, {}, f"{at}.type")
        entry = registry.get(kind, type_name, f"{at}.type" if type_name != label else at)
        specs.append(ComponentSpec(kind, label, type_name, params.build(entry.cls.Config, settings, at)))
    return tuple(specs)
