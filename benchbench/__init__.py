"""benchbench: benchmark the training objectives of generative models, with plugins.

The public API, by layer (see docs/architecture.md): what plugins implement and use (``api``), the
plugin registry, suites, running one, and the statistics and reports of a finished run. Everything
else is importable from its subpackage (``benchbench.stats.verdicts``, ``benchbench.train.trainer``...).
"""

from .api.cache import atomic_write, cache_dir, exclusive, load_tensors, save_tensors
from .api.datafiles import dataset_places, locate
from .api.dataset import Dataset, Modes, Split
from .api.download import DataFileError, RemoteFile, download
from .api.errors import BenchbenchError, ComponentError, ConfigError, PluginError
from .api.filenames import file_label
from .api.hookspecs import hookimpl
from .api.metric import Evaluation, Metric, Timing, Unavailable
from .api.objective import (Critic, CriticConfig, FreeParameter, GeneratorConfig, Nets, Network, Objective,
                            ObjectiveConfig, Update)
from .api.outputs import Output, job_scoped
from .api.params import NoConfig, param, sampling_settings
from .api.reporter import REFERENCE, Reporter, RunReport
from .config.compute import describe_budget
from .config.suite import Suite, load_suite, parse_suite
from .registry.components import Registry, default_registry, registry_with
from .report.reporting import verdicts_from_run
from .runner import run, run_suite
from .stats.summary import compute_verdicts, footnote, interval, markdown, summarize, tables
from .stats.verdicts import Verdicts, comparisons, ranks

__all__ = [
    "REFERENCE", "BenchbenchError", "ComponentError", "ConfigError", "Critic", "CriticConfig", "DataFileError",
    "Dataset", "Evaluation", "FreeParameter", "GeneratorConfig", "Metric", "Modes", "Nets", "Network", "NoConfig",
    "Objective", "ObjectiveConfig", "Output",
    "PluginError", "Registry", "RemoteFile", "Reporter", "RunReport", "Split", "Suite", "Timing",
    "Unavailable", "Update", "Verdicts", "atomic_write", "cache_dir", "comparisons", "compute_verdicts",
    "dataset_places", "default_registry", "describe_budget", "download", "exclusive", "file_label", "footnote",
    "hookimpl", "interval", "job_scoped", "load_suite", "load_tensors", "locate", "markdown", "param", "parse_suite", "ranks", "registry_with", "run",
    "run_suite", "sampling_settings", "save_tensors", "summarize", "tables", "verdicts_from_run",
]
