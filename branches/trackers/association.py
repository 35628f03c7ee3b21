"""Persistent track ids across groups of frames (GoFs).

The trackers keep ``tracker_id`` within a GoF. At each detection frame the fresh
detections have no ids; `TrackIdAssigner` hands each one the id of the box it
continues from the previous frame's output, matched one to one by IoU, and gives
a new id to every detection that continues nothing.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from approxrt.detections import UNTRACKED, Detections, box_iou


class TrackIdAssigner:
    """Gives detections the track ids of the boxes they continue.

    Args:
        minimum_iou_threshold: a detection takes a previous box's id only when
            their IoU is at least this; raising it starts new tracks more readily
            (fewer wrong continuations, more id switches for fast movers).
        first_id: the first fresh id handed out (MOTChallenge ids start at 1).
        high_confidence_threshold: detections at least this confident are matched
            first, so a weak duplicate box can never take a person's id from the
            confident detection of that person (as in ByteTrack).

    Raises:
        ValueError: when ``minimum_iou_threshold`` is outside ``(0, 1]`` or
            ``first_id`` is negative.
    """

    def __init__(
        self,
        minimum_iou_threshold: float = 0.3,
        first_id: int = 1,
        high_confidence_threshold: float = 0.3,
    ) -> None:
        if not 0 < minimum_iou_threshold <= 1:
            raise ValueError(
                "minimum_iou_threshold: expected a number in (0, 1], "
                f"got {minimum_iou_threshold!r}"
            )
        if first_id < 0:
            raise ValueError(f"first_id: expected an int >= 0, got {first_id!r}")
        self.minimum_iou_threshold = minimum_iou_threshold
        self.first_id = first_id
        self.high_confidence_threshold = high_confidence_threshold
        self._next_id = first_id

    def reset(self) -> None:
        """Start the id counter over; ids handed out before may be reused."""
        self._next_id = self.first_id

    def assign(self, detections: Detections, previous: Detections) -> Detections:
        """A copy of ``detections`` with every ``tracker_id`` set.

        Args:
            detections: boxes of a detection frame; their own ids are ignored.
            previous: the output of the frame before it (boxes with track ids);
                boxes with ``tracker_id == -1`` lend no id.

        Returns:
            ``detections`` with ``tracker_id`` from the matched ``previous`` box, or
            a fresh id (never one seen in ``previous``) when none matched.
        """
        ids = np.full(len(detections), UNTRACKED, dtype=np.int64)
        pool = previous[previous.tracker_id != UNTRACKED]
        free = np.ones(len(pool), dtype=bool)
        strong = detections.confidence >= self.high_confidence_threshold
        for group in (np.flatnonzero(strong), np.flatnonzero(~strong)):
            candidates = np.flatnonzero(free)
            rows, cols = self._match(detections[group], pool[candidates])
            ids[group[rows]] = pool.tracker_id[candidates[cols]]
            free[candidates[cols]] = False
        fresh = ids == UNTRACKED
        if len(pool):
            # Fresh ids must not collide with ids still alive in the stream.
            self._next_id = max(self._next_id, int(pool.tracker_id.max()) + 1)
        ids[fresh] = np.arange(self._next_id, self._next_id + fresh.sum())
        self._next_id += int(fresh.sum())
        return detections.with_columns(tracker_id=ids)

    def _match(
        self, detections: Detections, previous: Detections
    ) -> tuple[np.ndarray, np.ndarray]:
        """Indices ``(rows, cols)`` of matched (detection, previous) pairs."""
        if len(detections) == 0 or len(previous) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        iou = box_iou(detections.xyxy, previous.xyxy)
        same_class = detections.class_id[:, None] == previous.class_id[None, :]
        # Zeroing ineligible pairs before solving keeps them from steering the
        # assignment; any the solver still pairs are dropped by the threshold below.
        iou = np.where(same_class & (iou >= self.minimum_iou_threshold), iou, 0.0)
        rows, cols = linear_sum_assignment(iou, maximize=True)
        good = iou[rows, cols] > 0
        return rows[good], cols[good]
