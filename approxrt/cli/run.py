"""``approxrt run``: one source into an output folder, adaptive or fixed.

With ``--sla-ms`` and no ``--branch`` the scheduler picks a branch per group of
frames (`approxrt.adaptive`); with ``--branch`` one branch (or a scripted
sequence of them, ``--switch``) runs and the SLA is only recorded.
"""

from __future__ import annotations

from pathlib import Path

import click

from approxrt.cli.app import main
from approxrt.cli.common import config_from, parse_branch, parse_switches


@main.command()
@click.argument("source")
@click.option(
    "--branch",
    "branch_name",
    help="Run this one branch, e.g. yolox_nano/s416/si4/medianflow/ds1 "
    "(without it, --sla-ms runs adaptively).",
)
@click.option(
    "--profile",
    "profile_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Adaptive run: this device's profile (default: a quick calibration, "
    "cached, and the shipped accuracy profile).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder (created; must be new or empty unless --overwrite).",
)
@click.option("--models", "models_dir", help="Folder holding model files.")
@click.option(
    "--classes", help="Comma-separated COCO classes to keep, e.g. person,car."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="YAML file overriding default.yaml.",
)
@click.option("--device", help="auto | cpu | cuda | cuda:N.")
@click.option(
    "--sla-ms",
    type=float,
    help="Latency target: mean ms per frame over each group of frames. Without "
    "--branch the scheduler keeps every group inside it.",
)
@click.option("--max-frames", type=int, help="Stop after this many frames.")
@click.option(
    "--realtime",
    is_flag=True,
    help="Replay a file at its own frame rate, dropping frames that arrive while "
    "busy (as a camera would); scored by `approxrt eval` as streaming AP50.",
)
@click.option(
    "--switch",
    "switch_specs",
    multiple=True,
    metavar="FRAME=BRANCH",
    help="Switch to BRANCH from the group of frames starting at FRAME (repeatable).",
)
@click.option(
    "--save",
    "extra_outputs",
    multiple=True,
    type=click.Choice(["video", "frames"]),
    help="Also write an annotated video or PNG frames (repeatable).",
)
@click.option(
    "--random-weights",
    is_flag=True,
    help="Faster R-CNN with random weights (latency work only; marked in outputs).",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace this run's files in a non-empty --out."
)
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def run(
    source,
    branch_name,
    out_dir,
    models_dir,
    classes,
    config_path,
    device,
    sla_ms,
    max_frames,
    realtime,
    profile_dir,
    switch_specs,
    extra_outputs,
    random_weights,
    overwrite,
    no_progress,
):
    """Run one branch (or a scripted sequence of branches) over SOURCE.

    SOURCE is a video file, a MOTChallenge image folder, a camera index, an
    rtsp:// or http(s):// URL, or synthetic:objects=5,speed=1-4,...
    Writes OUT/results.txt (MOTChallenge), OUT/results.coco.json,
    OUT/events.jsonl (one event per frame), OUT/timing.csv (when each output
    was ready, for streaming AP50) and OUT/summary.json.
    """
    from approxrt.runner import run_source

    config = config_from(
        config_path,
        models_dir=models_dir,
        device=device,
        sla_ms=sla_ms,
        max_frames=max_frames,
        random_weights=random_weights or None,
        classes=classes.split(",") if classes else None,
    )
    try:
        if profile_dir is not None and branch_name is None:  # adaptive
            from approxrt.adaptive import settings_from_profile

            config = settings_from_profile(config, Path(profile_dir))
        policy, branches = _policy(
            branch_name, switch_specs, profile_dir, config, source, no_progress
        )
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise click.ClickException(str(error)) from None
    outputs = ["events", "mot", "coco", "timing", *extra_outputs]
    try:
        report = run_source(
            source,
            policy,
            branches,
            out_dir,
            config,
            outputs,
            overwrite=overwrite,
            progress=not no_progress,
            realtime=realtime,
        )
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(format_run_report(report.to_dict()))


def _policy(branch_name, switch_specs, profile_dir, config, source, no_progress):
    """The run's policy and the branches it may choose (their kernels are loaded)."""
    from approxrt.loop import BranchSchedule

    if branch_name is not None:
        if profile_dir is not None:
            raise ValueError("--profile is for adaptive runs: drop --branch")
        schedule = BranchSchedule(
            {0: parse_branch(branch_name), **parse_switches(switch_specs)}
        )
        return schedule, list(dict.fromkeys(b for _, b in schedule.switches))
    if config.sla_ms is None:
        raise ValueError("give --branch NAME (fixed) or --sla-ms MS (adaptive)")
    if switch_specs:
        raise ValueError("--switch scripts fixed branches: give --branch too")
    from approxrt.adaptive import build_policy, candidates, load_run_models

    video = Path(source) if Path(source).is_file() else None
    models, origin = load_run_models(config, profile_dir, video, not no_progress)
    branches = candidates(models, config)
    click.echo(f"adaptive: {len(branches)} branches, models from {origin}", err=True)
    return build_policy(models, branches, config), branches


def format_run_report(report: dict) -> str:
    """A short human summary of a run's `summary.json`."""
    latency = report["latency_ms"]
    lines = [
        f"{report['frames']} frames ({report['detection_frames']} detected) "
        f"from {report['source']} -> {report['out_dir']}",
        f"latency ms: mean {latency['mean']:.2f}  p50 {latency['p50']:.2f}  "
        f"p95 {latency['p95']:.2f}  p99 {latency['p99']:.2f}  "
        f"(GoF-mean p95 {report['gof_mean_latency_p95_ms']:.2f}; decode excluded)",
        f"detector {report['detector_ms_per_detection']:.2f} ms/detection, tracker "
        f"{report['tracker_ms_per_tracking_frame']:.2f} ms/tracked frame, "
        "loop overhead "
        f"{report['overhead_ms']:.3f} ms/frame",
    ]
    if report["sla_ms"] is not None:
        lines.append(
            f"SLA {report['sla_ms']} ms: {report['frame_sla_violation_rate']:.1%} "
            f"of frames and {report['gof_sla_violation_rate']:.1%} of GoFs over"
        )
    if report["weights"] != "pretrained":
        lines.append(
            f"WEIGHTS: {report['weights']} (latency only, accuracy meaningless)"
        )
    if report["realtime"]:
        lines.append(
            f"realtime replay at {report['fps']:g} fps: {report['dropped_frames']} "
            "frames dropped while busy"
        )
    if report.get("interrupted"):
        lines.append("INTERRUPTED: stopped by a signal; the frames above are kept")
    if report["bad_frames"] or report["frame_errors"]:
        lines.append(
            f"skipped: {report['bad_frames']} unreadable frames, "
            f"{report['frame_errors']} frames that failed"
        )
    return "\n".join(lines)
