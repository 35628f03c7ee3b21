"""The ``approxrt`` command: run, eval, branches, models, bench."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from approxrt.branch import Branch
from approxrt.config import Config, load_config

OUTPUT_CHOICES = ("events", "mot", "coco", "video", "frames")


def _config(config_path: str | None, **overrides) -> Config:
    try:
        return load_config(config_path, **overrides)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


def _branch(name: str) -> Branch:
    from approxrt.branches.space import validate_branch

    try:
        return validate_branch(Branch.parse(name))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--branch") from None


def _switches(values: tuple[str, ...]) -> dict[int, Branch]:
    switches = {}
    for value in values:
        index, sep, name = value.partition("=")
        if not sep or not index.strip().isdigit():
            raise click.BadParameter(
                f"{value!r}: expected FRAME=BRANCH, e.g. "
                "400=yolox_nano/s320/si4/kcf/ds2",
                param_hint="--switch",
            )
        switches[int(index)] = _branch(name)
    return switches


@click.group()
@click.version_option(package_name="approxrt")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (INFO level).")
def main(verbose: bool) -> None:
    """approxrt: adaptive video analytics at the edge."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@main.command()
@click.argument("source")
@click.option(
    "--branch",
    "branch_name",
    required=True,
    help="Branch to run, e.g. yolox_nano/s416/si4/medianflow/ds1.",
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
    "--sla-ms", type=float, help="Per-frame latency target (recorded per frame)."
)
@click.option("--max-frames", type=int, help="Stop after this many frames.")
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
    OUT/events.jsonl (one event per frame) and OUT/summary.json.
    """
    from approxrt.loop import BranchSchedule
    from approxrt.runner import run_source

    config = _config(
        config_path,
        models_dir=models_dir,
        device=device,
        sla_ms=sla_ms,
        max_frames=max_frames,
        random_weights=random_weights or None,
        classes=classes.split(",") if classes else None,
    )
    schedule = BranchSchedule({0: _branch(branch_name), **_switches(switch_specs)})
    branches = list(dict.fromkeys(b for _, b in schedule.switches))
    outputs = ["events", "mot", "coco", *extra_outputs]
    try:
        report = run_source(
            source,
            schedule,
            branches,
            out_dir,
            config,
            outputs,
            overwrite=overwrite,
            progress=not no_progress,
        )
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(format_run_report(report.to_dict()))


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
    if report["bad_frames"] or report["frame_errors"]:
        lines.append(
            f"skipped: {report['bad_frames']} unreadable frames, "
            f"{report['frame_errors']} frames that failed"
        )
    return "\n".join(lines)


@main.command(name="eval")
@click.argument("gt", type=click.Path(exists=True, path_type=Path))
@click.argument(
    "results_dir", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--gt-format",
    default="mot15",
    show_default=True,
    type=click.Choice(["mot15", "mot16", "mot17", "mot20"]),
    help="Layout of a MOTChallenge gt.txt (ignored for COCO json ground truth).",
)
@click.option("--classes", help="Comma-separated COCO classes to score.")
@click.option(
    "--mot-min-confidence",
    default=0.3,
    show_default=True,
    help="MOT metrics count only result boxes at least this confident.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report as JSON here.",
)
def evaluate(gt, results_dir, gt_format, classes, mot_min_confidence, json_path):
    """Score RESULTS_DIR (from `approxrt run`) against ground truth GT.

    GT is a MOTChallenge gt.txt, a sequence folder holding gt/gt.txt, or a COCO
    ground-truth json. Prints AP50 per class (ImageNet-VID style), COCO mAP
    (faster-coco-eval) and MOTA/IDF1 (motmetrics).
    """
    from approxrt.evaluation.report import evaluate as evaluate_results

    try:
        report = evaluate_results(
            gt,
            results_dir,
            classes=classes,
            gt_format=gt_format,
            mot_min_confidence=mot_min_confidence,
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(report.format())
    if json_path:
        json_path.write_text(json.dumps(report.to_dict(), indent=2))


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="YAML file overriding default.yaml.",
)
@click.option("--detector", "detectors", multiple=True, help="Only these detectors.")
@click.option("--count", is_flag=True, help="Print only how many branches there are.")
def branches(config_path, detectors, count):
    """List the branch space (one branch name per line)."""
    from approxrt.branches.space import BranchSpace

    config = _config(config_path)
    try:
        space = BranchSpace.from_config(config, detectors or None)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if count:
        click.echo(len(space))
        return
    click.echo("\n".join(str(b) for b in space))
    click.echo(
        f"# {len(space)} branches, {len(space.kernels)} detector kernels", err=True
    )


@main.command()
@click.option("--models", "models_dir", help="Folder holding model files.")
@click.option(
    "--download",
    "to_download",
    multiple=True,
    help="Download (and verify) this model into the cache (repeatable).",
)
def models(models_dir, to_download):
    """List known models and where each is found (or download some)."""
    from approxrt.branches.models import MODELS, ModelNotFoundError, resolve_model

    for name in to_download:
        try:
            click.echo(f"{name}: {resolve_model(name, models_dir=models_dir)}")
        except (ValueError, OSError) as error:
            raise click.ClickException(str(error)) from None
    for name, spec in MODELS.items():
        try:
            where = str(resolve_model(name, models_dir=models_dir, download=False))
        except ModelNotFoundError:
            where = f"not found (downloads from {spec.url})"
        except ValueError as error:
            where = f"INVALID: {error}"
        click.echo(f"{name:12s} {where}")


@main.group()
def bench():
    """Benchmarks that print numbers and keep them in docs/benchmarks/."""


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _command_line(ctx: click.Context) -> str:
    """The options given to this command, as a line that reruns it (for reports)."""
    parts = ["approxrt", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        if ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
            parts += [param.opts[0], shlex.quote(str(ctx.params[param.name]))]
    return " ".join(parts)


@bench.command(name="kernel")
@click.option("--video", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--gt",
    "gt_path",
    type=click.Path(exists=True, dir_okay=False),
    help="MOTChallenge gt.txt of the video (AP50 needs it).",
)
@click.option("--models", "models_dir", help="Folder holding model files.")
@click.option(
    "--out",
    "out_dir",
    default="docs/benchmarks",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "--detectors",
    default="yolox_nano,fastestdet,nanodet_m",
    show_default=True,
    help="Detectors run every frame at each of their configured sizes.",
)
@click.option(
    "--tracker-base",
    default="yolox_nano/s416/si1",
    show_default=True,
    help="Detector and size under the tracker sweep.",
)
@click.option("--sampling-intervals", default="2,4,8", show_default=True)
@click.option(
    "--extra",
    default="fastestdet/s288/si100/mosse/ds4,yolox_nano/s224/si8/medianflow/ds4",
    show_default=True,
    help="More branches to measure, e.g. the cheapest of the space.",
)
@click.option("--downsamples", default="1,2", show_default=True)
@click.option(
    "--random-detectors",
    default="frcnn_mbv3,frcnn_r50",
    show_default=True,
    help="Detectors timed with random weights at each size x proposals.",
)
@click.option(
    "--random-frames",
    default=10,
    show_default=True,
    help="Frames per random-weight branch.",
)
@click.option("--max-frames", type=int, help="Use only the first N frames.")
@click.option(
    "--repeats",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="Runs per branch (interleaved rounds); latency is their median.",
)
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
def bench_kernel(
    video,
    gt_path,
    models_dir,
    out_dir,
    detectors,
    tracker_base,
    sampling_intervals,
    extra,
    downsamples,
    random_detectors,
    random_frames,
    max_frames,
    repeats,
    config_path,
):
    """Accuracy and latency of fixed branches -> OUT/kernel.{md,json,png}."""
    from approxrt.bench import run_kernel_benchmark, save_json, sweep_branches
    from approxrt.bench_report import kernel_markdown, plot_pareto

    config = _config(config_path, models_dir=models_dir, classes=["person"])
    names = [d for d in detectors.split(",") if d]
    base = _branch(tracker_base)
    branches = sweep_branches(
        {d: config.input_sizes[d] for d in names},
        base,
        _ints(sampling_intervals),
        config.trackers,
        _ints(downsamples),
    ) + [_branch(name) for name in extra.split(",") if name]
    random_branches = [
        Branch(d, size, proposals)
        for d in random_detectors.split(",")
        if d
        for size in config.input_sizes[d]
        for proposals in config.proposals
    ]
    switch_branches = [
        base,
        Branch(base.detector, 320, None, 4, "medianflow", 2),
        Branch("nanodet_m", 320),
        Branch(base.detector, 512, None, 8, "kcf", 1),
    ]
    results = run_kernel_benchmark(
        config,
        Path(video),
        Path(gt_path) if gt_path else None,
        branches,
        random_branches,
        switch_branches,
        max_frames,
        random_frames,
        repeats,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    save_json(results, out_dir / "kernel.json")
    plot_pareto(
        results["rows"],
        out_dir / "kernel.png",
        f"PETS09-S2L1, {results['machine']['cpu']}",
    )
    command = _command_line(click.get_current_context())
    (out_dir / "kernel.md").write_text(kernel_markdown(results, command, "kernel.png"))
    click.echo((out_dir / "kernel.md").read_text())


if __name__ == "__main__":
    sys.exit(main())
