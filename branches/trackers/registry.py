"""Tracker kinds by name: the names a `Branch` uses (``.../kcf/ds2``)."""

from __future__ import annotations

import inspect
from typing import Any

from approxrt.branches.trackers.base import Tracker
from approxrt.branches.trackers.flow import FlowTracker
from approxrt.branches.trackers.opencv_trackers import (
    CSRTTracker,
    KCFTracker,
    MedianFlowTracker,
    MOSSETracker,
)

TRACKERS: dict[str, type[Tracker]] = {
    cls.name: cls
    for cls in (KCFTracker, CSRTTracker, MedianFlowTracker, MOSSETracker, FlowTracker)
}


def make_tracker(
    name: str, downsample: int = 1, confidence_decay: float = 0.95, **params: Any
) -> Tracker:
    """A new tracker of kind ``name``.

    Args:
        name: one of `TRACKERS` (``kcf``, ``csrt``, ``medianflow``, ``mosse``,
            ``flow``).
        downsample: the tracker works on the frame shrunk by this factor on each
            side; raising it makes tracking cheaper and boxes coarser.
        confidence_decay: a tracked box's confidence is multiplied by this per
            frame since its detection; must be in ``(0, 1]``.
        **params: extra keyword arguments of that kind (e.g. ``grid_px`` for flow).

    Raises:
        ValueError: for an unknown ``name`` (the message lists the valid ones), a
            ``downsample`` that is not a positive int, or a ``confidence_decay``
            outside ``(0, 1]``.
        TypeError: for a keyword in ``params`` that kind does not take.
        RuntimeError: when OpenCV lacks the tracker (contrib modules missing).
    """
    if name not in TRACKERS:
        raise ValueError(
            f"name: unknown tracker {name!r}; valid trackers: {', '.join(TRACKERS)}"
        )
    cls = TRACKERS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {
        "self",
        "downsample",
        "confidence_decay",
    }
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise TypeError(
            f"params: tracker {name!r} takes no {', '.join(unknown)}; "
            f"its extra parameters: {', '.join(sorted(accepted)) or 'none'}"
        )
    return cls(downsample=downsample, confidence_decay=confidence_decay, **params)
