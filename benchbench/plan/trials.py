"""The selection phase of a search: trials as cells and stacked jobs, the choice of each objective's
setting, and the final jobs that train the chosen settings on the suite's seeds.

A trial cell is an ordinary cell (keyed by the hash of its resolved config plus its trial index,
resumable, runnable on any engine) trained on a selection seed under the suite's budget (equal
trials at equal compute: under a FLOP budget a dearer trial takes fewer steps), scored with the selection
metric alone on held-out data; no curves, no kept samples. Trials of one (dataset, objective) that
agree on every setting except the per-member ones (:func:`benchbench.config.search.per_member_settings`)
are trained as one stack of trials x selection seeds, cut to the sizes memory allows. The chosen
trials are then trained on the suite's own seeds, as cells identical to those of a suite written
with the chosen setting; only those make records.csv and the summary.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..config import search
from ..config.suite import ComponentSpec, Suite
from ..registry.components import Registry
from .cells import Cell, Job, digest, group_size, make_cell, make_job, planned, separate, share

TRIAL_COLUMNS = ["dataset", "objective", "trial", "seed", "metric", "value", "selected", "cell"]
SPREAD_COLUMNS = ["score_mean", "score_std", "score_min", "score_max", "score_n"]  # a trial's, over its selection seeds


def trial_suite(suite: Suite, registry: Registry) -> Suite:
    """The suite as the trials run: selection seeds, the selection metric only, no curves or samples,
    the single budget of the rung they select on (a ladder's top rung unless ``select.rung`` names another)."""
    s = suite.search
    return dataclasses.replace(
        suite, seeds=s.seeds, budget=suite.budget.at(-1 if s.rung is None else s.rung),
        metrics=search.selection_metrics(suite, registry, s.metric),
        eval=dataclasses.replace(suite.eval, every=0, plot_samples=0, reference=False))


def trial_specs(suite: Suite) -> dict[str, list[ComponentSpec]]:
    """Per objective label, the objective as each of its N trials configures it (trial 0: as given)."""
    s = suite.search
    out = {}
    for spec in suite.objectives:
        draws = search.draw_trials(s.space(spec.label), s.trials, s.seed, spec.label)
        where = f"{suite.source}: objectives.{spec.label}.search"
        out[spec.label] = [dataclasses.replace(spec, config=search.apply(spec.config, values, where))
                           for values in draws]
    return out


def plan_trials(suite: Suite, registry: Registry) -> list[Job]:
    """Every trial job: per (dataset, objective), trials that differ only in per-member settings
    form one stack of trials x selection seeds (cut to the size memory and the suite allow)."""
    tsuite, specs = trial_suite(suite, registry), trial_specs(suite)
    jobs = []
    for dataset in suite.datasets:
        for objective in suite.objectives:
            stacks: dict[str, list[Cell]] = {}
            for index, spec in enumerate(specs[objective.label]):
                cells = [trial_cell(tsuite, registry, dataset, spec, index, seed) for seed in tsuite.seeds]
                stacks.setdefault(stack_key(spec), []).extend(cells)
            for cells in stacks.values():
                sized = dataclasses.replace(tsuite, seeds=tuple(range(len(cells))))
                size = group_size(sized, registry, dataset, cells[0].spec)
                for i in range(0, len(cells), size):
                    jobs.append(make_job(tsuite, dataset, cells[i].spec, cells[i:i + size]))
    return share(separate(jobs))


def trial_cell(tsuite: Suite, registry: Registry, dataset: ComponentSpec, spec: ComponentSpec, index: int,
               seed: int) -> Cell:
    cell = make_cell(tsuite, registry, dataset, spec, seed)
    config = {**cell.config, "trial": index}
    return dataclasses.replace(cell, key=digest(config), config=config, spec=spec)


def stack_key(spec: ComponentSpec) -> str:
    """What trials of one stack must share: every setting but the per-member ones."""
    shared = {k: v for k, v in spec.resolved().items() if k not in search.per_member_settings(spec.config)}
    return digest(shared)


@dataclasses.dataclass(frozen=True)
class Selection:
    """The outcome of the selection phase."""

    trials: pd.DataFrame  # trials.csv: one row per trial and selection seed
    scores: pd.DataFrame  # dataset, objective, trial, score (mean over selection seeds)
    chosen: dict[tuple[str, str], int]  # (dataset, objective) -> chosen trial
    specs: dict[str, list[ComponentSpec]]  # objective -> its trials
    better: str  # direction of the selection metric

    def describe(self, suite: Suite) -> dict[tuple[str, str], str]:
        """(dataset, objective) -> the chosen setting in words, for reports."""
        out = {}
        for (dataset, objective), index in self.chosen.items():
            values = search.trial_values(self.specs[objective][index].config, suite.search.space(objective))
            shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items()) or "default setting"
            out[dataset, objective] = f"trial {index} of {suite.search.trials}: {shown}"
        return out


def select(suite: Suite, registry: Registry, documents: Sequence[Mapping[str, Any]]) -> Selection:
    """trials.csv and the chosen trial per (dataset, objective). A trial's score is its mean over the
    selection seeds; a trial with no finite score (diverged) ranks last. A value outside the metric's
    declared range (an estimator failure; new runs record it as missing already) counts as missing. ``dataset: each`` chooses per
    dataset, a label chooses on that dataset for all, ``all`` takes the lowest mean rank over datasets
    (ranks, not values, so no dataset's scale dominates; ties go to the lower trial index)."""
    s, specs = suite.search, trial_specs(suite)
    output = registry.outputs()[s.metric]
    better = output.better
    rows = []
    for d in documents:
        index = d["config"]["trial"]
        values = search.trial_values(specs[d["objective"]][index].config, s.space(d["objective"]))
        value = d["scores"].get(s.metric, math.nan)
        value = math.nan if output.out_of_range(value) else value  # an estimator failure is no score
        rows.append({"dataset": d["dataset"], "objective": d["objective"], "trial": index,
                     **{k: _plain(v) for k, v in values.items()}, "seed": d["seed"], "metric": s.metric,
                     "value": value, "cell": d["cell"]})
    searched = list(dict.fromkeys(x.name for o in suite.objectives for x in s.space(o.label)))
    trials = pd.DataFrame(rows, columns=[*TRIAL_COLUMNS[:3], *searched, *TRIAL_COLUMNS[3:6], "cell"])
    scores = (trials.groupby(["dataset", "objective", "trial"], sort=False)["value"]
              .agg(lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan).reset_index(name="score"))
    chosen = {}
    for objective in suite.objectives:
        loss = {}
        for dataset in suite.datasets:
            found = scores[(scores["dataset"] == dataset.label) & (scores["objective"] == objective.label)]
            by_trial = dict(zip(found["trial"], found["score"]))
            values = np.array([by_trial.get(i, math.nan) for i in range(s.trials)])
            values = values if better == "lower" else -values
            loss[dataset.label] = np.where(np.isfinite(values), values, np.inf)
        for dataset in suite.datasets:
            if s.dataset == "each":
                best = int(np.argmin(loss[dataset.label]))
            elif s.dataset == "all":
                best = int(np.argmin(np.mean([stats.rankdata(v) for v in loss.values()], axis=0)))
            else:
                best = int(np.argmin(loss[s.dataset]))
            chosen[dataset.label, objective.label] = best
    trials["selected"] = [chosen.get((d, o)) == t for d, o, t in zip(trials["dataset"], trials["objective"],
                                                                     trials["trial"])]
    trials = with_spread(trials)[TRIAL_COLUMNS[:3] + searched + TRIAL_COLUMNS[3:6] + SPREAD_COLUMNS
                                 + TRIAL_COLUMNS[6:]].sort_values(["dataset", "objective", "trial", "seed"],
                                                                  kind="stable", ignore_index=True)
    return Selection(trials, scores, chosen, specs, better)


def with_spread(trials: pd.DataFrame) -> pd.DataFrame:
    """``trials`` with each trial's selection score over its selection seeds on every row of it: mean,
    standard deviation (n - 1; NaN below two), min, max and n, of the finite values (a diverged seed counts out)."""
    finite = trials["value"].where(np.isfinite(trials["value"].astype(float)))
    by_trial = finite.groupby([trials["dataset"], trials["objective"], trials["trial"]], sort=False)
    return trials.assign(**{column: by_trial.transform(how) for column, how in
                            zip(SPREAD_COLUMNS, ("mean", "std", "min", "max", "count"))})


def winners_curse(selection: Selection, summary: pd.DataFrame, metric: str) -> dict[tuple[str, str], str]:
    """(dataset, objective) -> a warning where the chosen trial's mean over the final seeds (``summary``)
    falls outside the range of its scores on the selection seeds: the choice was (partly) luck, or
    the selection seeds are too few to tell. Nothing where either score is missing."""
    trials = selection.trials[selection.trials["selected"]].drop_duplicates(["dataset", "objective"])
    final = {(d, o): m for d, o, x, m in zip(summary["dataset"], summary["objective"], summary["metric"],
                                               summary["mean"]) if x == metric}
    out = {}
    for row in trials.itertuples():
        score, low, high = final.get((row.dataset, row.objective), math.nan), row.score_min, row.score_max
        if not all(math.isfinite(v) for v in (score, low, high)) or low <= score <= high:
            continue
        worse = (score > high) if selection.better == "lower" else (score < low)
        scored = f"{low:.3g}" if f"{low:.3g}" == f"{high:.3g}" else f"{low:.3g}–{high:.3g}"
        out[row.dataset, row.objective] = (
            f"winner's curse: {row.objective} on {row.dataset}: {metric} {score:.3g} on the final seeds, "
            f"{'worse' if worse else 'better'} than {scored} on its {int(row.score_n)} selection seed"
            f"{'s' if row.score_n != 1 else ''} (trial {row.trial}); the choice may be noise: use more selection seeds")
    return out


def finish_selection(suite: Suite, registry: Registry, directory: Any, trial_jobs: Sequence[Job]) -> Selection:
    """Choose from the finished trials in ``directory`` (a :class:`benchbench.rundir.directory.RunDirectory`);
    ``trials.csv``, ``budget.csv`` and the budget plots are written with the run's other tables and
    reports (:mod:`benchbench.report.reporting`), from the same trial cells."""
    return select(suite, registry, directory.load([cell for job in trial_jobs for cell in job.written]))


def plan_final(suite: Suite, registry: Registry, selection: Selection) -> list[Job]:
    """The jobs of the suite with each objective at its chosen setting, on the suite's seeds."""
    jobs = []
    for dataset in suite.datasets:
        chosen = tuple(selection.specs[o.label][selection.chosen[dataset.label, o.label]] for o in suite.objectives)
        jobs.extend(planned(dataclasses.replace(suite, datasets=(dataset,), objectives=chosen), registry))
    return share(separate(jobs))  # rows alike across datasets too


def _plain(value: Any) -> Any:
    return " ".join(map(str, value)) if isinstance(value, tuple) else value


def _short(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(map(_short, value)) + "]"
    return f"{value:.3g}" if isinstance(value, float) else str(value)
