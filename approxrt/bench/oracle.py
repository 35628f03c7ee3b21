"""The hindsight baselines: measured latency per frame, accuracy per segment.

For each stream and contention scenario, `record_trace` runs every candidate
kernel on every frame and every candidate tracker (seeded by the default
kernel), as fast as the device goes, with the scenario's contention applied at
each frame's time on the camera clock: what each part costs at each moment.
`offline_outputs` runs every oracle candidate once without contention: what each
branch outputs on each frame, and so its AP50 per segment. The oracle
(`approxrt.scheduler.simulator.oracle`) then picks, per group of frames, the
most accurate candidate whose measured mean latency fits; its AP50 is scored on
the outputs it stitches together, like every other policy's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from approxrt.bench.streams import BenchVideo, detections_table
from approxrt.branch import Branch
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.detections import Detections
from approxrt.evaluation.ap import evaluate_ap
from approxrt.evaluation.timing import OutputTimes
from approxrt.loop import FixedBranch, run_loop
from approxrt.scheduler.latency_components import branch_kernel
from approxrt.scheduler.simulator import RecordedTrace, Simulation, simulate

Outputs = dict[str, list[Detections]]


def offline_outputs(
    video: BenchVideo, kernel: MultiBranchKernel, branches: Sequence[Branch]
) -> Outputs:
    """Every branch's detections on every frame, on an idle device."""
    outputs = {}
    for branch in tqdm(branches, desc=f"{video.name}: oracle candidates", leave=False):
        kernel.reset()
        results = run_loop(video.frames, kernel, FixedBranch(branch))
        outputs[str(branch)] = [r.detections for r in results]
    return outputs


def segment_accuracy(
    video: BenchVideo, outputs: Outputs, segment_frames: int
) -> dict[str, np.ndarray]:
    """Each branch's AP50 on the segment around each frame, ``(frames,)``."""
    frames = len(video.frames)
    starts = range(0, frames, segment_frames)
    accuracy = {}
    for name, detections in outputs.items():
        per_frame = np.zeros(frames)
        for start in starts:
            end = min(start + segment_frames, frames)
            table = detections_table(
                [(i + 1, detections[i]) for i in range(start, end)]
            )
            truth = video.gt[(video.gt.frame > start) & (video.gt.frame <= end)]
            per_frame[start:end] = evaluate_ap(truth, table, video.class_ids).mean_ap50
        accuracy[name] = np.nan_to_num(per_frame)
    return accuracy


def record_trace(
    video: BenchVideo,
    kernel: MultiBranchKernel,
    candidates: Sequence[Branch],
    seeding: Branch,
    driver_for,
    camera_fps: float,
    accuracy: dict[str, np.ndarray],
) -> RecordedTrace:
    """Measured ms per frame of every kernel and tracker ``candidates`` use.

    ``driver_for()`` gives a fresh contention driver for each recorded pass;
    ``seeding`` is the detector every tracker is seeded by.
    """
    kernels = {branch_kernel(b): b for b in candidates}
    trackers = {(b.tracker, b.downsample) for b in candidates if b.tracker}
    detect_ms = {
        name: _latencies(
            video,
            kernel,
            Branch(b.detector, b.input_size, b.proposals),
            driver_for,
            camera_fps,
        )[0]
        for name, b in tqdm(kernels.items(), desc="record kernels", leave=False)
    }
    seed_ms, track_ms = {}, {}
    for kind, ds in tqdm(sorted(trackers), desc="record trackers", leave=False):
        branch = Branch(
            seeding.detector, seeding.input_size, seeding.proposals, 4, kind, ds
        )
        latency, seed = _latencies(video, kernel, branch, driver_for, camera_fps)
        key = f"{kind}/ds{ds}"
        detected = ~np.isnan(seed)
        seed_ms[key] = _filled(np.where(detected, seed, np.nan))
        track_ms[key] = _filled(np.where(detected, np.nan, latency))
    counts = np.bincount(video.gt.frame - 1, minlength=len(video.frames))
    return RecordedTrace(
        frame_wh=(video.frames[0].width, video.frames[0].height),
        detect_ms=detect_ms,
        seed_ms=seed_ms,
        track_ms=track_ms,
        accuracy=accuracy,
        objects=counts[: len(video.frames)].astype(np.float64),
        object_size_px=np.full(len(video.frames), 60.0),
        object_speed_px=np.zeros(len(video.frames)),
        contention=np.zeros((len(video.frames), 3)),
    )


def _latencies(video, kernel, branch, driver_for, camera_fps):
    """Per frame: latency, and the seeding ms on detection frames (else NaN)."""
    kernel.reset()
    with driver_for() as driver:

        def frames():
            for frame in video.frames:
                driver.advance(frame.index / camera_fps)
                yield frame

        results = list(run_loop(frames(), kernel, FixedBranch(branch)))
    latency = np.array([r.latency_ms for r in results])
    seed = np.array([r.timings_ms["track"] if r.detected else np.nan for r in results])
    return latency, seed


def _filled(values: np.ndarray) -> np.ndarray:
    """NaNs replaced by the nearest earlier value (the first by the next)."""
    index = np.where(np.isnan(values), 0, np.arange(len(values)))
    np.maximum.accumulate(index, out=index)
    filled = values[index]
    first = np.flatnonzero(~np.isnan(values))
    return np.where(np.isnan(filled), values[first[0]], filled)


def stitched_outputs(
    simulation: Simulation, outputs: Outputs
) -> list[tuple[int, Detections]]:
    """The oracle's output per frame: that frame's from the branch it chose."""
    return [
        (i + 1, outputs[str(branch)][i]) for i, branch in enumerate(simulation.branch)
    ]


def compute_times(latency_ms: Sequence[float]) -> OutputTimes:
    """Each frame's compute time, for streaming AP50 on a camera queue
    (`approxrt.evaluation.streaming.queued_finish_times`)."""
    frames = len(latency_ms)
    return OutputTimes(
        np.arange(1, frames + 1), np.asarray(latency_ms) / 1e3, np.zeros(frames)
    )


def best_static(
    trace: RecordedTrace,
    outputs: Outputs,
    video: BenchVideo,
    candidates: Sequence[Branch],
    sla_ms: float,
) -> Branch | None:
    """The most accurate candidate (whole-stream AP50) whose measured mean
    latency per group stays within ``sla_ms`` in 99 % of groups, idle device."""
    best, best_ap = None, -1.0
    for branch in candidates:
        groups = simulate(FixedBranch(branch), trace, sla_ms).summary()
        if groups["groups_over_sla"] > 0.01:
            continue
        table = detections_table(
            [(i + 1, d) for i, d in enumerate(outputs[str(branch)])]
        )
        ap = evaluate_ap(video.gt, table, video.class_ids).mean_ap50
        if ap > best_ap:
            best, best_ap = branch, ap
    return best
