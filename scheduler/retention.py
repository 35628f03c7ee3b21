"""`TrackingRetention`: how much of the scene tracking still holds, live.

The profile rates a tracked branch by the scenes it was profiled on. A live
scene can defeat tracking far more: in the benchmark's synthetic crowd (up to 50
people crossing) nanodet_m s512 scored AP50 0.547 every frame and 0.398 tracked
with KCF over groups of 4, yet the content-aware model, whose most crowded scene
holds 12 boxes, put the tracked branch above every-frame detection (0.68 against
0.66 for the crowd's content), and the adaptive run tracked where the oracle
detected.

No ground truth is needed to notice: on a detection frame that ends a tracked
group, the share of the detector's confident boxes that the tracker's boxes of
the frame before still cover (IoU >= ``match_iou``, one to one) is what tracking
kept over the group. Measured on the benchmark's streams (nanodet_m s512 and
yolox_nano s416; KCF, MedianFlow and MOSSE; groups of 2-20; docs/benchmarks/
adaptive.md, stop 19), that share ``r`` sets the AP50 a tracked branch keeps of
its kernel's every-frame AP50: the ratio was 1.11-1.15 x ``r`` on PETS (``r``
0.61-0.87) and 0.93-1.23 x ``r`` in the crowd (``r`` 0.41-0.73). So a tracked
branch's predicted AP50 is capped at its kernel's every-frame AP50 times
``min(1, calibration x r)``, ``calibration`` just under PETS's ratios (1.1).

``r`` falls with the group's length about as ``length ** -alpha`` (PETS: alpha
0.12-0.21, crowd 0.30-0.51, over lengths 2-20), so one tracker measured at one
length prices every length. A (tracker, downsample) never measured in this
scene takes the mean alpha of those that were: how hard the scene is to track
is mostly the scene's. Each alpha fades back to 0 (no loss beyond the profile's)
with a half-life, so tracking is tried again when the scene may have changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from approxrt.detections import Detections, box_iou


class TrackingRetention:
    """Per-(tracker, downsample) loss exponent of what tracking keeps, smoothed.

    Args:
        tracker_keys: the ``"<tracker>/ds<k>"`` names alphas are asked for.
        min_boxes: a detection frame with fewer confident boxes says nothing
            (1 of 3 lost is noise, not a scene tracking fails on).
        match_iou: least IoU for a tracked box to count as still holding an
            object the detector found.
        weight: smoothing of each alpha per measured group.
        half_life_frames: how fast an alpha fades back to 0 once its tracker no
            longer runs.
        calibration: AP50 kept over share of boxes kept (see the module).
        min_share: shares below this count as this (a group that lost every
            box would give an infinite alpha).
    """

    def __init__(
        self,
        tracker_keys: Sequence[str],
        min_boxes: int = 4,
        match_iou: float = 0.5,
        weight: float = 0.5,
        half_life_frames: float = 300.0,
        calibration: float = 1.1,
        min_share: float = 0.05,
    ) -> None:
        self.min_boxes = min_boxes
        self.match_iou = match_iou
        self.weight = weight
        self.half_life_frames = half_life_frames
        self.calibration = calibration
        self.min_share = min_share
        self._position = {k: i for i, k in enumerate(dict.fromkeys(tracker_keys))}
        self._alpha = np.zeros(len(self._position))  # 0 where never measured
        self._updated = np.zeros(len(self._position))  # frame of each alpha
        self._unmeasured = np.ones(len(self._position))  # 1.0 where never measured
        self._log_calibration = math.log(calibration)

    def update(
        self,
        tracker_key: str,
        group_frames: int,
        tracked: Detections,
        detected: Detections,
        frame_index: int,
    ) -> float | None:
        """A detection frame ending a group of ``group_frames`` frames tracked
        with ``tracker_key``: ``tracked`` are the boxes of the frame before,
        ``detected`` this frame's confident boxes. Returns the share kept, or
        None when the frame is no evidence."""
        position = self._position.get(tracker_key)
        if position is None or group_frames < 2 or len(detected) < self.min_boxes:
            return None
        share = kept_share(tracked, detected, self.match_iou)
        alpha = -math.log(max(share, self.min_share)) / math.log(group_frames)
        age = max(frame_index - self._updated[position], 0.0)
        now = self._alpha[position] * 0.5 ** (age / self.half_life_frames)
        start = alpha if self._unmeasured[position] else now
        self._alpha[position] = start + self.weight * (alpha - start)
        self._updated[position] = frame_index
        self._unmeasured[position] = 0.0
        return share

    def alphas(self, frame_index: int) -> np.ndarray | None:
        """``(keys,)`` each tracker's alpha at ``frame_index`` in the order of
        ``tracker_keys`` (one never measured: the mean of those measured); None
        before any measurement (a decision then skips the cap)."""
        unmeasured = int(self._unmeasured.sum())
        if unmeasured == len(self._alpha):
            return None
        # Few numpy calls: this runs in every decision (0.2 ms for 1,000 branches).
        age = np.minimum(self._updated - frame_index, 0.0) / self.half_life_frames
        alpha = self._alpha * np.exp2(age)
        if unmeasured:
            alpha += self._unmeasured * (alpha.sum() / (len(alpha) - unmeasured))
        return alpha

    def kept_ap_share(
        self, alpha: np.ndarray, log_group_frames: np.ndarray
    ) -> np.ndarray:
        """The share of its every-frame AP50 a tracked branch keeps: ``min(1,
        calibration x group_frames ** -alpha)``, elementwise, given the natural
        log of the group lengths."""
        kept = np.exp(self._log_calibration - alpha * log_group_frames)
        return np.minimum(kept, 1.0, out=kept)


def kept_share(tracked: Detections, detected: Detections, match_iou: float) -> float:
    """Share of ``detected`` covered one to one by ``tracked`` boxes of the same
    class at IoU >= ``match_iou`` (greedy, best pairs first)."""
    if len(detected) == 0:
        return 1.0
    if len(tracked) == 0:
        return 0.0
    iou = box_iou(detected.xyxy, tracked.xyxy)
    iou[detected.class_id[:, None] != tracked.class_id[None, :]] = 0.0
    rows, cols = np.nonzero(iou >= match_iou)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_rows, used_cols = set(), set()
    for row, col in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if row not in used_rows and col not in used_cols:
            used_rows.add(row)
            used_cols.add(col)
    return len(used_rows) / len(detected)
