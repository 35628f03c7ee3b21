"""`FrameResult`: what the frame loop yields for every frame, and sinks consume."""

from __future__ import annotations

from dataclasses import dataclass, field

from approxrt.branch import Branch
from approxrt.detections import Detections
from approxrt.frame import Frame

# Stage names, in loop order; every FrameResult.timings_ms uses these keys.
STAGES = (
    "decode",
    "schedule",
    "preprocess",
    "infer",
    "postprocess",
    "associate",
    "track",
)


@dataclass
class FrameResult:
    """One processed frame.

    Attributes:
        frame: the input frame.
        detections: boxes in frame pixels, with track ids.
        branch: the branch that produced them.
        detected: True on a detection frame, False on a tracking frame.
        timings_ms: milliseconds per stage (keys from `STAGES`, absent stages 0).
        latency_ms: wall time of the whole loop iteration, decode excluded.
        sla_ms: the latency target in force, or None.
        weights: ``"pretrained"`` or ``"random"`` (latency-only runs).
        contention: sensed contention levels, when a sensor runs.
        predicted: predicted ``latency_ms`` / ``accuracy`` of the branch, when a
            scheduler chose it.
        finish_s: when the detections were ready, in seconds on the stream clock
            (the clock of `Frame.arrival_s`); None until a runner stamps it.
    """

    frame: Frame
    detections: Detections
    branch: Branch
    detected: bool
    timings_ms: dict[str, float]
    latency_ms: float
    sla_ms: float | None = None
    weights: str = "pretrained"
    contention: dict[str, float] | None = None
    predicted: dict[str, float] | None = field(default=None)
    finish_s: float | None = None

    @property
    def sla_hit(self) -> bool | None:
        return None if self.sla_ms is None else self.latency_ms <= self.sla_ms
