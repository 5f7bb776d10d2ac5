"""A test kit for plugin authors: the conformance checks the built-ins pass, and a fixture that
benchmarks one training step. An opt-in pytest plugin, never loaded unless asked for: enable it
with ``pytest_plugins = ["benchbench.testing.fixtures"]`` in a top-level ``conftest.py``, or run
``pytest -p benchbench.testing.fixtures``.

- :func:`check_objective`, :func:`check_dataset`, :func:`check_metric`, :func:`check_reporter`:
  plain functions that raise :class:`ConformanceError` (an ``AssertionError``, so pytest shows it
  as a failed test) naming the component and what to fix. ``check_metric`` returns what the
  metric computed and ``check_reporter`` the files it wrote, for further assertions.
- :func:`check_plugin`: the whole plugin (a module or an installed entry point's name): hook
  names, what its hooks return, and every component it provides through the checks above.
- :func:`training_stepper`: one training step of an objective through benchbench's own trainer
  (:func:`benchbench.train.trainer.stepper`), for timing outside pytest.
- the fixture ``benchmark_training_step``: that step under pytest-benchmark's ``benchmark``.

The checks run on :class:`KitMixture` (four 2-D Gaussians with a known density and modes) unless
given another dataset, on the CPU, with a few stacked members.
"""

from .datasets import check_dataset
from .kit import ConformanceError, KitMixture
from .metrics import check_metric, kit_evaluations
from .objectives import check_objective
from .plugins import check_plugin
from .reporters import check_reporter, kit_run_report
from .stepper import training_stepper

__all__ = ["ConformanceError", "KitMixture", "check_dataset", "check_metric", "check_objective", "check_plugin",
           "check_reporter", "kit_evaluations", "kit_run_report", "training_stepper"]
