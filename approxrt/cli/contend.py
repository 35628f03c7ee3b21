"""``approxrt contend``: generate CPU, memory-bandwidth and GPU contention."""

from __future__ import annotations

import math
import signal

import click
from click.core import ParameterSource
from tqdm import tqdm

from approxrt.cli.app import main
from approxrt.cli.common import config_from
from approxrt.contention import ContentionLevels
from approxrt.profiler.contention import (
    BACKENDS,
    ContentionError,
    ContentionGenerator,
    ContentionTrace,
    load_trace,
)
from approxrt.profiler.contention.gpu import check_cuda
from approxrt.profiler.contention.processes import cores_from_last
from approxrt.profiler.contention.stressng import find_stress_ng

_LEVEL_OPTIONS = {"cpu": "--cpu", "membw_mbps": "--membw", "gpu_pct": "--gpu"}
_STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class _Stopped(Exception):
    """Ctrl-C or SIGTERM arrived: unwind so that every load process is ended."""

    def __init__(self, signum: int) -> None:
        super().__init__(_STOP_SIGNALS[signum])
        self.signum = signum


def _stop(signum, frame) -> None:
    # One signal is enough: a second one must not cut the clean-up short.
    for ignored in _STOP_SIGNALS:
        signal.signal(ignored, signal.SIG_IGN)
    raise _Stopped(signum)


def _trace_of(trace_path, levels: ContentionLevels, ctx: click.Context):
    """The trace to play: the file's, or the option levels held from time 0."""
    if trace_path is None:
        return ContentionTrace.constant(levels)
    given = [
        option
        for name, option in _LEVEL_OPTIONS.items()
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ]
    if given:
        raise click.UsageError(f"--trace sets the levels; drop {', '.join(given)}")
    try:
        return load_trace(trace_path)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--trace") from None


def _check_machine(trace: ContentionTrace, from_trace: bool, backend: str) -> None:
    """Reject levels this machine can't make, naming the option that asked."""
    if backend == "stress-ng" and find_stress_ng() is None:
        raise click.BadParameter(
            "stress-ng is not on PATH (apt-get install stress-ng)",
            param_hint="--backend",
        )
    cores = len(cores_from_last())
    for step in trace.steps:
        if step.levels.cpu > cores:
            raise click.BadParameter(
                f"{step.levels.cpu:g} cores asked at {step.at_s:g} s, but this "
                f"process may use {cores}",
                param_hint="--trace" if from_trace else "--cpu",
            )
    if any(step.levels.gpu_pct > 0 for step in trace.steps):
        try:
            check_cuda(0)
        except ContentionError as error:
            raise click.BadParameter(
                str(error), param_hint="--trace" if from_trace else "--gpu"
            ) from None


def _play(generator, trace, interval_s, until_s, progress) -> None:
    for at_s, reading in generator.play(trace, interval_s, until_s, progress):
        with tqdm.external_write_mode():  # lines above the bar; echo flushes pipes
            click.echo(f"{at_s:8.1f} s  asked {reading.asked}  reached {reading}")


@main.command()
@click.option(
    "--cpu",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="CPU cores to keep busy; a fraction is a duty cycle (1.5 = one core "
    "fully, a second one half of the time).",
)
@click.option(
    "--membw",
    "membw_mbps",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Memory bandwidth to use, MB/s (bytes read + written by streaming copies).",
)
@click.option(
    "--gpu",
    "gpu_pct",
    type=click.FloatRange(0, 100),
    default=0.0,
    show_default=True,
    help="GPU utilisation to cause on cuda:0, %.",
)
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(exists=True, dir_okay=False),
    help="CSV or YAML file of levels over time, instead of --cpu/--membw/--gpu.",
)
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after this many seconds [default: the trace's end; none without].",
)
@click.option(
    "--settle",
    "settle_s",
    type=click.FloatRange(min=0),
    help="Seconds after each change before measuring [default: profile.settle_s].",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="auto",
    show_default=True,
    help="CPU load from stress-ng or built-in workers; auto: stress-ng if on PATH.",
)
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between printed readings.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="YAML file overriding default.yaml (for profile.settle_s).",
)
@click.option("--no-progress", is_flag=True, help="Hide the trace's progress bar.")
@click.pass_context
def contend(
    ctx,
    cpu,
    membw_mbps,
    gpu_pct,
    trace_path,
    duration_s,
    settle_s,
    backend,
    interval_s,
    config_path,
    no_progress,
):
    """Generate contention; print the asked and the reached levels every interval.

    Runs until --duration, the end of --trace, Ctrl-C or SIGTERM. Every load
    process ends with this command, even when it is killed.

    A trace lists times (seconds from the start) and the levels that hold from
    then until the next row; it ends at its last row. Blank levels are 0.

    \b
      CSV:  at_s,cpu,membw_mbps,gpu_pct     YAML: - {at_s: 0, cpu: 1}
            0,1,0,0                               - {at_s: 30, cpu: 2}
            30,2,3000,0                           - {at_s: 60}
            60,,,
    """
    levels = ContentionLevels(cpu=cpu, membw_mbps=membw_mbps, gpu_pct=gpu_pct)
    trace = _trace_of(trace_path, levels, ctx)
    _check_machine(trace, trace_path is not None, backend)
    if settle_s is None:
        settle_s = config_from(config_path).profile.settle_s
    if duration_s is not None:
        until_s = duration_s
    else:
        until_s = trace.end_s if trace_path is not None else math.inf
    progress = trace_path is not None and not no_progress
    previous = {signum: signal.signal(signum, _stop) for signum in _STOP_SIGNALS}
    try:
        with ContentionGenerator(settle_s, backend) as generator:
            click.echo(
                f"approxrt contend: CPU load from {generator.backend}, settle "
                f"{settle_s:g} s; Ctrl-C stops",
                err=True,
            )
            _play(generator, trace, interval_s, until_s, progress)
    except _Stopped as stopped:
        click.echo(
            f"approxrt contend: stopped by {stopped}; every load process ended",
            err=True,
        )
        ctx.exit(128 + stopped.signum)
    except ContentionError as error:
        raise click.ClickException(str(error)) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
