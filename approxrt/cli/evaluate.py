"""``approxrt eval``: score a run's results against ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import click

from approxrt.cli.app import main


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
    "--eta",
    "eta_frames",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=-1),
    help="Streaming AP50's grace in frames: 0 is Li et al.'s default (a frame is "
    "due when it arrives); -1 gives each frame until the next one arrives.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report as JSON here.",
)
def evaluate(
    gt, results_dir, gt_format, classes, mot_min_confidence, eta_frames, json_path
):
    """Score RESULTS_DIR (from `approxrt run`) against ground truth GT.

    GT is a MOTChallenge gt.txt, a sequence folder holding gt/gt.txt, or a COCO
    ground-truth json. Prints AP50 per class (ImageNet-VID style), COCO mAP
    (faster-coco-eval), MOTA/IDF1 (motmetrics) and, beside offline AP50,
    streaming AP50 (Li, Wang and Ramanan, ECCV 2020: each frame scored on the
    newest output ready when it was due) from the run's timing.csv.
    """
    from approxrt.evaluation.report import evaluate as evaluate_results

    try:
        report = evaluate_results(
            gt,
            results_dir,
            classes=classes,
            gt_format=gt_format,
            mot_min_confidence=mot_min_confidence,
            eta_frames=eta_frames,
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(report.format())
    if json_path:
        json_path.write_text(json.dumps(report.to_dict(), indent=2))
