"""Accuracy profiling: AP50 of every branch per video segment, and content features.

    tables = profile_accuracy(config, BranchSpace.from_config(config),
                              [VideoSpec.from_path("pets/video.avi"),
                               *synthetic_videos()], cache_dir="profile/...")

(`VideoSpec` and `synthetic_videos` are in `approxrt.profiler.videos`.)
    tables["accuracy/segments"], tables["accuracy/features"], ...

Three phases, each a set of plain-data jobs run by `approxrt.profiler.workers`
(local processes, or a Ray cluster):

1. Detect: every detector kernel of the space (and the reference kernel) runs once
   over every video; outputs are cached (`approxrt.profiler.detection_cache`), and
   fresh cache entries are reused.
2. Replay and score: one job per (video, kernel, tracker) replays every
   (downsample, sampling interval) of that tracker from the cache in one pass over
   the video, sharing tracker runs between sampling intervals
   (`approxrt.profiler.replay`), and scores AP50 per segment; one job per
   (video, kernel) scores its si = 1 branches straight from the cache.
3. Features: one job per video computes each segment's content features
   (`approxrt.profiler.features`) and times them.

Truth, per video (the ``truth`` column says which): its MOT gt.txt or COCO json
when given; a synthetic scene's exact ground truth (written once as COCO json into
the cache folder; objects less than half visible are not scored); otherwise the
output of the reference branch (``config.profile.reference_branch``, by default
the space's most expensive kernel at si = 1), its boxes at least
``config.tracker_min_confidence`` confident counting as truth.

What makes it fast enough for hundreds of branches on a small machine: each
detector kernel runs once per video, not once per branch; tracker runs are shared
between sampling intervals (about 3.5 instead of 5 tracker frames per video frame
for si in {2, 4, 8, 20, 50, 100}); each video is decoded once per (kernel,
tracker) for all its downsamples, and each frame's downsampled (and, for
MedianFlow, grayscale) view is made once for every run on it
(`approxrt.frame.Frame.derived`); si = 1 branches and scoring need no frames at
all; and the jobs run on one single-threaded worker process per core, the
longest started first, on workers started once for all three phases.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from approxrt.branch import Branch, DetectorKnobs
from approxrt.branches.detectors.registry import detector_class
from approxrt.branches.space import BranchSpace, validate_branch
from approxrt.config import Config
from approxrt.evaluation import resolve_gt_path
from approxrt.profile_schema import TABLES
from approxrt.profiler import detection_cache
from approxrt.profiler.features import check_heavy_features
from approxrt.profiler.replay import segment_bounds
from approxrt.profiler.videos import VideoSpec
from approxrt.profiler.workers import Job, JobRunner
from approxrt.scheduler.latency_components import kernel_name
from approxrt.sources import SyntheticScene

log = logging.getLogger(__name__)

# Ties between equally large kernels go to the family more accurate on COCO.
_FAMILY_ORDER = ("fastestdet", "nanodet_m", "yolox_nano", "frcnn_mbv3", "frcnn_r50")
SYNTHETIC_TRUTH = "truth.coco.json"


def reference_branch(config: Config, space: BranchSpace) -> Branch:
    """``config.profile.reference_branch``, or the space's most expensive kernel at si1.

    Most expensive by the knobs: two-stage before one-stage, then the larger
    input, then more proposals, then the family more accurate on COCO.
    """
    named = config.profile.reference_branch
    if named:
        branch = validate_branch(Branch.parse(named))
        if branch.sampling_interval != 1:
            raise ValueError(
                f"profile.reference_branch: {named!r} must detect every frame "
                "(sampling interval 1), e.g. yolox_nano/s640/si1"
            )
        return branch
    if not space.kernels:
        raise ValueError("profile_accuracy: the branch space is empty")

    def cost(kernel: tuple[str, DetectorKnobs]) -> tuple:
        detector, knobs = kernel
        family = _FAMILY_ORDER.index(detector) if detector in _FAMILY_ORDER else -1
        two_stage = detector_class(detector).two_stage
        return (two_stage, knobs.input_size, knobs.proposals or 0, family)

    detector, knobs = max(space.kernels, key=cost)
    return Branch(detector, knobs.input_size, knobs.proposals, 1)


def profile_accuracy(
    config: Config,
    space: BranchSpace,
    videos: Sequence[VideoSpec],
    cache_dir: str | Path,
    workers: int | None = None,
    ray_address: str | None = None,
    progress: bool = True,
) -> dict[str, pd.DataFrame]:
    """AP50 per (video, segment, branch), content features and their cost.

    Args:
        config: settings (``config.profile.*``: segment length, reference
            branch, heavy features, workers).
        space: the branches to score.
        videos: the videos; names must be unique.
        cache_dir: where detections (and synthetic truth) are cached.
        workers: local worker processes (None: ``config.profile.workers``;
            0: one per core).
        ray_address: run the jobs on this Ray cluster (``host:port``) instead;
            video files, model files and ``cache_dir`` must then be at the same
            paths on every node (a shared filesystem); synthetic scenes are
            rendered wherever a job runs.
        progress: progress bars over jobs.

    Returns:
        ``{"accuracy/segments", "accuracy/features", "accuracy/feature_cost",
        "accuracy/kernel_features"}``
        tables with the columns of `approxrt.profile_schema.TABLES`; features
        add ``<heavy>_<i>`` columns. AP50 is NaN on a segment without truth.

    Raises:
        ValueError: bad videos (missing file or truth, duplicate names), an
            unknown heavy feature or a bad reference branch.
    """
    videos = _checked(videos)
    heavy = check_heavy_features(config.profile.heavy_features)
    reference = reference_branch(config, space)
    cache_dir = Path(cache_dir)
    workers = config.profile.workers if workers is None else workers
    kernels = list(dict.fromkeys([*space.kernels, reference.kernel]))
    runner = JobRunner(workers, ray_address, progress)  # a bad count fails here
    truths = {v.name: _truth(v, config, reference, cache_dir) for v in videos}
    with runner:
        _cache_detections(config, videos, kernels, cache_dir, runner)
        segments = {
            v.name: segment_bounds(
                detection_cache.frame_count(_entry(cache_dir, v, reference.kernel)),
                config.profile.segment_frames,
            )
            for v in videos
        }
        jobs = [
            *_score_jobs(config, space, videos, cache_dir, truths, segments),
            *_feature_jobs(
                config, videos, cache_dir, reference, kernels, segments, heavy
            ),
        ]
        results = runner.run(jobs, "replay and features")
    return _tables(jobs, results)


def _checked(videos: Sequence[VideoSpec]) -> list[VideoSpec]:
    videos = list(videos)
    if not videos:
        raise ValueError("profile_accuracy: no videos given")
    names = [v.name for v in videos]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"profile_accuracy: video names must be unique, repeated: {repeated}"
        )
    for video in videos:
        video.check()
    return videos


def _entry(cache_dir: Path, video: VideoSpec, kernel: tuple[str, DetectorKnobs]):
    return detection_cache.cache_path(cache_dir, video.name, *kernel)


def _truth(
    video: VideoSpec, config: Config, reference: Branch, cache_dir: Path
) -> dict[str, Any]:
    """What the video's branches are scored against, as a job argument."""
    if video.truth is not None:
        path = resolve_gt_path(video.truth)
        return {"kind": "gt", "path": str(path), "gt_format": video.gt_format} | {
            "label": "gt"
        }
    if video.synthetic:
        path = _synthetic_truth(video, cache_dir / video.name / SYNTHETIC_TRUTH)
        return {"kind": "gt", "path": str(path), "label": "gt"}
    return {
        "kind": "reference",
        "path": str(_entry(cache_dir, video, reference.kernel)),
        "min_confidence": config.tracker_min_confidence,
        "label": str(reference),
    }


def _synthetic_truth(video: VideoSpec, path: Path) -> Path:
    """The scene's exact ground truth as COCO json (written by `scene_io`)."""
    scene = SyntheticScene.from_spec(video.source)
    if path.is_file():
        try:
            written = json.loads(path.read_text())["info"]["description"]
        except (ValueError, KeyError, TypeError):
            written = None
        if written == scene.config.to_spec():
            return path
    return scene.write_coco_gt(path)


def _cache_detections(
    config: Config,
    videos: Sequence[VideoSpec],
    kernels: Sequence[tuple[str, DetectorKnobs]],
    cache_dir: Path,
    runner: JobRunner,
) -> None:
    """Run every kernel whose cache entry is missing or stale; store the outputs."""
    jobs, targets = [], []
    for video in videos:
        identity = detection_cache.video_identity(video.source, video.max_frames)
        for detector, knobs in kernels:
            made = detection_cache.made_with(config, detector, knobs, identity)
            path = _entry(cache_dir, video, (detector, knobs))
            if detection_cache.is_fresh(path, made):
                continue
            args = {
                "source": video.source,
                "max_frames": video.max_frames,
                "config": config.model_dump(mode="json"),
                "detector": detector,
                "input_size": knobs.input_size,
                "proposals": knobs.proposals,
            }
            label = f"{video.name} {detection_cache.kernel_stem(detector, knobs)}"
            jobs.append(Job(f"{detection_cache.__name__}:detect_task", args, label))
            targets.append((path, made))
    results = runner.run(jobs, "detect")
    for (path, made), result in zip(targets, results, strict=True):
        detection_cache.write(path, result["table"], result["frames"], made)


def _score_jobs(
    config: Config,
    space: BranchSpace,
    videos: Sequence[VideoSpec],
    cache_dir: Path,
    truths: dict[str, dict[str, Any]],
    segments: dict[str, list[tuple[int, int]]],
) -> list[Job]:
    """One job per (video, kernel, tracker), and per (video, kernel) for si1."""
    groups: dict[tuple, list[str]] = {}
    for branch in space:
        groups.setdefault((branch.kernel, branch.tracker), []).append(str(branch))
    jobs = []
    for video in videos:
        frames = segments[video.name][-1][1] + 1
        for (kernel, tracker), names in groups.items():
            args = {
                "video": video.name,
                "source": video.source,
                "max_frames": video.max_frames,
                "config": config.model_dump(mode="json"),
                "branches": names,
                "cache": str(_entry(cache_dir, video, kernel)),
                "truth": truths[video.name],
                "segments": [list(s) for s in segments[video.name]],
            }
            label = f"{video.name} {detection_cache.kernel_stem(*kernel)} {tracker}"
            # Replays cost about frames x branches; si1 only scores.
            cost = frames * (len(names) if tracker else 0.01)
            jobs.append(Job("approxrt.profiler.replay:score_task", args, label, cost))
    return jobs


def _feature_jobs(
    config: Config,
    videos: Sequence[VideoSpec],
    cache_dir: Path,
    reference: Branch,
    kernels: Sequence[tuple[str, DetectorKnobs]],
    segments: dict[str, list[tuple[int, int]]],
    heavy: list[str],
) -> list[Job]:
    return [
        Job(
            "approxrt.profiler.features:features_task",
            {
                "video": video.name,
                "source": video.source,
                "max_frames": video.max_frames,
                "reference": str(_entry(cache_dir, video, reference.kernel)),
                "segments": [list(s) for s in segments[video.name]],
                "heavy": heavy,
                "min_confidence": config.tracker_min_confidence,
                "iou_threshold": config.association_iou_threshold,
                "kernels": {
                    kernel_name(detector, knobs.input_size, knobs.proposals): str(
                        _entry(cache_dir, video, (detector, knobs))
                    )
                    for detector, knobs in kernels
                },
            },
            f"{video.name} features",
            cost=segments[video.name][-1][1] + 1,
        )
        for video in videos
    ]


def _tables(jobs: Sequence[Job], results: Sequence[Any]) -> dict[str, pd.DataFrame]:
    scored = [r for j, r in zip(jobs, results, strict=True) if "score" in j.task]
    featured = [r for j, r in zip(jobs, results, strict=True) if "feature" in j.task]
    shared = sum(r["tracker_frames"] for r in scored)
    unshared = sum(r["tracker_frames_unshared"] for r in scored)
    log.info("replay: %d tracker frames (%d without sharing)", shared, unshared)
    segments = pd.concat([r["segments"] for r in scored], ignore_index=True)
    return {
        "accuracy/segments": segments[list(TABLES["accuracy/segments"])],
        "accuracy/features": pd.concat(
            [r["features"] for r in featured], ignore_index=True
        ),
        "accuracy/feature_cost": pd.concat(
            [r["cost"] for r in featured], ignore_index=True
        ),
        "accuracy/kernel_features": pd.concat(
            [r["kernel_features"] for r in featured], ignore_index=True
        ),
    }
