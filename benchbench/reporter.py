"""The contract of a reporter: it turns a finished run into files. Plugins subclass :class:`Reporter`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from torch import Tensor

from .dataset import Dataset
from .outputs import Output
from .params import NoConfig


@dataclasses.dataclass
class RunReport:
    """Everything a reporter may use. Tables are long-format pandas frames:

    - ``records``: cell, job, dataset, objective, seed, metric, value (final evaluation)
    - ``curves``: cell, dataset, objective, seed, step, metric, value (during training)
    - ``summary``: dataset, objective, metric, mean, std, ci95_low, ci95_high, n
    """

    suite: str
    directory: Path
    records: pd.DataFrame
    curves: pd.DataFrame
    summary: pd.DataFrame
    outputs: dict[str, Output]  # metric name -> declaration
    datasets: dict[str, Dataset]  # dataset label -> dataset (densities for plots)
    samples: dict[tuple[str, str, int], Tensor]  # (dataset, objective, seed) -> samples [n, *shape], CPU
    chosen: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    """(dataset, objective) -> the setting a search chose, in words (empty without a search)"""


class Reporter:
    """Writes files from a :class:`RunReport` into ``directory``; returns the paths written."""

    name: ClassVar[str]
    Config: ClassVar[type] = NoConfig

    def __init__(self, config: Any):
        self.config = config

    def report(self, run: RunReport, directory: Path) -> list[Path]:
        raise NotImplementedError
