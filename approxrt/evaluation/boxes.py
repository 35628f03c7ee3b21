"""A sequence's boxes for scoring: one `Detections` with frame and ignore columns.

Results and ground truth of a whole sequence are each one `Detections` (built by
`Detections.stack` or `sequence_boxes`): the ``"frame"`` data column holds each
box's 1-based frame number (`Detections.frame`) and, for ground truth, the
``"ignore"`` column marks boxes that are not scored (MOT flag 0, crowds,
distractors; see `ignored`).
"""

from __future__ import annotations

import numpy as np

from approxrt.classes import COCO_CLASSES
from approxrt.detections import FRAME, UNTRACKED, Detections

PERSON = COCO_CLASSES.index("person")
IGNORE = "ignore"  # data column of ground truth: True where a box is not scored


def sequence_boxes(
    frame,
    xyxy,
    confidence=None,
    class_id=None,
    tracker_id=None,
    ignore=None,
) -> Detections:
    """Boxes of a sequence from columns.

    Args:
        frame: ``(n,)`` 1-based frame number of each box.
        xyxy: ``(n, 4)`` corners in pixels.
        confidence: ``(n,)`` scores; default 1 (ground truth).
        class_id: ``(n,)`` contiguous COCO classes; default person.
        tracker_id: ``(n,)`` identities; default -1 (none).
        ignore: ``(n,) bool`` ground-truth boxes not scored; None for results.

    Raises:
        ValueError: a column whose length is not the number of frames given.
    """
    frame = np.asarray(frame, np.int64).reshape(-1)
    n = len(frame)
    xyxy = np.asarray(xyxy, np.float64)
    if xyxy.size != 4 * n:
        raise ValueError(f"xyxy: expected shape ({n}, 4), got {xyxy.shape}")
    data = {FRAME: frame}
    if ignore is not None:
        data[IGNORE] = np.asarray(ignore, bool).reshape(-1)
    return Detections(
        xyxy.reshape(n, 4),
        _filled(confidence, 1.0, n),
        _filled(class_id, PERSON, n),
        _filled(tracker_id, UNTRACKED, n),
        data,
    )


def sequence_from_xywh(frame, xywh, **columns) -> Detections:
    """`sequence_boxes` from top-left corners, widths and heights."""
    xywh = np.asarray(xywh, np.float64).reshape(-1, 4)
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return sequence_boxes(frame, xyxy, **columns)


def ignored(boxes: Detections) -> np.ndarray:
    """``(n,) bool``: the boxes not scored (all False without an ignore column)."""
    if IGNORE not in boxes.data:
        return np.zeros(len(boxes), bool)
    return np.asarray(boxes.data[IGNORE], bool)


def _filled(value, fill, n: int) -> np.ndarray:
    return np.full(n, fill) if value is None else np.asarray(value).reshape(-1)
