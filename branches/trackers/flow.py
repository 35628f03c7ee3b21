"""A dense optical-flow box shifter ("flow"; ApproxDet's "bboxmedianfixed").

Dense Farneback flow runs once per frame, on the whole downsampled grayscale
frame, from the *anchor* (the frame the boxes were seeded on, fixed until the
next seeding) to the current frame. Each box moves, without resizing, by the
median of the significant flow vectors sampled on a grid inside it. Measuring
from the fixed anchor, not frame to frame, keeps errors from accumulating.
"""

from __future__ import annotations

import cv2
import numpy as np

from approxrt.branches.trackers.base import Tracker
from approxrt.branches.trackers.opencv_trackers import overlaps_image

# Farneback settings: a 3-level pyramid halving each level, 15 px averaging window,
# 3 iterations, 5-px polynomial neighbourhood with sigma 1.2 (OpenCV's usual values).
_FARNEBACK = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}


class FlowTracker(Tracker):
    """Shifts each box by the median dense optical flow inside it.

    Args:
        downsample: see `Tracker`. Flow cost falls roughly with its square.
        confidence_decay: see `Tracker`.
        grid_px: spacing, in downsampled pixels, of the flow samples inside a box;
            raising it samples fewer vectors (cheaper, noisier medians).
        min_motion_px: a vector counts as motion when ``|dx| + |dy|`` is at least
            this many full-resolution pixels (``min_motion_px / downsample`` on the
            downsampled frame); raising it ignores slow movers and flow noise.
        outlier_sigma: vectors whose magnitude is more than this many standard
            deviations from the box's mean magnitude are dropped before the median;
            lowering it rejects more of the background and occluders.

    Raises:
        ValueError: when ``grid_px`` is not a positive int, or ``min_motion_px``
            or ``outlier_sigma`` is negative.
    """

    name = "flow"
    grayscale = True

    def __init__(
        self,
        downsample: int = 1,
        confidence_decay: float = 0.95,
        grid_px: int = 4,
        min_motion_px: float = 5.0,
        outlier_sigma: float = 2.0,
    ) -> None:
        if isinstance(grid_px, bool) or not isinstance(grid_px, int) or grid_px < 1:
            raise ValueError(f"grid_px: expected a positive int, got {grid_px!r}")
        for arg, value in (
            ("min_motion_px", min_motion_px),
            ("outlier_sigma", outlier_sigma),
        ):
            if not value >= 0:
                raise ValueError(f"{arg}: expected a number >= 0, got {value!r}")
        super().__init__(downsample=downsample, confidence_decay=confidence_decay)
        self.grid_px = grid_px
        self.min_motion_px = min_motion_px
        self.outlier_sigma = outlier_sigma
        self._anchor: np.ndarray | None = None
        self._anchor_boxes = np.zeros((0, 4))

    def reset(self) -> None:
        super().reset()
        self._anchor = None
        self._anchor_boxes = np.zeros((0, 4))

    def _start(self, gray: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        height, width = gray.shape[:2]
        self._anchor = gray
        self._anchor_boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return np.array(
            [overlaps_image(box, width, height) for box in self._anchor_boxes],
            dtype=bool,
        )

    def _step(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._anchor is None or gray.shape != self._anchor.shape:
            # A frame of another size cannot be compared with the anchor.
            n = len(self._anchor_boxes)
            return np.zeros((n, 4)), np.zeros(n, dtype=bool)
        flow = cv2.calcOpticalFlowFarneback(self._anchor, gray, None, **_FARNEBACK)
        min_motion = self.min_motion_px / self.downsample
        shifts = np.array(
            [self._box_shift(flow, box, min_motion) for box in self._anchor_boxes]
        ).reshape(-1, 2)
        boxes = self._anchor_boxes + np.tile(shifts, 2)
        height, width = gray.shape
        ok = np.array([overlaps_image(box, width, height) for box in boxes], dtype=bool)
        return boxes, ok

    def _box_shift(
        self, flow: np.ndarray, box: np.ndarray, min_motion: float
    ) -> np.ndarray:
        """``(2,) float`` (dx, dy): median significant flow in ``box``, 0 if none."""
        vectors = self._grid_samples(flow, box)
        vectors = vectors[np.abs(vectors).sum(axis=1) >= min_motion]
        if len(vectors) == 0:
            return np.zeros(2)
        magnitude = np.hypot(vectors[:, 0], vectors[:, 1])
        # The tolerance keeps a set of equal magnitudes (std 0) despite rounding.
        spread = self.outlier_sigma * magnitude.std() + 1e-6
        vectors = vectors[np.abs(magnitude - magnitude.mean()) <= spread]
        return np.median(vectors, axis=0) if len(vectors) else np.zeros(2)

    def _grid_samples(self, flow: np.ndarray, box: np.ndarray) -> np.ndarray:
        """``(k, 2) float32`` flow vectors on a ``grid_px`` grid inside ``box``."""
        height, width = flow.shape[:2]
        if not np.all(np.isfinite(box)):
            return np.zeros((0, 2), np.float32)
        x1, x2 = np.clip(box[0::2], 0, width)
        y1, y2 = np.clip(box[1::2], 0, height)
        # Start at the box's corner so even a box narrower than the grid gets a sample.
        xs = np.arange(np.floor(x1), x2, self.grid_px).astype(int)
        ys = np.arange(np.floor(y1), y2, self.grid_px).astype(int)
        xs, ys = xs[xs < width], ys[ys < height]
        return flow[np.ix_(ys, xs)].reshape(-1, 2)
