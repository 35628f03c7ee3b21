"""The frame loop: groups of frames, one branch per group, every stage timed.

In outline, for each frame::

    if the group of frames is over:  branch = policy.choose(frame)   # schedule
    if first frame of the group:      detections = kernel.detect(frame, branch)
    else:                             detections = kernel.track(frame)
    yield FrameResult(frame, detections, branch, timings_ms, latency_ms)

Drawing, saving and every other sink run on what is yielded, outside the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from time import perf_counter
from typing import Protocol

from approxrt.branch import Branch
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.frame import Frame
from approxrt.result import STAGES, FrameResult


class BranchPolicy(Protocol):
    """Chooses the branch for the group of frames that starts at ``frame``."""

    def choose(self, frame: Frame) -> Branch: ...


class FixedBranch:
    """Always the same branch: the fixed-configuration baseline."""

    def __init__(self, branch: Branch) -> None:
        self.branch = branch

    def choose(self, frame: Frame) -> Branch:
        return self.branch


class BranchSchedule:
    """A scripted sequence ``{first_frame_index: branch}`` (tests, benchmarks).

    A switch takes effect at the first group of frames starting at or after it.
    """

    def __init__(self, switches: dict[int, Branch]) -> None:
        if 0 not in switches:
            raise ValueError("BranchSchedule: switches must include frame index 0")
        self.switches = sorted(switches.items())

    def choose(self, frame: Frame) -> Branch:
        current = self.switches[0][1]
        for first_index, branch in self.switches:
            if frame.index >= first_index:
                current = branch
        return current


FrameErrorHandler = Callable[[Frame, Exception], None]


def run_loop(
    frames: Iterable[Frame],
    kernel: MultiBranchKernel,
    policy: BranchPolicy,
    sla_ms: float | None = None,
    on_error: FrameErrorHandler | None = None,
) -> Iterator[FrameResult]:
    """Process ``frames`` group by group; yields one `FrameResult` per frame.

    A frame whose processing raises is handed to ``on_error`` (default: re-raise)
    and skipped; the next frame then starts a new group of frames, so one bad
    frame never ends the stream.
    """
    frames_left_in_group = 0
    for frame in frames:
        try:
            result = _process(frame, kernel, policy, frames_left_in_group, sla_ms)
        except Exception as error:
            if on_error is None:
                raise
            on_error(frame, error)
            frames_left_in_group = 0
            continue
        frames_left_in_group = (
            result.branch.sampling_interval if result.detected else frames_left_in_group
        ) - 1
        yield result


def _process(
    frame: Frame,
    kernel: MultiBranchKernel,
    policy: BranchPolicy,
    frames_left_in_group: int,
    sla_ms: float | None,
) -> FrameResult:
    start = perf_counter()
    timings_ms = dict.fromkeys(STAGES, 0.0)
    timings_ms["decode"] = frame.decode_ms
    detected = frames_left_in_group == 0
    if detected:
        branch = policy.choose(frame)
        timings_ms["schedule"] = (perf_counter() - start) * 1e3
        detections, stage_ms = kernel.detect(frame, branch)
    else:
        detections, stage_ms = kernel.track(frame)
    timings_ms.update(stage_ms)
    latency_ms = (perf_counter() - start) * 1e3
    return FrameResult(
        frame,
        detections,
        kernel.branch,
        detected,
        timings_ms,
        latency_ms,
        sla_ms=sla_ms,
        weights=kernel.weights,
    )
