"""The ``benchbench`` command. Every user error is one line on stderr and exit code 2."""

from __future__ import annotations

import os
import signal
import sys
import warnings

import click

from .api import params
from .api.errors import BenchbenchError
from .engines.failures import TRACEBACK_HINT
from .plan.ladder import RetrainWarning
from .registry.components import default_registry
from .registry.entry_points import RESTRICT_VARIABLE
from .report import compare_page, phases
from .report.compare import compare_runs, parse_threshold
from .report.reporting import rebuild
from .runner import DEFAULT_RESULTS, run
from .stats.summary import footnote, markdown, tables
from .train.eval_cost import SlowEvaluationWarning


def _restrict_plugins(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``--plugins a,b`` sets $BENCHBENCH_PLUGINS, so worker processes load the same plugins."""
    if value is not None:
        os.environ[RESTRICT_VARIABLE] = value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="benchbench")
@click.option("--plugins", metavar="NAMES", expose_value=False, is_eager=True, callback=_restrict_plugins,
              help=f"Load only these plugins (comma-separated entry-point names, as `benchbench plugins` "
                   f"lists them); sets ${RESTRICT_VARIABLE}.")
def cli() -> None:
    """Benchmark the training objectives of generative models."""


@cli.command("run")
@click.argument("suite", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Run directory (default: results/<suite>/<time>). "
              "Cells already in it are not run again.")
@click.option("--resume", is_flag=True, help="Continue the suite's latest run under --results: run only the "
              "cells it lacks, then report on all of them.")
@click.option("--seeds", type=int, help="Number of seeds (seeds 0..N-1), overriding the suite.")
@click.option("--steps", type=int, help="Training steps, overriding the suite.")
@click.option("--device", help="auto, cpu, cuda or cuda:N, overriding the suite.")
@click.option("--workers", type=int, help="Worker processes (0: automatic), overriding the suite.")
@click.option("--results", "results_root", type=click.Path(file_okay=False), default=str(DEFAULT_RESULTS),
              show_default=True, help="Root of the run directories.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no tables; print the run directory.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine; ray: one Ray task per job (pip install 'benchbench[ray]').")
@click.option("--address", help="With --engine ray: the Ray cluster to use (default: $RAY_ADDRESS, else a new "
              "local one).")
@click.option("--gpus-per-task", type=float, help="With --engine ray on CUDA: the share of a GPU each task "
              "asks for (default 0.25: four small jobs per GPU).")
@click.option("--traceback", "show_traceback", is_flag=True, help="Print the traceback of every job that failed "
              "(from its worker process), after its one-line error.")
def run_command(suite, out, resume, seeds, steps, device, workers, results_root, quiet, engine, address,
                gpus_per_task, show_traceback) -> None:
    """Train every objective on every dataset of SUITE for every seed, and report."""
    phases.note_start_up()  # the seconds this process took to start count in phases.csv
    bar = None

    def on_start(total: int, jobs: int) -> None:
        nonlocal bar
        if not quiet and total:
            bar = click.progressbar(length=total, label=f"training {jobs} jobs", file=sys.stderr,
                                    show_eta=True, show_percent=True)
            bar.__enter__()

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", SlowEvaluationWarning)  # one line, before training
            warnings.simplefilter("always", RetrainWarning)
            warnings.showwarning = lambda message, *_: click.echo(f"warning: {message}", err=True)
            outcome = run(suite, out=out, resume=resume, seeds=seeds, steps=steps, device=device, workers=workers,
                          results_root=results_root, on_start=on_start, progress=lambda n: bar and bar.update(n),
                          engine=engine, address=address, gpus_per_task=gpus_per_task)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if not quiet:
        for dataset, group, table in tables(outcome.summary, outcome.report.outputs):
            if group != "training":
                click.echo(f"\n{dataset} - {group} (mean ± 95% CI over seeds)\n{markdown(table)}")
                shown = outcome.summary[(outcome.summary["dataset"] == dataset)
                                        & outcome.summary["metric"].isin(list(table.columns))]
                if footnote(shown, outcome.report.outputs):
                    click.echo(footnote(shown, outcome.report.outputs))
        if outcome.skipped_cells:
            click.echo(f"\n{outcome.skipped_cells} cells were already in {outcome.directory} and not run again")
        click.echo(f"\n{phases.line(outcome.report.phases)}")  # where the time went
    for problem in [*outcome.problems, *outcome.report.selection_warnings.values()]:  # + a winner's curse
        click.echo(f"warning: {problem}", err=True)
    for failure, trace in zip(outcome.failed_jobs, outcome.tracebacks):
        click.echo(f"error: job failed: {failure}" + (f"\n{trace}" if show_traceback else f" ({TRACEBACK_HINT})"),
                   err=True)
    click.echo(f"\nresults: {outcome.directory}" if not quiet else str(outcome.directory))
    if outcome.failed_jobs:
        sys.exit(1)


@cli.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--reporters", metavar="NAMES", help="Reporters to run: comma-separated names, or all "
              "(default: the suite's own).")
def report_command(run_dir, reporters) -> None:
    """Write every report of the finished run RUN_DIR again from its cell files, without training
    (exit code 1 when a reporter fails, naming it; the other reports are written)."""
    names = None if reporters is None else "all" if reporters == "all" else [n for n in reporters.split(",") if n]
    report, failed = rebuild(run_dir, default_registry(), names)
    for problem in report.problems:
        click.echo(f"warning: {problem}", err=True)
    for failure in failed:  # the other reports are written; this one is not
        click.echo(f"error: {failure}", err=True)
    click.echo(f"reports: {report.directory}")
    if failed:
        sys.exit(1)


@cli.command("compare")
@click.argument("base", type=click.Path(file_okay=False))
@click.argument("new", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Where to write compare.csv and compare.html "
              "(default: NEW).")
@click.option("--fail-on", type=click.Choice(["regression", "never"]), default="never", show_default=True,
              help="regression: exit 1 when a metric got significantly worse or a throughput fell by more "
                   "than --threshold.")
@click.option("--threshold", default="10%", show_default=True, help="Throughput change that counts as a "
              "regression.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Significance level of the quality tests (after Holm).")
def compare_command(base, new, out, fail_on, threshold, alpha) -> None:
    """Compare run NEW of a suite against run BASE of the same suite: quality per metric over
    seeds, throughput per job; writes compare.csv and compare.html."""
    comparison = compare_runs(base, new, default_registry(), parse_threshold(threshold), alpha)
    click.echo(compare_page.text(comparison))
    written = compare_page.write(comparison, out or new)
    click.echo(f"\nwritten: {', '.join(map(str, written))}")
    if fail_on == "regression" and len(comparison.regressions):
        click.echo(f"error: {len(comparison.regressions)} regression(s) against {base}", err=True)
        sys.exit(1)


@cli.command("plugins")
@click.option("--params", "show_params", is_flag=True, help="Also list every setting with its default.")
def plugins_command(show_params: bool) -> None:
    """List installed plugins, their distribution and version, and what they provide; then the
    plugins skipped by --plugins / $BENCHBENCH_PLUGINS, and those that failed to load, and why."""
    registry = default_registry()
    describe = lambda info: (f"{info.distribution} {info.version}" if info.distribution  # noqa: E731
                             else "not installed") + f"; {info.module}"
    for name, info in sorted(registry.plugins.items()):
        click.echo(f"{name}  ({describe(info)})")
        provided = registry.provided_by(name)
        if not any(provided.values()):
            click.echo("  (provides nothing usable: see failed below)")
        for kind, names in provided.items():
            for component in names:
                click.echo(f"  {kind}: {component}")
                if show_params:
                    for row in params.describe(registry.entries[kind][component].cls.Config):
                        click.echo(f"      {row['name']} = {row['default']!r}  ({row['type']}) {row['doc']}")
    for name, info in sorted(registry.skipped.items()):
        click.echo(f"skipped: {name}  ({describe(info)}): not in ${RESTRICT_VARIABLE}")
    for failure in registry.failures:
        click.echo(f"failed: {failure}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: turn user errors (ours and click's) into one line and exit code 2."""
    signal.signal(signal.SIGTERM, _interrupt)  # a scheduler's SIGTERM stops a run like Ctrl-C
    try:
        cli.main(args=argv, prog_name="benchbench", standalone_mode=False)
    except BenchbenchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()} (see benchbench --help)", err=True)
        sys.exit(2)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted: every finished cell is saved; `benchbench run SUITE --resume` (or --out DIR) "
                   "runs only the missing ones", err=True)
        sys.exit(130)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
