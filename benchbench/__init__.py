"""benchbench: benchmark the training objectives of generative models, with plugins.

The public API: the contracts plugins implement, the hook markers, config helpers, the runner.
"""

from .dataset import Dataset, Modes, Split
from .errors import BenchbenchError, ComponentError, ConfigError, PluginError
from .filenames import file_label
from .hookspecs import hookimpl
from .budget import expected_best
from .member_optim import MemberOptimizer
from .cache import atomic_write, cache_dir, load_tensors, save_tensors
from .download import DataFileError, RemoteFile, download
from .metric import Evaluation, Metric, Unavailable
from .objective import Critic, CriticConfig, Objective, ObjectiveConfig
from .outputs import Output
from .params import NoConfig, param
from .registry import Registry, default_registry, registry_with
from .reporter import Reporter, RunReport
from .runner import RunOutcome, run, run_suite
from .suite import Suite, load_suite, parse_suite
from .summary import footnote, format_interval, interval, markdown, summarize, tables
from .timing import Timing
from .verdicts import Verdicts, compare_samples, comparisons, compute_verdicts, holm, ranks, robust, verdicts_from_run

__all__ = [
    "BenchbenchError", "ComponentError", "MemberOptimizer", "expected_best", "ConfigError", "Critic", "CriticConfig", "DataFileError", "Dataset", "Evaluation", "Metric", "Modes",
    "NoConfig", "Objective", "ObjectiveConfig", "Output", "PluginError", "Registry", "Reporter", "RunOutcome",
    "RemoteFile", "RunReport", "Split", "Suite", "Timing", "Unavailable", "atomic_write", "cache_dir", "default_registry", "download", "file_label", "footnote", "format_interval", "hookimpl", "interval", "load_suite", "load_tensors",
    "markdown", "param", "parse_suite", "registry_with", "run", "run_suite", "save_tensors", "summarize", "tables",
    "Verdicts", "compare_samples", "comparisons", "compute_verdicts", "holm", "ranks", "robust", "verdicts_from_run",
]
