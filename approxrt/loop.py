"""The frame loop: groups of frames, one branch per group, every stage timed.

In outline, for each frame::

    if the group of frames is over:  decision = policy.decide(context)   # schedule
    if first frame of the group:      detections = kernel.detect(frame, decision.branch)
    else:                             detections = kernel.track(frame)
    result = FrameResult(frame, detections, branch, timings_ms, latency_ms, ...)
    policy.observe(result); yield result

The context holds the SLA in force (which may change between groups), the
running branch and the recent results. Drawing, saving and every other sink run
on what is yielded, outside the loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from time import perf_counter

from approxrt.branch import Branch
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.decision import BranchPolicy, Decision, DecisionContext
from approxrt.frame import Frame
from approxrt.result import STAGES, FrameResult

__all__ = ["BranchPolicy", "BranchSchedule", "FixedBranch", "run_loop"]

# Results a policy sees in its context: enough for a few groups of frames.
RECENT_RESULTS = 64


class FixedBranch:
    """Always the same branch: the fixed-configuration baseline."""

    def __init__(self, branch: Branch) -> None:
        self.branch = branch

    def decide(self, context: DecisionContext) -> Decision:
        return Decision(self.branch)

    def observe(self, result: FrameResult) -> None:
        pass


class BranchSchedule:
    """A scripted sequence ``{first_frame_index: branch}`` (tests, benchmarks).

    A switch takes effect at the first group of frames starting at or after it.
    """

    def __init__(self, switches: dict[int, Branch]) -> None:
        if 0 not in switches:
            raise ValueError("BranchSchedule: switches must include frame index 0")
        self.switches = sorted(switches.items())

    def decide(self, context: DecisionContext) -> Decision:
        current = self.switches[0][1]
        for first_index, branch in self.switches:
            if context.frame.index >= first_index:
                current = branch
        return Decision(current)

    def observe(self, result: FrameResult) -> None:
        pass


FrameErrorHandler = Callable[[Frame, Exception], None]
SlaMs = float | None | Callable[[], float | None]


def run_loop(
    frames: Iterable[Frame],
    kernel: MultiBranchKernel,
    policy: BranchPolicy,
    sla_ms: SlaMs = None,
    on_error: FrameErrorHandler | None = None,
) -> Iterator[FrameResult]:
    """Process ``frames`` group by group; yields one `FrameResult` per frame.

    ``sla_ms`` is a number, None, or a function read at every frame (so a
    caller can change the SLA while the loop runs). A frame whose processing
    raises is handed to ``on_error`` (default: re-raise) and skipped; the next
    frame then starts a new group of frames, so one bad frame never ends the
    stream.
    """
    sla_now = sla_ms if callable(sla_ms) else (lambda: sla_ms)
    recent: deque[FrameResult] = deque(maxlen=RECENT_RESULTS)
    decision: Decision | None = None
    frames_left_in_group = 0
    for frame in frames:
        try:
            detected = frames_left_in_group == 0
            schedule_ms = 0.0
            if detected:
                context = DecisionContext(frame, sla_now(), kernel.branch, recent)
                start = perf_counter()
                decision = policy.decide(context)
                schedule_ms = (perf_counter() - start) * 1e3
            result = _process(frame, kernel, decision, detected, schedule_ms, sla_now())
        except Exception as error:
            if on_error is None:
                raise
            on_error(frame, error)
            frames_left_in_group = 0
            continue
        frames_left_in_group = (
            result.branch.sampling_interval if result.detected else frames_left_in_group
        ) - 1
        recent.append(result)
        policy.observe(result)
        yield result


def _process(
    frame: Frame,
    kernel: MultiBranchKernel,
    decision: Decision,
    detected: bool,
    schedule_ms: float,
    sla_ms: float | None,
) -> FrameResult:
    start = perf_counter()
    if detected:
        detections, stage_ms = kernel.detect(frame, decision.branch)
    else:
        detections, stage_ms = kernel.track(frame)
    timings_ms = dict.fromkeys(STAGES, 0.0)
    timings_ms.update(stage_ms, decode=frame.decode_ms, schedule=schedule_ms)
    # The decision's time is part of the frame's latency: the SLA pays for it.
    latency_ms = (perf_counter() - start) * 1e3 + schedule_ms
    return FrameResult(
        frame,
        detections,
        kernel.branch,
        detected,
        timings_ms,
        latency_ms,
        sla_ms=sla_ms,
        weights=kernel.weights,
        contention=dict(decision.contention) if decision.contention else None,
        predicted=decision.predicted(),
    )
