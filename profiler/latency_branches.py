"""Whole branches end to end (`latency/branches`) and the loop's own time
(`latency/overhead`), both through the real `run_loop`.

Validation branches are spread over the space: each knob's values (kernel, sampling
interval, tracker, downsample) are tiled to the count wanted and shuffled with a
fixed seed, like a Latin hypercube, so every value appears about equally often and
the choice is the same on every run. Each runs whole groups of frames (at least
``min_frames`` frames and two GoFs, at most `MAX_FRAMES` frames unless one GoF is
longer), after one untimed detection that absorbs the switch from the previous
branch's kernel.

``objects_mean`` and ``object_size_px`` describe the boxes the tracker carried:
on detection frames those confident enough to seed it
(``tracker_min_confidence``), on tracking frames every box (they are the tracked
ones). Low-score detections kept for AP cost the tracker nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from approxrt.branch import Branch
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.branches.space import BranchSpace
from approxrt.detections import Detections
from approxrt.frame import Frame
from approxrt.loop import FixedBranch, run_loop
from approxrt.profiler.latency_cells import (
    KERNEL_STAGES,
    Cell,
    Row,
    guess_detector_ms,
    guess_tracker_ms,
)
from approxrt.result import FrameResult

MAX_FRAMES = 60
OVERHEAD_FRAMES = 40
# Boxes and size a validation run is guessed to track (progress bar only).
GUESS_OBJECTS = 16
GUESS_SIZE_PX = 100
_SEED = 0


def validation_branches(space: BranchSpace, count: int) -> list[Branch]:
    """``count`` distinct branches of ``space`` spread over every knob's values."""
    if count <= 0:
        return []
    rng = np.random.default_rng(_SEED)
    tracked = [b for b in space if b.tracker]
    knobs = [
        space.kernels,
        sorted({b.sampling_interval for b in space}),
        list(dict.fromkeys(b.tracker for b in tracked)) or [None],
        sorted({b.downsample for b in tracked}) or [1],
    ]
    columns = [_spread(values, count, rng) for values in knobs]
    chosen = dict.fromkeys(
        b
        for b in (_branch(*values) for values in zip(*columns, strict=True))
        if b in space
    )
    # Knob combinations the space lacks or repeats: top up from the rest.
    rest = [b for b in space if b not in chosen]
    for index in rng.permutation(len(rest))[: count - len(chosen)]:
        chosen[rest[index]] = None
    return list(chosen)


def _spread(values: Sequence, count: int, rng: np.random.Generator) -> list:
    tiled = [values[i % len(values)] for i in range(count)]
    return [tiled[i] for i in rng.permutation(count)]


def _branch(kernel, interval: int, tracker: str | None, downsample: int) -> Branch:
    detector, knobs = kernel
    if interval == 1 or tracker is None:
        return Branch(detector, knobs.input_size, knobs.proposals)
    return Branch(
        detector, knobs.input_size, knobs.proposals, interval, tracker, downsample
    )


def validation_frame_count(sampling_interval: int, min_frames: int) -> int:
    """Frames of whole GoFs: >= ``min_frames`` and 2 GoFs, within `MAX_FRAMES`."""
    gofs = max(2, math.ceil(min_frames / sampling_interval))
    cap = max(min_frames, MAX_FRAMES)
    return sampling_interval * max(1, min(gofs, cap // sampling_interval))


def validation_cells(
    kernel: MultiBranchKernel,
    branches: Sequence[Branch],
    clips: dict[str, Callable[[], Sequence[Frame]]],
    min_frames: int,
    min_confidence: float,
) -> list[Cell]:
    """One cell per branch x clip (name -> its frames, enough for every branch)."""
    return [
        _validation_cell(kernel, branch, name, frames, min_frames, min_confidence)
        for name, frames in clips.items()
        for branch in branches
    ]


def _validation_cell(
    kernel: MultiBranchKernel,
    branch: Branch,
    name: str,
    frames: Callable[[], Sequence[Frame]],
    min_frames: int,
    min_confidence: float,
) -> Cell:
    count = validation_frame_count(branch.sampling_interval, min_frames)

    def measure() -> list[Row]:
        return [_branch_row(kernel, branch, name, frames()[:count], min_confidence)]

    tracked = (branch.sampling_interval - 1) / branch.sampling_interval
    per_frame_ms = guess_detector_ms(branch.knobs) / branch.sampling_interval + (
        tracked * guess_tracker_ms(GUESS_OBJECTS, GUESS_SIZE_PX, branch.downsample)
    )
    short = "crowd" if name.startswith("synthetic:") else Path(name).name
    return Cell(
        "latency/branches", f"{branch} on {short}", measure, count * per_frame_ms
    )


def _run(
    kernel: MultiBranchKernel, branch: Branch, frames: Sequence[Frame]
) -> list[FrameResult]:
    kernel.reset()
    # Frames as a stream gives them: nothing derived from them by an earlier run.
    frames = [frame.fresh() for frame in frames]
    kernel.run_detector(frames[0], branch)  # the switch into this branch's kernel
    return list(run_loop(frames, kernel, FixedBranch(branch)))


def _branch_row(
    kernel: MultiBranchKernel,
    branch: Branch,
    scene: str,
    frames: Sequence[Frame],
    min_confidence: float,
) -> Row:
    results = _run(kernel, branch, frames)
    latency_ms = np.array([r.latency_ms for r in results])
    detected = np.array([r.detected for r in results])
    carried = [_carried(r, min_confidence) for r in results]
    areas = np.concatenate([c.area for c in carried])
    return {
        "branch": str(branch),
        "scene": scene,
        "frame_w": frames[0].width,
        "frame_h": frames[0].height,
        "objects_mean": float(np.mean([len(c) for c in carried])),
        "object_size_px": float(np.sqrt(areas.mean())) if len(areas) else 0.0,
        "detect_frame_ms": float(latency_ms[detected].mean()),
        "track_frame_ms": float(latency_ms[~detected].mean())
        if (~detected).any()
        else 0.0,
        "gof_mean_ms": gof_mean_ms(latency_ms, detected, branch.sampling_interval),
    }


def _carried(result: FrameResult, min_confidence: float) -> Detections:
    boxes = result.detections
    return boxes[boxes.confidence >= min_confidence] if result.detected else boxes


def gof_mean_ms(
    latency_ms: np.ndarray, detected: np.ndarray, sampling_interval: int
) -> float:
    """Mean over whole GoFs (a detection frame and its tracked frames) of their
    per-frame mean latency; a GoF cut short by the end of the clip is left out."""
    starts = np.flatnonzero(detected)
    ends = [*starts[1:], len(latency_ms)]
    means = [
        latency_ms[start:end].mean()
        for start, end in zip(starts, ends, strict=True)
        if end - start == sampling_interval
    ]
    if not means:
        raise ValueError(
            f"gof_mean_ms: no whole group of {sampling_interval} frames in "
            f"{len(latency_ms)} frames"
        )
    return float(np.mean(means))


def overhead_branch(space: BranchSpace) -> Branch:
    """A cheap branch with tracking frames: smallest input, shortest GoF > 1."""
    tracked = [b for b in space if b.tracker] or list(space)
    return min(
        tracked,
        key=lambda b: (b.input_size, b.sampling_interval, -b.downsample, str(b)),
    )


def overhead_cells(
    kernel: MultiBranchKernel, branch: Branch, frames: Sequence[Frame]
) -> list[Cell]:
    """One loop run of ``branch``: the loop's own ms on every frame."""

    def measure() -> list[Row]:
        return [
            {
                "detected": result.detected,
                "ms": result.latency_ms
                - sum(result.timings_ms[stage] for stage in KERNEL_STAGES),
            }
            for result in _run(kernel, branch, frames)
        ]

    return [Cell("latency/overhead", f"loop of {branch}", measure, len(frames) * 10.0)]
