"""benchbench: benchmark the training objectives of generative models, with plugins.

The public API: the contracts plugins implement, the hook markers, config helpers, the runner.
"""

from .api.cache import atomic_write, cache_dir, load_tensors, save_tensors
from .api.dataset import Dataset, Modes, Split
from .api.download import DataFileError, RemoteFile, download
from .api.errors import BenchbenchError, ComponentError, ConfigError, PluginError
from .api.filenames import file_label
from .api.hookspecs import hookimpl
from .api.metric import Evaluation, Metric, Unavailable
from .api.objective import Critic, CriticConfig, Nets, Network, Objective, ObjectiveConfig, Update
from .api.outputs import Output
from .api.params import NoConfig, param, sampling_settings
from .api.reporter import Reporter, RunReport
from .config.suite import Suite, load_suite, parse_suite
from .registry.components import Registry, default_registry, registry_with
from .runner import RunOutcome, run, run_suite
from .stats.budget import expected_best
from .stats.summary import (
    footnote,
    format_interval,
    interval,
    markdown,
    summarize,
    tables,
)
from .stats.verdicts import (
    Verdicts,
    compare_samples,
    comparisons,
    compute_verdicts,
    holm,
    ranks,
    robust,
    verdicts_from_run,
)
from .train.member_optim import MemberOptimizer
from .train.timing import Timing

__all__ = [
    "BenchbenchError", "ComponentError", "MemberOptimizer", "expected_best", "ConfigError", "Critic", "CriticConfig", "DataFileError", "Dataset", "Evaluation", "Metric", "Modes",
    "Nets", "Network", "NoConfig", "Objective", "ObjectiveConfig", "Output", "PluginError", "Registry", "Reporter", "RunOutcome",
    "RemoteFile", "RunReport", "Split", "Suite", "Timing", "Unavailable", "atomic_write", "cache_dir", "default_registry", "download", "file_label", "footnote", "format_interval", "hookimpl", "interval", "load_suite", "load_tensors",
    "markdown", "param", "sampling_settings", "Update", "parse_suite", "registry_with", "run", "run_suite", "save_tensors", "summarize", "tables",
    "Verdicts", "compare_samples", "comparisons", "compute_verdicts", "holm", "ranks", "robust", "verdicts_from_run",
]
