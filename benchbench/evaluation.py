"""Scoring a trained stacked model: metrics per member, objective diagnostics, validated.

A metric that raises or returns something undeclared is named in ``problems`` and skipped; the
other metrics still count. Returned values must be the declared output names, as plain numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor

from .dataset import Dataset
from .metric import Evaluation, Metric
from .objective import Critic, Objective
from .outputs import Output
from .timing import Timing

TRAINING_OUTPUTS = (
    Output("generator_loss", "training", "none", "mean generator loss since the previous curve point"),
    Output("critic_loss", "training", "none", "mean critic loss since the previous curve point"),
)


@dataclasses.dataclass(frozen=True)
class NamedMetric:
    label: str
    plugin: str
    metric: Metric


def score(metrics: Sequence[NamedMetric], dataset: Dataset, seeds: Sequence[int], real: Tensor, fake: Tensor,
          objective: Objective | None = None, critic: Critic | None = None, timing: Timing | None = None,
          step: int | None = None) -> tuple[list[dict[str, float]], list[str]]:
    """Scores of each member (``real``/``fake`` are ``[M, n, *shape]``) and the problems met."""
    problems: list[str] = []
    scores: list[dict[str, float]] = [{} for _ in seeds]
    for i, seed in enumerate(seeds):
        evaluation = Evaluation(real[i], fake[i], dataset, seed, timing, step)
        for named in metrics:
            try:
                if named.metric.applies(evaluation):
                    scores[i].update(_checked(named, named.metric.compute(evaluation)))
            except Exception as exc:  # noqa: BLE001 - a broken metric must not lose the others
                problems.append(f"metric {named.label!r} (plugin {named.plugin!r}) failed: "
                                f"{type(exc).__name__}: {exc}")
    if objective is not None and objective.diagnostics:
        for name, values in diagnose(objective, critic, real, fake, len(seeds)).items():
            for i, value in enumerate(values):
                scores[i][name] = value
    return scores, sorted(set(problems))


def diagnose(objective: Objective, critic: Critic | None, real: Tensor, fake: Tensor, members: int
             ) -> dict[str, list[float]]:
    declared = {o.name for o in objective.diagnostics}
    with torch.no_grad():
        found = objective.diagnose(critic, real, fake)
    if set(found) - declared:
        raise ValueError(f"objective {objective.name!r} diagnosed undeclared outputs {sorted(set(found) - declared)}")
    out = {}
    for name, value in found.items():
        value = torch.as_tensor(value)
        if value.shape != (members,):
            raise ValueError(f"objective {objective.name!r} diagnostic {name!r} has shape {tuple(value.shape)}, "
                             f"expected ({members},): one value per member")
        out[name] = [float(v) for v in value.double().cpu()]
    return out


def _checked(named: NamedMetric, values: object) -> dict[str, float]:
    declared = {o.name for o in named.metric.outputs}
    if not isinstance(values, dict):
        raise TypeError(f"compute() returned {type(values).__name__}, expected a dict of numbers")
    unknown = set(values) - declared
    if unknown:
        raise ValueError(f"returned undeclared outputs {sorted(unknown)}; declared: {sorted(declared)}")
    out = {}
    for key, value in values.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"output {key!r} is {value!r}, expected a number") from None
    return out
