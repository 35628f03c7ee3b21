"""The decision contract between the frame loop and a policy.

At the start of each group of frames the loop asks its policy for a `Decision`,
giving it a `DecisionContext`: the frame, the SLA in force, the running branch
and the recent results with their stage timings. Every `FrameResult` is then
handed back through ``observe``, so a policy can learn from what it chose.
These are core types: a scheduler implements `BranchPolicy` without importing
the loop, a detector or an ML framework.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from approxrt.branch import Branch
from approxrt.frame import Frame

if TYPE_CHECKING:  # result.py imports this module
    from approxrt.result import FrameResult


@dataclass(frozen=True)
class DecisionContext:
    """What a policy sees when a group of frames starts.

    Attributes:
        frame: the group's first frame.
        sla_ms: the latency target in force (mean ms per frame over a group), or None.
        running: the branch of the group that just ended, None on the first.
        recent: the loop's latest results, oldest first (a bounded window).
    """

    frame: Frame
    sla_ms: float | None
    running: Branch | None
    recent: Sequence[FrameResult]


@dataclass(frozen=True)
class Decision:
    """A policy's answer: the branch, and what it expects of it.

    Attributes:
        branch: the branch for the group of frames.
        latency_ms: predicted mean ms per frame over the group, or None.
        accuracy: predicted AP50, or None.
        contention: the sensed contention the prediction was made under.
        details: anything else worth logging (margin, scheduler ms, ...).
    """

    branch: Branch
    latency_ms: float | None = None
    accuracy: float | None = None
    contention: Mapping[str, float] | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def predicted(self) -> dict[str, float] | None:
        """``{"latency_ms", "accuracy", **details}``, or None when unknown."""
        if self.latency_ms is None and self.accuracy is None:
            return None
        numbers = {"latency_ms": self.latency_ms, "accuracy": self.accuracy}
        numbers.update(self.details)
        return {k: float("nan") if v is None else float(v) for k, v in numbers.items()}


class BranchPolicy(Protocol):
    """Chooses the branch of each group of frames and learns from the results."""

    def decide(self, context: DecisionContext) -> Decision: ...

    def observe(self, result: FrameResult) -> None: ...
