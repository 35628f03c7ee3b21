"""``approxrt bench``: benchmarks that print numbers and keep them in docs/."""

from __future__ import annotations

from pathlib import Path

import click

from approxrt.branch import Branch
from approxrt.cli.app import main
from approxrt.cli.common import command_line, config_from, parse_branch, parse_ints

video_option = click.option(
    "--video", required=True, type=click.Path(exists=True, dir_okay=False)
)
models_option = click.option(
    "--models", "models_dir", help="Folder holding model files."
)
docs_out_option = click.option(
    "--out",
    "out_dir",
    default="docs/benchmarks",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)


@main.group()
def bench():
    """Benchmarks that print numbers and keep them in docs/benchmarks/."""


@bench.command(name="kernel")
@video_option
@click.option(
    "--gt",
    "gt_path",
    type=click.Path(exists=True, dir_okay=False),
    help="MOTChallenge gt.txt of the video (AP50 needs it).",
)
@models_option
@docs_out_option
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
@click.option(
    "--classes",
    default="person",
    show_default=True,
    help="COCO classes kept and scored (comma-separated); the gt's must match.",
)
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
    classes,
):
    """Accuracy and latency of fixed branches -> OUT/kernel.{md,json,png}."""
    from approxrt.bench.kernel import run_kernel_benchmark, save_json, sweep_branches
    from approxrt.bench.kernel_report import kernel_markdown, plot_pareto

    classes = [c for c in classes.split(",") if c]
    config = config_from(config_path, models_dir=models_dir, classes=classes)
    names = [d for d in detectors.split(",") if d]
    base = parse_branch(tracker_base)
    branches = sweep_branches(
        {d: config.input_sizes[d] for d in names},
        base,
        parse_ints(sampling_intervals),
        config.trackers,
        parse_ints(downsamples),
    ) + [parse_branch(name) for name in extra.split(",") if name]
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
        f"{Path(video).name}, {results['machine']['cpu']}",
        tuple(classes),
    )
    command = command_line(click.get_current_context())
    (out_dir / "kernel.md").write_text(kernel_markdown(results, command, "kernel.png"))
    click.echo((out_dir / "kernel.md").read_text())


@bench.command(name="adaptive")
@click.argument("scenario_path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for results.csv, adaptive.md and the plots.",
)
@click.option(
    "--profile",
    "profile_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The device's profile (default: the quick calibration, as `run` does).",
)
@models_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
def bench_adaptive(scenario_path, out_dir, profile_dir, models_dir, config_path):
    """Adaptive vs fixed, best static, ApproxDet-style and the oracle, per
    stream x contention x SLA of SCENARIO -> OUT/{results.csv,adaptive.md,*.png}."""
    from approxrt.adaptive import candidates, load_run_models, settings_from_profile
    from approxrt.bench.adaptive import run_adaptive_benchmark
    from approxrt.bench.adaptive_report import write_report
    from approxrt.bench.scenario import load_scenario

    try:
        scenario, base = load_scenario(scenario_path)
        config = config_from(config_path, models_dir=models_dir)
        if profile_dir is not None:
            config = settings_from_profile(config, Path(profile_dir))
        models, origin = load_run_models(config, profile_dir, None)
        branches = candidates(models, config)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"adaptive: {len(branches)} branches, models from {origin}", err=True)
    result = run_adaptive_benchmark(scenario, base, config, models, branches)
    command = command_line(click.get_current_context())
    report = write_report(result.rows, result.timelines, out_dir, command)
    click.echo(report.read_text())


@bench.command(name="scheduler")
@click.option(
    "--profile",
    "profile_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A profile with latency and accuracy models.",
)
@click.option("--decisions", default=5000, show_default=True, type=int)
def bench_scheduler(profile_dir, decisions):
    """Microseconds per scheduler decision over the profile's kernels and
    trackers at many sampling intervals (over 1,000 branches)."""
    import json

    from approxrt.adaptive import load_run_models
    from approxrt.bench.scheduler_speed import time_decisions, wide_space
    from approxrt.config import load_config

    try:
        models, _ = load_run_models(load_config(), profile_dir, None)
    except (ValueError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(time_decisions(models, wide_space(models), decisions)))


@bench.command(name="threads")
@video_option
@models_option
@docs_out_option
@click.option(
    "--kernels",
    default="yolox_nano/s416,nanodet_m/s320,fastestdet/s352",
    show_default=True,
    help="Detector kernels (detector/s<size>), comma-separated.",
)
@click.option(
    "--threads",
    "thread_counts",
    default="0,1",
    show_default=True,
    help="CPU thread counts per detector; 0 is the library's default.",
)
@click.option(
    "--levels",
    default="cpu=0;cpu=1;cpu=2;cpu=1,membw=3000",
    show_default=True,
    help="Contention levels, ';'-separated (the generator's levels).",
)
@click.option("--rounds", default=4, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--calls",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="Timed detector calls per kernel, thread count, level and round.",
)
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
def bench_threads(
    video,
    models_dir,
    out_dir,
    kernels,
    thread_counts,
    levels,
    rounds,
    calls,
    config_path,
):
    """Detector ms per thread count at each contention level, interleaved
    rounds -> OUT/threads.{md,csv,png}."""
    from approxrt.bench.threads import measure_threads, write_report
    from approxrt.contention import ContentionLevels
    from approxrt.profiler.contention import ContentionError, ContentionGenerator
    from approxrt.profiler.latency_frames import read_video

    config = config_from(config_path, models_dir=models_dir)
    try:
        branches = [
            parse_branch(f"{kernel.strip()}/si1") for kernel in kernels.split(",")
        ]
        counts = parse_ints(thread_counts)
        parsed_levels = [
            ContentionLevels.parse(s) for s in levels.split(";") if s.strip()
        ]
        frames = read_video(Path(video), 8)
        with ContentionGenerator(
            settle_s=config.profile.settle_s, backend=config.profile.cpu_backend
        ) as generator:
            rows = measure_threads(
                config,
                branches,
                counts,
                parsed_levels,
                frames,
                generator,
                rounds,
                calls,
            )
    except (ValueError, FileNotFoundError, ContentionError) as error:
        raise click.ClickException(str(error)) from None
    command = command_line(click.get_current_context())
    click.echo(write_report(rows, out_dir, command).read_text())
