"""The plan of the running group of frames, and each frame charged against it.

`AdaptivePolicy` decides; this module keeps what it predicted for the group it
chose (`GroupPlan`, from `plan_group`) and, frame by frame, hands the measured
parts and their raw predictions to `LatencyFeedback` (`charge_frame`), so the
next decision corrects the right part: the detector, a tracker's seeding, or its
tracking frames.
"""

from __future__ import annotations

from dataclasses import dataclass

from approxrt.result import FrameResult
from approxrt.scheduler.feedback import DETECT, LatencyFeedback, seed_key


@dataclass(frozen=True)
class GroupPlan:
    """What was predicted for the running group, to compare with what happens."""

    index: int
    objects: float  # the content it was predicted for
    detect_ms: float  # raw (uncorrected) detection frame but for seeding, switch
    switch_ms: float  # raw cost of switching into its kernel (0: no switch)
    seed_ms: float  # raw seeding of its tracker on the detection frame
    track_ms: float  # raw prediction of one of its tracking frames
    detect_ms_per_object: float  # how each changes with one more object, so
    seed_ms_per_object: float  # a frame is judged by the content it really
    track_ms_per_object: float  # had
    planned_mean_ms: float  # corrected mean over the group, as planned
    slowdown: float = 1.0  # planned slowdown from sibling streams (DeviceShare)

    def raw_ms(self, part: str, objects: int) -> float:
        """The profile's ms of ``part`` (``"detect"``, ``"seed"`` or
        ``"track"``) of a frame of this group holding ``objects`` boxes."""
        ms = getattr(self, f"{part}_ms")
        per_object = getattr(self, f"{part}_ms_per_object")
        return (ms + per_object * (objects - self.objects)) * self.slowdown


def plan_group(
    stages: dict,
    index: int,
    *,
    row: int,
    mean_ms: float,
    objects: float,
    slowdown: float,
) -> GroupPlan:
    """The plan of branch ``index``: its raw prediction and slope in the object
    count (``stages`` as `BranchLatencyModel.predict` gives them, the branch's
    at position ``row``, at ``objects`` boxes per frame for this branch), and
    its corrected ``mean_ms`` as planned, times the siblings' ``slowdown`` when
    shared."""
    seed = stages["tracker_seed"][row]
    return GroupPlan(
        index=index,
        objects=objects,
        detect_ms=float(stages["detect_frame"][row] - seed),
        switch_ms=float(stages["switching"][row]),
        seed_ms=float(seed),
        track_ms=float(stages["track_frame"][row]),
        detect_ms_per_object=float(stages["association_per_object"][row]),
        seed_ms_per_object=float(stages["tracker_seed_per_object"][row]),
        track_ms_per_object=float(stages["tracker_update_per_object"][row]),
        planned_mean_ms=mean_ms * slowdown,
        slowdown=slowdown,
    )


def charge_frame(
    feedback: LatencyFeedback,
    plan: GroupPlan,
    result: FrameResult,
    objects: int,
    tracker: str | None,
    switched: bool,
) -> None:
    """The frame's parts against their raw predictions, for ``objects`` boxes;
    ``tracker`` is the running branch's ``"<tracker>/ds<k>"`` or None;
    ``switched``: the frame is the first after a switch of kernel."""
    # The scheduler's own time is not part of the profiled stages.
    measured = result.latency_ms - result.timings_ms.get("schedule", 0.0)
    if not result.detected:
        feedback.observe_frame(tracker, measured, plan.raw_ms("track", objects))
        return
    # On a detection frame the kernel's "track" stage is the seeding.
    seeded = tracker is not None and plan.seed_ms > 0
    seed_measured = result.timings_ms.get("track", 0.0) if seeded else 0.0
    detect_ms = plan.raw_ms("detect", objects)
    if switched:
        # What the switch cost beyond the profile's, apart from the detector's
        # factor (see `LatencyFeedback.observe_switch`); the seeding still counts.
        steady_ms = feedback.factor(DETECT) * detect_ms
        switch_ms = plan.switch_ms * plan.slowdown
        feedback.observe_switch(measured - seed_measured - steady_ms - switch_ms)
        if seeded:
            seed_ms = plan.raw_ms("seed", objects)
            feedback.observe_frame(seed_key(tracker), seed_measured, seed_ms)
        return
    if not seeded:
        feedback.observe_frame(DETECT, measured, detect_ms)
        return
    feedback.observe_detection(
        measured - seed_measured,
        detect_ms,
        tracker,
        seed_measured,
        plan.raw_ms("seed", objects),
    )
