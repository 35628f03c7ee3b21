"""The benchmark's streams: frames in memory, ground truth, paced replay, scores.

Every policy runs on the same frames, delivered as a camera would
(`approxrt.sources.realtime.RealtimeSource` at ``camera_fps``: a busy runtime
gets the newest frame), and is scored the same way: offline AP50 on the frames
it processed, streaming AP50 on the camera's clock, latency per frame and per
group of frames against the SLA.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from approxrt.bench.scenario import VideoSpec, resolve
from approxrt.branch import Branch
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.classes import class_ids_from_names
from approxrt.decision import BranchPolicy
from approxrt.detections import Detections
from approxrt.evaluation.ap import evaluate_ap
from approxrt.evaluation.mot_io import read_mot_gt
from approxrt.evaluation.streaming import streaming_ap50
from approxrt.evaluation.timing import OutputTimes
from approxrt.frame import Frame
from approxrt.loop import run_loop
from approxrt.result import FrameResult
from approxrt.sources import open_source
from approxrt.sources.base import Source
from approxrt.sources.realtime import RealtimeSource, stamp_finish_times
from approxrt.sources.synthetic import SyntheticScene
from approxrt.stats import judged_groups


@dataclass
class BenchVideo:
    """One stream of the benchmark, decoded once and replayed for every run."""

    name: str
    frames: list[Frame]
    gt: Detections
    class_ids: list[int]
    classes: list[str]


def load_video(spec: VideoSpec, base: Path) -> BenchVideo:
    source = resolve(base, spec.source)
    with open_source(source) as reader:
        frames = list(itertools.islice(reader, spec.max_frames))
    if not frames:
        raise ValueError(f"video {spec.name}: {source} gave no frames")
    if spec.gt is not None:
        gt = read_mot_gt(resolve(base, spec.gt))
        gt = gt[gt.frame <= len(frames)]
    elif source.startswith("synthetic:"):
        scene = SyntheticScene.from_spec(source)
        gt = Detections.stack(
            (i + 1, scene.ground_truth(i)) for i in range(len(frames))
        )
    else:
        raise ValueError(f"video {spec.name}: give gt (a MOTChallenge gt.txt)")
    ids = class_ids_from_names(spec.classes)
    return BenchVideo(spec.name, frames, gt, ids, list(spec.classes))


class MemorySource(Source):
    """Decoded frames, timed as if they came at ``fps`` (a camera's rate)."""

    def __init__(self, frames: Sequence[Frame], fps: float, source_id: str) -> None:
        super().__init__(source_id)
        self._frames = iter(frames)
        self.fps = fps
        self.frame_count = len(frames)
        self.height, self.width = frames[0].image.shape[:2]

    def _read_next(self) -> Frame | None:
        frame = next(self._frames, None)
        if frame is None:
            return None
        return dataclasses.replace(frame, timestamp_s=frame.index / self.fps)

    def _release(self) -> None:
        pass


@dataclass
class Run:
    """One policy's pass over a stream: its results and its dropped frames."""

    results: list[FrameResult]
    dropped_frames: int
    first_index: int  # the frame that arrived at 0 on the stream clock


def paced_run(
    video: BenchVideo,
    kernel: MultiBranchKernel,
    policy: BranchPolicy,
    sla_ms: float | None,
    camera_fps: float,
    driver,
) -> Run:
    """``policy`` over ``video`` delivered at ``camera_fps``, ``driver``
    applying contention on the stream clock."""
    kernel.reset()
    source = RealtimeSource(MemorySource(video.frames, camera_fps, video.name))
    clock = source.clock
    driver.follow(lambda: clock.now_s() if clock.started else None)
    with source:
        results = list(
            stamp_finish_times(run_loop(source, kernel, policy, sla_ms), clock)
        )
    return Run(results, source.dropped_frames, source.first_index or 0)


def detections_table(outputs: Sequence[tuple[int, Detections]]) -> Detections:
    """``(frame_number, detections)`` pairs as the evaluation's table."""
    return Detections.stack(outputs)


def score(run: Run, video: BenchVideo, sla_ms: float, camera_fps: float) -> dict:
    """Accuracy and latency of ``run`` against ``video``'s truth and ``sla_ms``."""
    results = run.results
    outputs = [(r.frame.index + 1, r.detections) for r in results]
    table = detections_table(outputs)
    processed = np.array([number for number, _ in outputs])
    gt_seen = video.gt[np.isin(video.gt.frame, processed)]
    ap50 = evaluate_ap(gt_seen, table, video.class_ids).mean_ap50
    times = OutputTimes.from_frame_results(results)
    streaming = streaming_ap50(
        video.gt,
        table,
        times,
        camera_fps,
        video.class_ids,
        first_frame=run.first_index + 1,
    )
    return {
        "ap50": ap50,
        "streaming_ap50": streaming.mean_ap50,
        **latency_scores(
            [r.latency_ms for r in results],
            [r.detected for r in results],
            [str(r.branch) for r in results],
            [r.timings_ms["schedule"] for r in results if r.detected],
            sla_ms,
        ),
        "dropped_frames": run.dropped_frames,
    }


def latency_scores(
    latency_ms: Sequence[float],
    detected: Sequence[bool],
    branches: Sequence[str],
    schedule_ms: Sequence[float],
    sla_ms: float,
) -> dict:
    """Latency per frame and per group of frames (`judged_groups`: from one
    detection frame to the next, a last one cut short by the stream's end left
    out) against ``sla_ms``; ``schedule_ms`` per decision."""
    latency = np.asarray(latency_ms, np.float64)
    bounds = judged_groups(
        detected, lambda first: Branch.parse(branches[first]).sampling_interval
    )
    groups = np.array([latency[a:b].mean() for a, b in bounds])
    chosen = [branches[a] for a, _ in bounds]
    return {
        "frames": len(latency),
        "mean_ms": float(latency.mean()),
        "p95_ms": float(np.percentile(latency, 95)),
        "p99_ms": float(np.percentile(latency, 99)),
        "gof_mean_p95_ms": float(np.percentile(groups, 95)),
        "groups_over_sla": float(np.mean(groups > sla_ms)),
        "frames_over_sla": float(np.mean(latency > sla_ms)),
        "switches": sum(a != b for a, b in itertools.pairwise(chosen)),
        "scheduler_ms": float(np.mean(schedule_ms)) if len(schedule_ms) else 0.0,
        "branches_used": len(set(chosen)),
        "top_branches": top_branches(branches),
    }


def top_branches(branches: Sequence[str], count: int = 3) -> str:
    """The ``count`` branches that ran the most frames, with their share:
    ``"yolox_nano/s416/si1 62%; fastestdet/s352/si1 20%"``."""
    frames = collections.Counter(branches).most_common(count)
    return "; ".join(f"{b} {n / len(branches):.0%}" for b, n in frames)
