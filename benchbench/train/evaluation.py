"""Scoring a trained stacked model: metrics per member, objective diagnostics, validated.

A metric that raises or returns something undeclared is named in ``problems`` and skipped; the
other metrics still count. Returned values must be the declared output names, as plain numbers.
A value outside its output's declared range (beyond the tolerance) is an estimator failure: it
is recorded as missing (NaN) with a note saying so, like an unavailable output, so tables show the
note and neither verdicts nor the search use it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..api.dataset import Dataset
from ..api.metric import Evaluation, Metric, Timing, Unavailable
from ..api.objective import Nets, Objective
from ..api.outputs import Output
from .phases import part

TRAINING_OUTPUTS = (  # the curve `<name>_loss` of each update (benchbench.Update), for the built-ins' update names
    Output("generator_loss", "training", "none", "mean loss of an update named 'generator' (GANs, GMMN) since the "
                                                "previous curve point"),
    Output("critic_loss", "training", "none", "mean loss of an update named 'critic' (GANs) since the previous "
                                             "curve point"),
    Output("model_loss", "training", "none", "mean loss of an update named 'model' (flow matching, diffusion, VAE) "
                                            "since the previous curve point"),
    Output("diverged", "stability", "lower", "seeds whose losses became NaN or infinite, or whose samples became "
                                            "non-finite or left 1000x the data's scale (their metrics are missing); tables "
                                            "show the count", summary="sum"),
    Output("eval_time_s", "throughput", "lower", "wall time of every evaluation of the job (curves and final "
                                                 "metrics) / members (s per trained model)", "job"),
)


@dataclasses.dataclass(frozen=True)
class NamedMetric:
    label: str
    plugin: str
    metric: Metric


def score(metrics: Sequence[NamedMetric], dataset: Dataset, seeds: Sequence[int], real: Tensor, fake: Tensor,
          objective: Objective | None = None, nets: Nets | None = None, timing: Timing | None = None,
          step: int | None = None, skip: set[int] = frozenset(), rng: Sequence[torch.Generator] = ()
          ) -> tuple[list[dict[str, float]], list[dict[str, str]], list[str]]:
    """Scores of each member (``real``/``fake`` are ``[M, n, *shape]``), the reasons of outputs a
    metric declared :class:`Unavailable` (their score is NaN), and the problems met. Members in
    ``skip`` (diverged) get no metrics. The objective's diagnostics of ``nets`` draw from ``rng``
    (the members' "diagnose" streams)."""
    problems: list[str] = []
    scores: list[dict[str, float]] = [{} for _ in seeds]
    notes: list[dict[str, str]] = [{} for _ in seeds]
    for i, seed in enumerate(seeds):
        if i in skip:
            continue
        evaluation = Evaluation(real[i], fake[i], dataset, seed, timing, step)
        for named in metrics:
            try:
                if named.metric.applies(evaluation):
                    with part(f"metric {named.label}"):
                        values = named.metric.compute(evaluation)
                    values, why = _checked(named, values)
                    scores[i].update(values)
                    notes[i].update(why)
            except Exception as exc:  # noqa: BLE001 - a broken metric must not lose the others
                problems.append(f"metric {named.label!r} (plugin {named.plugin!r}) failed: "
                                f"{type(exc).__name__}: {exc}")
    if objective is not None and objective.diagnostics:
        declared = {o.name: o for o in objective.diagnostics}
        with part("diagnostics"):
            diagnosed = diagnose(objective, nets, real, fake, len(seeds), rng)
        for name, values in diagnosed.items():
            for i, value in enumerate(values):
                if i not in skip:
                    scores[i][name] = value
                    failure = declared[name].out_of_range(value)
                    if failure:
                        scores[i][name], notes[i][name] = math.nan, f"{failure} (objective {objective.name!r})"
    return scores, notes, sorted(set(problems))


def diagnose(objective: Objective, nets: Nets, real: Tensor, fake: Tensor, members: int,
             rng: Sequence[torch.Generator] = ()) -> dict[str, list[float]]:
    """``objective.diagnose_networks`` under ``no_grad`` drawing from ``rng``, validated."""
    declared = {o.name for o in objective.diagnostics}
    with objective.random_streams(rng), torch.no_grad():
        found = objective.diagnose_networks(nets, real, fake)
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


def _checked(named: NamedMetric, values: object) -> tuple[dict[str, float], dict[str, str]]:
    outputs = {o.name: o for o in named.metric.outputs}
    declared = set(outputs)
    if not isinstance(values, dict):
        raise TypeError(f"compute() returned {type(values).__name__}, expected a dict of numbers")
    unknown = set(values) - declared
    if unknown:
        raise ValueError(f"returned undeclared outputs {sorted(unknown)}; declared: {sorted(declared)}")
    out, notes = {}, {}
    for key, value in values.items():
        if isinstance(value, Unavailable):
            out[key], notes[key] = float("nan"), value.reason
            continue
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"output {key!r} is {value!r}, expected a number or Unavailable(reason)") from None
        if not math.isfinite(out[key]):  # kept as a note on the cell, never a silently missing row
            notes[key] = f"metric {named.label!r} returned {out[key]}"
        elif failure := outputs[key].out_of_range(out[key]):  # not a score: missing, with the reason
            out[key], notes[key] = math.nan, f"{failure} (metric {named.label!r})"
    return out, notes
