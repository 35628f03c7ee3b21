"""Replaying branches from cached detections, and scoring them per video segment.

Every branch of one detector kernel sees the same detections on its detection
frames, so the detector runs once per video (`approxrt.profiler.detection_cache`)
and each (tracker, downsample, sampling interval) is replayed from the cache
through the runtime's own kernel: `MultiBranchKernel.seed` on a group of frames'
first frame (track-id association and tracker seeding, exactly as a live run
does) and `MultiBranchKernel.track` on the others, on the real frames. The kernel
is built by `approxrt.pipeline.build_kernel` with no detectors.

Sharing tracker runs. The boxes of a tracking frame depend only on the seeds of
its group of frames (GoF) and on the frames since: seeding replaces every object
a tracker held, so nothing of the previous GoF survives. (Track *ids* do depend on
the history, through association, but AP50 does not look at ids.) So the tracker
run seeded at frame k serves every sampling interval si that k is a multiple of,
for as many frames as the longest of those GoFs: with si in {2, 4, 8}, the run
from frame 8 fills frames 9..15 of si8, 9..11 of si4 and 9 of si2. Runs of
different starts overlap in time, so one kernel per *level* (the longest interval
a start serves) replays beside the others while the video is read once; a level's
run always ends before its next start. On PETS (795 frames) with si in {2, 4, 8,
20, 50, 100} this runs about 3.5 tracker frames per video frame instead of 5.0.
Branches with si = 1 need no tracker: the cached detections are their output.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from approxrt.branch import Branch, DetectorKnobs
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.classes import class_ids_from_names
from approxrt.config import Config
from approxrt.detections import Detections
from approxrt.evaluation import evaluate_ap, ignored, read_coco_gt, read_mot_gt
from approxrt.frame import Frame
from approxrt.pipeline import build_kernel
from approxrt.profile_schema import TABLES
from approxrt.profiler import detection_cache
from approxrt.scheduler.accuracy_table import knob_columns

SEGMENT_COLUMNS = TABLES["accuracy/segments"]


def gof_level(position: int, intervals: Sequence[int]) -> int | None:
    """The longest of ``intervals`` (all > 1) whose GoFs start at ``position``."""
    starting = [si for si in intervals if position % si == 0]
    return max(starting) if starting else None


def unshared_tracker_frames(frames: int, intervals: Iterable[int]) -> int:
    """Tracker frames one (tracker, downsample) costs when every si runs alone."""
    return sum(frames - math.ceil(frames / si) for si in set(intervals) if si > 1)


@dataclass
class Replay:
    """Output of every replayed branch of one kernel over one video.

    Attributes:
        frame_index: `Frame.index` of each position of the stream.
        outputs: per ``(tracker, downsample, sampling_interval)``, the boxes of
            each position (what `approxrt.loop.run_loop` would have yielded).
        tracker_frames: `MultiBranchKernel.track` calls made.
    """

    frame_index: list[int] = field(default_factory=list)
    outputs: dict[tuple[str, int, int], list[Detections]] = field(default_factory=dict)
    tracker_frames: int = 0


@dataclass
class _Run:
    """One level's kernel and the frames its current run still covers."""

    kernel: MultiBranchKernel
    last_position: int = -1


def replay_tracking(
    frames: Iterable[Frame],
    detections: Sequence[Detections],
    config: Config,
    kernel: tuple[str, DetectorKnobs],
    tracking: Sequence[tuple[str, int]],
    sampling_intervals: Sequence[int],
) -> Replay:
    """Replay every (tracker, downsample) x sampling interval > 1, sharing runs.

    Args:
        frames: the video's frames, in order (read once).
        detections: the kernel's cached detections, indexed by `Frame.index`.
        config: tracking settings (tracker factory, association, confidence).
        kernel: (detector, knobs) the detections came from; names the branches.
        tracking: (tracker, downsample) pairs to replay.
        sampling_intervals: intervals to replay; 1 is skipped (no tracker).

    Returns:
        `Replay`; outputs equal those of `run_loop` with `FixedBranch` of each
        branch, box for box (ids aside, see the module docstring).
    """
    intervals = sorted({si for si in sampling_intervals if si > 1})
    detector, knobs = kernel
    runs = {
        (tracker, ds, level): _Run(build_kernel(config, []))
        for tracker, ds in tracking
        for level in intervals
    }
    replay = Replay()
    tracked: dict[tuple[str, int, int, int], Detections] = {}
    for position, frame in enumerate(frames):
        replay.frame_index.append(frame.index)
        level = gof_level(position, intervals)
        for (tracker, ds, run_level), run in runs.items():
            if position <= run.last_position:
                boxes, _ = run.kernel.track(frame)
                tracked[tracker, ds, run_level, position] = boxes
                replay.tracker_frames += 1
            elif run_level == level:
                branch = Branch(
                    detector, knobs.input_size, knobs.proposals, level, tracker, ds
                )
                run.kernel.seed(frame, branch, detections[frame.index])
                run.last_position = position + level - 1
    _assemble(replay, tracked, detections, tracking, intervals)
    return replay


def _assemble(
    replay: Replay,
    tracked: dict[tuple[str, int, int, int], Detections],
    detections: Sequence[Detections],
    tracking: Sequence[tuple[str, int]],
    intervals: Sequence[int],
) -> None:
    """Each branch's stream: cached boxes on its GoF starts, its run's elsewhere."""
    for tracker, ds in tracking:
        for si in intervals:
            stream = []
            for position, index in enumerate(replay.frame_index):
                start = position - position % si
                if start == position:
                    stream.append(detections[index])
                else:
                    level = gof_level(start, intervals)
                    stream.append(tracked[tracker, ds, level, position])
            replay.outputs[tracker, ds, si] = stream


def segment_bounds(frames: int, segment_frames: int) -> list[tuple[int, int]]:
    """``(first, last)`` frame indices (0-based, inclusive) of each segment.

    Segments are ``segment_frames`` long. A last segment shorter than half of that
    is joined to the one before it, so every frame is scored and no segment is
    scored on less than half a segment's worth of frames; a video shorter than
    one segment is a single segment.
    """
    if frames < 1 or segment_frames < 1:
        raise ValueError(
            f"segment_bounds: expected frames >= 1 and segment_frames >= 1, got "
            f"{frames} and {segment_frames}"
        )
    starts = list(range(0, frames, segment_frames))
    if len(starts) > 1 and frames - starts[-1] < segment_frames / 2:
        starts.pop()
    ends = [*starts[1:], frames]
    return [(first, end - 1) for first, end in zip(starts, ends, strict=True)]


def load_truth(truth: dict[str, Any], frames: int) -> Detections:
    """The truth a job scores against, for frame numbers ``1..frames``.

    Args:
        truth: ``{"kind": "gt", "path": ..., "gt_format": ...}`` (a MOT gt.txt,
            or a COCO ``.json``), or ``{"kind": "reference", "path": <cache entry>,
            "min_confidence": c}``: the reference kernel's boxes at least ``c``
            confident, every one scored.
        frames: frames the video has (truth past them is dropped).
    """
    if truth["kind"] == "reference":
        found = detection_cache.read(truth["path"])
        keep = truth["min_confidence"]
        table = Detections.stack(
            (index + 1, d[d.confidence >= keep]) for index, d in enumerate(found)
        )
    elif str(truth["path"]).endswith(".json"):
        table = read_coco_gt(truth["path"])
    else:
        table = read_mot_gt(truth["path"], truth.get("gt_format", "mot15"))
    return table[table.frame <= frames]


def score_segments(
    truth: Detections,
    output: Detections,
    segments: Sequence[Sequence[int]],
    classes: Sequence[int] | None,
) -> list[tuple[float, int]]:
    """``(ap50, scored truth boxes)`` per segment; AP is NaN without truth boxes.

    AP50 is `approxrt.evaluation.evaluate_ap`'s mean over ``classes`` (default:
    the classes with scored truth in the segment), as ``approxrt eval`` reports.
    """
    scores = []
    for first, last in segments:
        gt = truth[(truth.frame > first) & (truth.frame <= last + 1)]
        found = output[(output.frame > first) & (output.frame <= last + 1)]
        scored = ~ignored(gt)
        if classes is not None:
            scored &= np.isin(gt.class_id, classes)
        scores.append(
            (evaluate_ap(gt, found, classes).mean_ap50, int(np.count_nonzero(scored)))
        )
    return scores


def score_task(
    video: str,
    source: str,
    max_frames: int | None,
    config: dict[str, Any],
    branches: list[str],
    cache: str,
    truth: dict[str, Any],
    segments: list[list[int]],
) -> dict[str, Any]:
    """Job: replay and score ``branches`` (all of one kernel and tracker, or si1).

    Returns:
        ``{"segments": <accuracy/segments rows>, "tracker_frames": n,
        "tracker_frames_unshared": m}``; the video is read only when some branch
        tracks.
    """
    settings = detection_cache.job_config(config)
    wanted = [Branch.parse(name) for name in branches]
    detections = detection_cache.read(cache)
    streams, stats = _branch_streams(source, max_frames, settings, wanted, detections)
    truth_table = load_truth(truth, len(detections))
    classes = class_ids_from_names(settings.classes) if settings.classes else None
    rows = []
    for branch in wanted:
        frame_index, stream = streams[branch]
        output = Detections.stack(
            (index + 1, d) for index, d in zip(frame_index, stream, strict=True)
        )
        scores = score_segments(truth_table, output, segments, classes)
        rows += _rows(video, branch, segments, scores, truth["label"])
    return {"segments": pd.DataFrame(rows, columns=SEGMENT_COLUMNS), **stats}


def _branch_streams(
    source: str,
    max_frames: int | None,
    config: Config,
    branches: Sequence[Branch],
    detections: list[Detections],
) -> tuple[dict[Branch, tuple[list[int], list[Detections]]], dict[str, int]]:
    """Each branch's (frame indices, per-frame output) and the tracker work done."""
    every_frame = list(range(len(detections)))
    streams = {b: (every_frame, detections) for b in branches if b.tracker is None}
    tracking = list(dict.fromkeys((b.tracker, b.downsample) for b in branches))
    tracking = [(tracker, ds) for tracker, ds in tracking if tracker is not None]
    intervals = sorted({b.sampling_interval for b in branches if b.tracker})
    stats = {"tracker_frames": 0, "tracker_frames_unshared": 0}
    if not tracking:
        return streams, stats
    first = branches[0]
    with detection_cache.open_frames(source, max_frames) as frames:
        replay = replay_tracking(
            frames, detections, config, first.kernel, tracking, intervals
        )
    for branch in branches:
        if branch.tracker is not None:
            key = (branch.tracker, branch.downsample, branch.sampling_interval)
            streams[branch] = (replay.frame_index, replay.outputs[key])
    stats["tracker_frames"] = replay.tracker_frames
    stats["tracker_frames_unshared"] = len(tracking) * unshared_tracker_frames(
        len(replay.frame_index), intervals
    )
    return streams, stats


def _rows(
    video: str,
    branch: Branch,
    segments: Sequence[Sequence[int]],
    scores: Sequence[tuple[float, int]],
    truth: str,
) -> list[dict[str, Any]]:
    return [
        {
            "video": video,
            "segment": number,
            "first_frame": int(first),
            "last_frame": int(last),
            "branch": str(branch),
            **knob_columns(branch),
            "ap50": ap50,
            "truth_boxes": truth_boxes,
            "truth": truth,
        }
        for number, ((first, last), (ap50, truth_boxes)) in enumerate(
            zip(segments, scores, strict=True)
        )
    ]
