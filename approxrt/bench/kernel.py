"""`approxrt bench kernel`: accuracy and latency of fixed branches on one video.

The video is decoded once into memory (decode time is reported apart), every
detector kernel in the sweep is loaded and warmed once, and each branch then
replays the same frames through the real frame loop. Accuracy is the mean AP at
IoU 0.5 over the classes asked for (``config.classes``), by our ImageNet-VID-style
scorer and, independently, faster-coco-eval.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from time import perf_counter

import numpy as np
from tqdm import tqdm

from approxrt.branch import Branch
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.classes import class_ids_from_names
from approxrt.config import Config
from approxrt.detections import Detections
from approxrt.evaluation.ap import evaluate_ap
from approxrt.evaluation.coco import coco_scores
from approxrt.evaluation.mot_io import read_mot_gt
from approxrt.frame import Frame
from approxrt.loop import BranchSchedule, FixedBranch, run_loop
from approxrt.profiler.fingerprint import cpu_model
from approxrt.runner import prepare_kernel
from approxrt.sources import open_source
from approxrt.stats import RunStats


@dataclass
class BranchRow:
    """One fixed branch over the whole video.

    Latency fields are the median over ``rounds`` runs; ``mean_ms_range`` is the
    lowest and highest per-run mean, so noise from the machine shows.
    ``overhead_ms`` is the loop's own time per frame beyond the detector, id
    association and the tracker, timed inside the loop; ``wall_overhead_ms`` is
    the same from the consumer's side (wall time between results, so the
    generator, statistics and progress bar are in it).
    """

    branch: str
    ap50: float | None
    coco_ap50: float | None
    mean_ms: float
    p95_ms: float
    detector_ms_per_frame: float
    associate_ms_per_frame: float
    tracker_ms_per_frame: float
    overhead_ms: float
    wall_overhead_ms: float
    weights: str
    rounds: int = 1
    mean_ms_range: tuple[float, float] | None = None


_LATENCY_FIELDS = (
    "mean_ms",
    "p95_ms",
    "detector_ms_per_frame",
    "associate_ms_per_frame",
    "tracker_ms_per_frame",
    "overhead_ms",
    "wall_overhead_ms",
)


def median_row(runs: list[BranchRow]) -> BranchRow:
    """One row from repeated runs of a branch: accuracy of the first, median latency."""
    medians = {
        f: float(np.median([getattr(r, f) for r in runs])) for f in _LATENCY_FIELDS
    }
    means = [r.mean_ms for r in runs]
    return replace(
        runs[0], **medians, rounds=len(runs), mean_ms_range=(min(means), max(means))
    )


def sweep_branches(
    sizes: dict[str, Sequence[int]],
    tracker_base: Branch,
    sampling_intervals: Sequence[int],
    trackers: Sequence[str],
    downsamples: Sequence[int],
) -> list[Branch]:
    """Each detector size every frame, then the trackers around ``tracker_base``."""
    every_frame = [
        Branch(name, size) for name, values in sizes.items() for size in values
    ]
    tracked = [
        Branch(tracker_base.detector, tracker_base.input_size, None, si, kind, ds)
        for si in sampling_intervals
        for kind in trackers
        for ds in downsamples
    ]
    return every_frame + tracked


def load_frames(
    video: str | Path, max_frames: int | None = None
) -> tuple[list[Frame], float]:
    """All frames of ``video`` in memory, and the mean decode ms per frame."""
    with open_source(str(video)) as source:
        frames = []
        for frame in tqdm(
            source, total=source.frame_count, unit="frame", desc="decode", leave=False
        ):
            frames.append(frame)
            if max_frames and len(frames) >= max_frames:
                break
    decode_ms = float(np.mean([f.decode_ms for f in frames]))
    return frames, decode_ms


def measure_branch(
    kernel: MultiBranchKernel,
    frames: list[Frame],
    branch: Branch,
    gt: Detections | None,
    classes: list[int],
) -> BranchRow:
    """Run ``branch`` over ``frames``: latency from the loop, accuracy vs ``gt``."""
    kernel.reset()
    stats = RunStats()
    outputs = []
    results = run_loop(frames, kernel, FixedBranch(branch))
    start_s = perf_counter()
    for result in tqdm(
        results, total=len(frames), unit="frame", desc=str(branch), leave=False
    ):
        stats.add(result)
        outputs.append((result.frame.index + 1, result.detections))
    wall_ms_per_frame = (perf_counter() - start_s) * 1e3 / len(frames)
    summary = stats.summary()
    ap50 = coco_ap50 = None
    if gt is not None and summary.weights == "pretrained":
        table = Detections.stack(outputs)
        ap50 = evaluate_ap(gt, table, classes=classes).mean_ap50
        coco_ap50 = coco_scores(gt, table, classes=classes).ap50
    n = summary.frames
    kernel_ms = (
        summary.detector_ms_per_detection * summary.detection_frames / n
        + summary.stage_mean_ms["associate"]
        + summary.stage_mean_ms["track"]
    )
    return BranchRow(
        branch=str(branch),
        ap50=ap50,
        coco_ap50=coco_ap50,
        mean_ms=summary.latency_ms["mean"],
        p95_ms=summary.latency_ms["p95"],
        detector_ms_per_frame=summary.detector_ms_per_detection
        * summary.detection_frames
        / n,
        associate_ms_per_frame=summary.stage_mean_ms["associate"],
        tracker_ms_per_frame=summary.stage_mean_ms["track"],
        overhead_ms=summary.overhead_ms,
        wall_overhead_ms=wall_ms_per_frame - kernel_ms,
        weights=summary.weights,
    )


def measure_switching(
    kernel: MultiBranchKernel,
    frames: list[Frame],
    branches: Sequence[Branch],
    period: int = 40,
) -> dict:
    """Cost of a switch: first detection after it minus that branch's steady detections.

    Branches take turns every ``period`` frames; for each branch, the detection
    frame that opens its turn is compared with its other detection frames.
    """
    switches = {
        i: branches[(i // period) % len(branches)]
        for i in range(0, len(frames), period)
    }
    kernel.reset()
    first, steady = {str(b): [] for b in branches}, {str(b): [] for b in branches}
    for result in run_loop(frames, kernel, BranchSchedule(switches)):
        if result.detected:
            opens_turn = result.frame.index in switches and result.frame.index > 0
            (first if opens_turn else steady)[str(result.branch)].append(
                result.latency_ms
            )
    per_branch = {
        name: {
            "switch_ms": float(np.mean(first[name])),
            "steady_ms": float(np.mean(steady[name])),
            "extra_ms": float(np.mean(first[name]) - np.mean(steady[name])),
            "switches": len(first[name]),
        }
        for name in first
        if first[name]
    }
    return {"period_frames": period, "per_branch": per_branch}


def run_kernel_benchmark(
    config: Config,
    video: Path,
    gt_path: Path | None,
    branches: list[Branch],
    random_branches: list[Branch],
    switch_branches: list[Branch],
    max_frames: int | None,
    random_frames: int,
    repeats: int = 3,
) -> dict:
    """Measure ``branches`` (accuracy + latency) and ``random_branches`` (latency)."""
    frames, decode_ms = load_frames(video, max_frames)
    gt = read_mot_gt(gt_path) if gt_path else None
    if gt is not None:  # score only the frames measured (--max-frames)
        gt = gt[gt.frame <= len(frames)]
    kernel = prepare_kernel(config, branches + switch_branches, frames[0].image)
    classes = class_ids_from_names(config.classes or ["person"])
    rows = _measure_all(kernel, frames, branches, gt, repeats, classes)
    switching = measure_switching(kernel, frames, switch_branches)
    random_rows = []
    if random_branches:
        random_config = config.replace(random_weights=True)
        random_kernel = prepare_kernel(random_config, random_branches, frames[0].image)
        random_rows = _measure_all(
            random_kernel,
            frames[:random_frames],
            random_branches,
            None,
            repeats,
            classes,
        )
    return {
        "video": str(video),
        "classes": config.classes or ["person"],
        "frames": len(frames),
        "repeats": repeats,
        "decode_ms": decode_ms,
        "machine": machine_info(),
        "rows": [asdict(r) for r in rows],
        "random_weight_rows": [asdict(r) for r in random_rows],
        "switching": switching,
    }


def _measure_all(
    kernel: MultiBranchKernel,
    frames: list[Frame],
    branches: list[Branch],
    gt: Detections | None,
    repeats: int,
    classes: list[int],
) -> list[BranchRow]:
    """Every branch ``repeats`` times, in interleaved rounds so that a slow spell
    of the machine hits one run of many branches, not every run of one."""
    runs: dict[Branch, list[BranchRow]] = {b: [] for b in branches}
    jobs = [(r, b) for r in range(repeats) for b in branches]
    for round_index, branch in tqdm(jobs, unit="run", desc="runs"):
        scored_gt = gt if round_index == 0 else None  # outputs repeat exactly
        runs[branch].append(measure_branch(kernel, frames, branch, scored_gt, classes))
    return [median_row(r) for r in runs.values()]


def machine_info() -> dict:
    """What the numbers were measured on."""
    import cv2
    import onnxruntime
    import psutil
    import torch

    return {
        "cpu": cpu_model(),
        "logical_cores": psutil.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "opencv": cv2.__version__,
    }


def save_json(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2))
