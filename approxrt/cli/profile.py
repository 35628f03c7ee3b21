"""``approxrt profile``: measure, fit, inspect and query a device's profile."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import click

from approxrt.cli.app import main
from approxrt.cli.common import command_line, config_from, parse_branch

_OUT = click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Profile directory (created when new; later steps add to it).",
)
_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="YAML overriding default.yaml: the branch space and `profile:` settings.",
)
_MODELS = click.option("--models", "models_dir", help="Folder holding model files.")
_PROGRESS = click.option("--no-progress", is_flag=True, help="Hide progress bars.")
_NO_CONTENTION = click.option(
    "--no-contention", is_flag=True, help="Measure latency on the idle device only."
)
_MAX_FRAMES = click.option(
    "--max-frames",
    type=click.IntRange(min=1),
    help="Profile accuracy on the first N frames of each video only.",
)
_PROFILE_DIR = click.argument(
    "profile_dir", type=click.Path(exists=True, file_okay=False, path_type=Path)
)


def _fail(error: Exception) -> click.ClickException:
    return click.ClickException(str(error))


@main.group()
def profile():
    """Offline profiling: latency under contention, accuracy per content, models."""


@profile.command(name="run")
@click.argument("videos", nargs=-1, required=True)
@click.option(
    "--gt",
    "truths",
    multiple=True,
    help="Ground truth of each VIDEO in order (MOT gt.txt, sequence folder or "
    "COCO json); a video's own gt/gt.txt is found without it; '-' = none.",
)
@_OUT
@_CONFIG
@_MODELS
@click.option(
    "--synthetic/--no-synthetic",
    default=True,
    show_default=True,
    help="Also profile accuracy on the built-in synthetic scenes (varied content).",
)
@click.option(
    "--ray", "ray_address", help="Run the accuracy replay on this Ray cluster."
)
@_NO_CONTENTION
@_MAX_FRAMES
@_PROGRESS
def profile_run(
    videos,
    truths,
    out_dir,
    config_path,
    models_dir,
    synthetic,
    ray_address,
    no_contention,
    max_frames,
    no_progress,
):
    """Latency, accuracy and fit in one go over the config's branch space.

    VIDEOS: video files or 'synthetic:key=value,...' scenes, each optionally
    named as NAME=VIDEO (its name in the profile's tables)."""
    from approxrt.profiler import steps

    config = config_from(config_path, models_dir=models_dir)
    specs = _video_specs(videos, truths, synthetic, max_frames, config)
    try:
        store, config = steps.create_or_open(out_dir, config)
        store.update_meta(command=command_line(click.get_current_context()))
        steps.latency_step(
            store,
            config,
            _first_file(specs),
            contention=not no_contention,
            progress=not no_progress,
        )
        steps.accuracy_step(store, config, specs, ray_address, not no_progress)
        steps.fit_step(store, config)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise _fail(error) from None
    click.echo(_describe(out_dir))


@profile.command(name="latency")
@click.option(
    "--video",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A real clip for detector frames and branch checks (else synthetic only).",
)
@_OUT
@_CONFIG
@_MODELS
@_NO_CONTENTION
@_PROGRESS
def profile_latency(
    video, out_dir, config_path, models_dir, no_contention, no_progress
):
    """Time every detector kernel, tracker, association, switch and the loop."""
    from approxrt.profiler import steps

    config = config_from(config_path, models_dir=models_dir)
    try:
        store, config = steps.create_or_open(out_dir, config)
        rows = steps.latency_step(
            store, config, video, contention=not no_contention, progress=not no_progress
        )
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise _fail(error) from None
    click.echo(f"latency tables in {out_dir}: {rows}")


@profile.command(name="accuracy")
@click.argument("videos", nargs=-1, required=True)
@click.option("--gt", "truths", multiple=True, help="As for `profile run`.")
@_OUT
@_CONFIG
@_MODELS
@click.option("--synthetic/--no-synthetic", default=False, show_default=True)
@click.option("--ray", "ray_address", help="Run the replay on this Ray cluster.")
@_MAX_FRAMES
@_PROGRESS
def profile_accuracy(
    videos,
    truths,
    out_dir,
    config_path,
    models_dir,
    synthetic,
    ray_address,
    max_frames,
    no_progress,
):
    """Cache each kernel's detections, replay every branch, score each segment.

    VIDEOS: as for `profile run` ([NAME=]file or [NAME=]synthetic:...)."""
    from approxrt.profiler import steps

    config = config_from(config_path, models_dir=models_dir)
    specs = _video_specs(videos, truths, synthetic, max_frames, config)
    try:
        store, config = steps.create_or_open(out_dir, config)
        rows = steps.accuracy_step(store, config, specs, ray_address, not no_progress)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise _fail(error) from None
    click.echo(f"accuracy tables in {out_dir}: {rows}")


@profile.command(name="fit")
@_PROFILE_DIR
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
def profile_fit(profile_dir, no_plots):
    """Fit the latency and accuracy models; write them with their held-out error."""
    from approxrt.profiler import steps
    from approxrt.profiler.store import open_profile, profile_config

    try:
        store = open_profile(profile_dir)
        steps.fit_step(store, profile_config(store), plots=not no_plots)
    except (ValueError, FileNotFoundError) as error:
        raise _fail(error) from None
    click.echo(_describe(profile_dir))


@profile.command(name="show")
@_PROFILE_DIR
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the benchmark page here, with the plots copied beside it.",
)
def profile_show(profile_dir, markdown_path):
    """Summarise a profile: device, steps, held-out errors, best branches, plots."""
    click.echo(_describe(profile_dir))
    if markdown_path:
        _write_markdown(profile_dir, markdown_path)


@profile.command(name="predict")
@_PROFILE_DIR
@click.option("--branch", "branch_name", required=True, help="Branch to predict.")
@click.option(
    "--cpu", type=click.FloatRange(min=0), default=0.0, help="Cores kept busy."
)
@click.option(
    "--membw", type=click.FloatRange(min=0), default=0.0, help="Memory MB/s used."
)
@click.option("--gpu", type=click.FloatRange(0, 100), default=0.0, help="GPU %.")
@click.option("--objects", type=click.FloatRange(min=0), help="Objects per frame.")
@click.option(
    "--object-size", type=click.FloatRange(min=1), help="sqrt(mean box area) px."
)
@click.option("--frame", "frame_text", help="Frame size WxH, e.g. 1280x720.")
def profile_predict(
    profile_dir, branch_name, cpu, membw, gpu, objects, object_size, frame_text
):
    """Print the predicted latency and accuracy of one branch as JSON."""
    from approxrt.contention import ContentionLevels
    from approxrt.profiler.report import predict
    from approxrt.profiler.store import open_profile

    branch = parse_branch(branch_name)
    frame_wh = _frame_size(frame_text) if frame_text else None
    try:
        store = open_profile(profile_dir)
        result = predict(
            store,
            branch,
            ContentionLevels(cpu, membw, gpu),
            objects,
            frame_wh,
            object_size,
        )
    except (ValueError, FileNotFoundError) as error:
        raise _fail(error) from None
    click.echo(json.dumps(result, indent=2))


def _describe(profile_dir: Path) -> str:
    from approxrt.profiler.report import describe
    from approxrt.profiler.store import open_profile

    try:
        return describe(open_profile(profile_dir))
    except (ValueError, FileNotFoundError) as error:
        raise _fail(error) from None


def _write_markdown(profile_dir: Path, path: Path) -> None:
    import shutil

    from approxrt.profiler.report import markdown
    from approxrt.profiler.store import open_profile

    store = open_profile(profile_dir)
    prefix = f"{path.stem}_"
    path.parent.mkdir(parents=True, exist_ok=True)
    for plot in store.plots_dir.glob("*.png"):
        shutil.copyfile(plot, path.parent / f"{prefix}{plot.name}")
    meta = store.read_meta()
    made_by = meta.get("command") or command_line(click.get_current_context())
    path.write_text(markdown(store, made_by, prefix))
    click.echo(f"wrote {path}")


def _frame_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()) or "0" in (width, height):
        raise click.BadParameter(
            f"{text!r}: expected WIDTHxHEIGHT, e.g. 1280x720", param_hint="--frame"
        )
    return int(width), int(height)


def _video_specs(
    videos, truths, synthetic: bool, max_frames: int | None, config
) -> list:
    from approxrt.profiler.videos import VideoSpec, synthetic_videos

    if len(truths) > len(videos):
        raise click.BadParameter(
            f"{len(truths)} --gt given for {len(videos)} videos", param_hint="--gt"
        )
    padded = list(truths) + [None] * (len(videos) - len(truths))
    specs = []
    try:
        for video, truth in zip(videos, padded, strict=True):
            spec = VideoSpec.parse(video, max_frames)
            if truth not in (None, "-"):
                spec = dataclasses.replace(spec, truth=truth)
            specs.append(spec)
        frames = min(max_frames or math.inf, config.profile.synthetic_frames)
        specs += synthetic_videos(frames=frames) if synthetic else []
    except (ValueError, FileNotFoundError) as error:
        raise click.BadParameter(str(error), param_hint="VIDEOS") from None
    return specs


def _first_file(specs: list) -> Path | None:
    for spec in specs:
        if not spec.synthetic:
            return Path(spec.source)
    return None
