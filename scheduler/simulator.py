"""Trace replay: a scheduler against recorded latencies, without running a model.

A `RecordedTrace` holds, for every frame of a stream, what each part of the
branch space measured there: the ms of a detection frame of each detector
kernel, of a tracking frame of each (tracker, ds), the scene's content, the
contention in force and each branch's accuracy. `simulate` runs a policy over
it exactly as the frame loop would (same decision contract, same results handed
back), taking each frame's latency from the trace: deterministic and thousands
of frames a second, so scheduling behaviour — a contention step, an SLA change,
a crowd entering — is tested exactly. `oracle` is the hindsight baseline: per
group of frames, the most accurate branch whose measured mean latency fits.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np

from approxrt.branch import Branch
from approxrt.contention import ContentionLevels
from approxrt.decision import BranchPolicy, Decision, DecisionContext
from approxrt.detections import Detections
from approxrt.frame import Frame
from approxrt.result import STAGES, FrameResult
from approxrt.scheduler.latency_components import branch_kernel, tracker_key
from approxrt.stats import judged_groups


@dataclass(frozen=True)
class RecordedTrace:
    """Per-frame measurements of a stream (every array has one row per frame).

    Attributes:
        frame_wh: the stream's frame (width, height).
        detect_ms: ``{kernel name: (n,)}`` ms of a detection frame of that kernel
            (detector, association, seeding and loop overhead), e.g.
            ``"yolox_nano/s416"``.
        seed_ms: ``{"<tracker>/ds<k>": (n,)}`` ms a detection frame adds when it
            seeds that tracker.
        track_ms: ``{"<tracker>/ds<k>": (n,)}`` ms of a tracking frame.
        accuracy: ``{branch name: (n,)}`` the branch's accuracy around each frame
            (e.g. its AP50 on the segment holding the frame).
        objects, object_size_px, object_speed_px: ``(n,)`` the scene's content.
        contention: ``(n, 3)`` cpu, membw_mbps, gpu_pct in force (what an OS
            sensor would read; zero where a load is invisible to the OS).
        switch_ms: ms added to a detection frame whose kernel differs from the
            previous group's.
        seen: ``{kernel name: (n,)}`` the share of the scene's objects that
            kernel's detector keeps (1 for a kernel not named): a detector blind
            to a scene (yolox_nano s224 in a crowd) hands back fewer boxes.
        tracking_kept: ``{"<tracker>/ds<k>": (n,)}`` the share of its boxes that
            tracker still holds after each frame it tracks (1 for one not named):
            ``k`` frames after its detection frame it hands back that share to
            the power ``k`` of the detected boxes (a crowd loses tracks).
    """

    frame_wh: tuple[int, int]
    detect_ms: Mapping[str, np.ndarray]
    seed_ms: Mapping[str, np.ndarray]
    track_ms: Mapping[str, np.ndarray]
    accuracy: Mapping[str, np.ndarray]
    objects: np.ndarray
    object_size_px: np.ndarray
    object_speed_px: np.ndarray
    contention: np.ndarray
    switch_ms: float = 0.0
    seen: Mapping[str, np.ndarray] = field(default_factory=dict)
    tracking_kept: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.objects)

    def frame_ms(self, branch: Branch, index: int, detected: bool) -> float:
        """Measured ms of ``branch`` at frame ``index``; a `KeyError` names what
        the trace lacks."""
        if not detected:
            track_ms = self._series(self.track_ms, tracker_key(branch), branch)
            return float(track_ms[index])
        ms = float(self._series(self.detect_ms, branch_kernel(branch), branch)[index])
        return ms + self.frame_seed_ms(branch, index)

    def frame_seed_ms(self, branch: Branch, index: int) -> float:
        """The seeding's share of ``branch``'s detection frame ``index``."""
        if not branch.tracker or branch.sampling_interval == 1:
            return 0.0
        return float(self._series(self.seed_ms, tracker_key(branch), branch)[index])

    def accuracy_at(self, branch: Branch, index: int) -> float:
        return float(self._series(self.accuracy, str(branch), branch)[index])

    @staticmethod
    def _series(table: Mapping[str, np.ndarray], key: str, branch: Branch):
        if key not in table:
            raise KeyError(f"trace: no {key!r} (needed by branch {branch})")
        return table[key]


class TraceSensor:
    """A contention sensor reading the trace's levels at the simulated frame."""

    def __init__(self, trace: RecordedTrace) -> None:
        self.trace = trace
        self.index = 0

    def sense(self) -> ContentionLevels:
        return ContentionLevels(*(float(v) for v in self.trace.contention[self.index]))


@dataclass
class Simulation:
    """What a policy did over a trace, frame by frame.

    ``sla_ms`` is the SLA in force at each frame; a group of frames is over the
    SLA when its mean latency exceeds the SLA at its first frame.
    """

    branch: list[Branch] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    sla_ms: list[float] = field(default_factory=list)
    decision_ms: list[float] = field(default_factory=list)

    def groups(self) -> list[tuple[int, int, float]]:
        """``(first, end, mean_ms)`` of every group of frames held to the SLA
        (`judged_groups`: a group the trace's end cut short is left out)."""
        latency = np.asarray(self.latency_ms)
        bounds = judged_groups(
            self.detected, lambda first: self.branch[first].sampling_interval
        )
        return [(a, b, float(latency[a:b].mean())) for a, b in bounds]

    def summary(self) -> dict[str, float]:
        groups = self.groups()
        sla = np.asarray(self.sla_ms, np.float64)
        over = [mean > sla[a] for a, _, mean in groups]
        return {
            "frames": len(self.latency_ms),
            "groups": len(groups),
            "groups_over_sla": float(np.mean(over)) if groups else 0.0,
            "frames_over_sla": float(np.mean(np.asarray(self.latency_ms) > sla)),
            "mean_accuracy": float(np.mean(self.accuracy)),
            "mean_latency_ms": float(np.mean(self.latency_ms)),
            "switches": sum(
                self.branch[a] != self.branch[b]
                for (a, _, _), (b, _, _) in itertools.pairwise(groups)
            ),
            "decision_ms": float(np.mean(self.decision_ms))
            if self.decision_ms
            else 0.0,
        }


SlaTrace = float | Sequence[float] | np.ndarray


def simulate(
    policy: BranchPolicy,
    trace: RecordedTrace,
    sla_ms: SlaTrace,
    sensor: TraceSensor | None = None,
) -> Simulation:
    """Run ``policy`` over ``trace`` as the frame loop would.

    ``sla_ms`` is one number or one per frame (an SLA change). ``sensor``, when
    the policy was built with it, is moved to each frame before deciding.
    The decision's own time is measured and reported, not added to latency,
    so a simulation is exactly repeatable.
    """
    sla = _per_frame(sla_ms, len(trace))
    out = Simulation()
    recent: list[FrameResult] = []
    running: Branch | None = None
    left = tracked = 0
    image = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (*trace.frame_wh[::-1], 3))
    for i in range(len(trace)):
        frame = Frame(image, i, float(i))
        detected = left == 0
        if detected:
            if sensor is not None:
                sensor.index = i
            context = DecisionContext(frame, float(sla[i]), running, recent[-64:])
            start = perf_counter()
            decision: Decision = policy.decide(context)
            out.decision_ms.append((perf_counter() - start) * 1e3)
            switched = running is not None and branch_kernel(running) != branch_kernel(
                decision.branch
            )
            running, left = decision.branch, decision.branch.sampling_interval
        tracked = 0 if detected else tracked + 1
        ms = trace.frame_ms(running, i, detected)
        if detected and switched:
            ms += trace.switch_ms
        left -= 1
        result = FrameResult(
            frame,
            _scene(trace, i, running, tracked),
            running,
            detected,
            _timings(trace.frame_seed_ms(running, i) if detected else ms),
            ms,
            float(sla[i]),
        )
        recent.append(result)
        policy.observe(result)
        _record(out, running, detected, ms, trace.accuracy_at(running, i), sla[i])
    return out


def oracle(
    trace: RecordedTrace, branches: Sequence[Branch], sla_ms: SlaTrace
) -> Simulation:
    """With hindsight: per group of frames, the most accurate branch whose
    measured mean latency over the group fits the SLA (the fastest when none
    does). Switching costs are paid as they fall."""
    sla = _per_frame(sla_ms, len(trace))
    out = Simulation()
    i, previous = 0, None
    while i < len(trace):
        best, best_key = None, None
        for branch in branches:
            end = min(i + branch.sampling_interval, len(trace))
            ms = _group_ms(trace, branch, i, end, previous)
            acc = np.mean([trace.accuracy_at(branch, j) for j in range(i, end)])
            fits = np.mean(ms) <= sla[i]
            key = (fits, acc if fits else -np.mean(ms), -np.mean(ms))
            if best_key is None or key > best_key:
                best, best_key, best_ms = branch, key, ms
        for offset, ms in enumerate(best_ms):
            j = i + offset
            _record(out, best, offset == 0, ms, trace.accuracy_at(best, j), sla[j])
        i, previous = i + len(best_ms), best
    return out


def _group_ms(trace, branch, first, end, previous) -> list[float]:
    ms = [trace.frame_ms(branch, j, j == first) for j in range(first, end)]
    if previous is not None and branch_kernel(previous) != branch_kernel(branch):
        ms[0] += trace.switch_ms
    return ms


def _record(out: Simulation, branch, detected, ms, accuracy, sla) -> None:
    out.branch.append(branch)
    out.detected.append(detected)
    out.latency_ms.append(float(ms))
    out.accuracy.append(float(accuracy))
    out.sla_ms.append(float(sla))


def _per_frame(sla_ms: SlaTrace, frames: int) -> np.ndarray:
    sla = np.broadcast_to(np.asarray(sla_ms, np.float64), (frames,))
    if sla.shape != (frames,):
        raise ValueError(f"sla_ms: expected one number or {frames}, got {sla.shape}")
    return sla


def _timings(track_ms: float) -> dict[str, float]:
    """The stages as the loop reports them: on a detection frame "track" is the
    seeding, on a tracking frame the update (the rest is left at 0)."""
    return {**dict.fromkeys(STAGES, 0.0), "track": track_ms}


def _scene(
    trace: RecordedTrace, index: int, branch: Branch, tracked: int
) -> Detections:
    """The trace's content as ``branch`` outputs it ``tracked`` frames after its
    detection frame: the share of ``objects`` its kernel keeps, and of those the
    share its tracker still holds; boxes of the recorded size moving right at
    the recorded speed, each keeping its track id."""
    seen = trace.seen.get(branch_kernel(branch))
    share = 1.0 if seen is None else float(seen[index])
    kept = trace.tracking_kept.get(tracker_key(branch)) if tracked else None
    if kept is not None:
        share *= float(kept[index]) ** tracked
    count = round(float(trace.objects[index]) * share)
    side = float(trace.object_size_px[index])
    ids = np.arange(1, count + 1)
    x = (ids * 1.5 * side + index * trace.object_speed_px[index]) % trace.frame_wh[0]
    y = (ids % 5) * side
    xyxy = np.stack([x, y, x + side, y + side], axis=1).astype(np.float32)
    return Detections(xyxy, np.full(count, 0.9, np.float32), np.zeros(count), ids)
