"""Accuracy profiling: AP50 of every branch per video segment, and content features.

    tables = profile_accuracy(config, BranchSpace.from_config(config),
                              [VideoSpec.from_path("pets/video.avi"),
                               *synthetic_videos()], cache_dir="profile/...")
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

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
from approxrt.profiler.detection_cache import is_synthetic
from approxrt.profiler.features import check_heavy_features
from approxrt.profiler.replay import segment_bounds
from approxrt.profiler.workers import Job, JobRunner
from approxrt.scheduler.latency_components import kernel_name
from approxrt.sources import SceneConfig, SyntheticScene, VideoFileSource

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Ties between equally large kernels go to the family more accurate on COCO.
_FAMILY_ORDER = ("fastestdet", "nanodet_m", "yolox_nano", "frcnn_mbv3", "frcnn_r50")
SYNTHETIC_TRUTH = "truth.coco.json"

# Default synthetic scenes: content the PETS video lacks (many small objects, few
# large ones, fast motion, objects entering and leaving), so the accuracy model
# sees object count, size and speed vary independently.
SYNTHETIC_SCENES = {
    "synth_few_large_slow": "objects=3,size=150-220,speed=0.5-2,seed=11",
    "synth_many_small": "objects=20,size=50-80,speed=0.5-2.5,seed=12",
    "synth_fast": "objects=6,size=90-140,speed=8-14,seed=13,background=gravel",
    "synth_entering": "objects=8,size=60-120,speed=2-6,enter_rate=0.15,seed=14,"
    "background=brick",
}


@dataclass(frozen=True)
class VideoSpec:
    """A video to profile accuracy on.

    Attributes:
        name: its name in every table and its cache folder (letters, digits,
            ``.``, ``_``, ``-``).
        source: a video file path or a ``synthetic:key=value,...`` spec.
        truth: a MOT gt.txt, a sequence folder holding gt/gt.txt, or a COCO json;
            None for a synthetic scene (its exact ground truth) or an unlabelled
            video (the reference branch's output).
        gt_format: layout of a MOT gt.txt (``mot15``, ``mot16``, ...).
        max_frames: frames profiled at most (None: all).
    """

    name: str
    source: str
    truth: str | None = None
    gt_format: str = "mot15"
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"VideoSpec.name: expected letters, digits, '.', '_' or '-', got "
                f"{self.name!r}"
            )
        if self.max_frames is not None and (
            not isinstance(self.max_frames, int) or self.max_frames < 1
        ):
            raise ValueError(
                f"VideoSpec.max_frames of {self.name!r}: expected an int >= 1 or "
                f"None, got {self.max_frames!r}"
            )

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        truth: str | Path | None = None,
        name: str | None = None,
        max_frames: int | None = None,
    ) -> VideoSpec:
        """A video file; a sequence folder's ``gt/gt.txt`` beside it is its truth.

        The name defaults to the file's stem, or to its folder's name when the
        file is a sequence folder's ``video.*`` (the MOT and `scene_io` layout).
        """
        path = Path(path)
        beside = path.parent / "gt" / "gt.txt"
        if truth is None and beside.is_file():
            truth = beside
        if name is None:
            name = path.parent.name if path.stem == "video" else path.stem
        return cls(name, str(path), str(truth) if truth else None, "mot15", max_frames)

    @classmethod
    def parse(cls, text: str, max_frames: int | None = None) -> VideoSpec:
        """A video from the command line: ``[NAME=]PATH`` or ``[NAME=]synthetic:...``.

        Without a name, a path is named as in `from_path` and a synthetic spec
        ``synthetic_<first 8 hex digits of its SHA-256>``.
        """
        name, sep, rest = text.partition("=")
        # A NAME has no "/" or ":", so "dir/a=b.avi" or "synthetic:x=1" is no name.
        if sep and _NAME.match(name):
            return replace(cls._unnamed(rest, max_frames), name=name)
        return cls._unnamed(text, max_frames)

    @classmethod
    def _unnamed(cls, source: str, max_frames: int | None) -> VideoSpec:
        if not is_synthetic(source):
            return cls.from_path(source, max_frames=max_frames)
        digest = hashlib.sha256(source.encode()).hexdigest()[:8]
        return cls(f"synthetic_{digest}", source, max_frames=max_frames)

    @property
    def synthetic(self) -> bool:
        return is_synthetic(self.source)

    def check(self) -> None:
        """Raise a ValueError naming this video when its source or truth is bad."""
        if not self.synthetic and not Path(self.source).is_file():
            raise ValueError(
                f"video {self.name!r}: source {self.source!r} is not a file (expected "
                "a video file or a 'synthetic:key=value,...' spec)"
            )
        try:
            if self.synthetic:
                SceneConfig.from_spec(self.source)
            else:
                # Opening decodes the first frame: a file that is no video fails now.
                VideoFileSource(self.source).close()
        except ValueError as error:
            raise ValueError(f"video {self.name!r}: {error}") from None
        if self.truth is not None:
            try:
                resolve_gt_path(self.truth)
            except ValueError as error:
                raise ValueError(f"video {self.name!r}: truth: {error}") from None

    def __str__(self) -> str:
        return f"{self.name}={self.source}"


def synthetic_videos(
    frames: int = 200, width: int = 640, height: int = 480
) -> list[VideoSpec]:
    """The default synthetic scenes (`SYNTHETIC_SCENES`), person only."""
    return [
        VideoSpec(
            name,
            f"synthetic:{spec},frames={frames},width={width},height={height}",
        )
        for name, spec in SYNTHETIC_SCENES.items()
    ]


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
