"""Content features of the live stream, from the results the loop hands back.

The same light features the profiler scores segments with
(`profiler.features.light_features`): boxes per frame, their size (sqrt of the
mean area, px) and their speed (centre motion per frame, px). Online they are
running averages updated once per frame, so a decision reads them for free;
speed comes from track ids (the box with the same id one frame later) rather
than an IoU matching.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from approxrt.result import FrameResult


@dataclass(frozen=True)
class Content:
    """What the scene holds now (``known`` is False before any result)."""

    objects: float = 0.0
    object_size_px: float = 0.0
    object_speed_px: float = 0.0
    known: bool = False

    def features(self, frame_wh: tuple[int, int]) -> dict[str, float]:
        """The light features' dict, as the accuracy models read it."""
        return {
            "objects": self.objects,
            "object_size_px": self.object_size_px,
            "object_speed_px": self.object_speed_px,
            "frame_w": float(frame_wh[0]),
            "frame_h": float(frame_wh[1]),
        }


class ContentEstimate:
    """Running averages of the content of the latest frames.

    Args:
        min_confidence: boxes less confident than this do not count (the
            profile counts the boxes that seed trackers).
        frames: the averages' time constant in frames: enough to smooth a
            detector's misses, few enough to follow a crowd entering within a
            group of frames.
    """

    def __init__(self, min_confidence: float, frames: float = 8.0) -> None:
        self.min_confidence = min_confidence
        self.weight = 1.0 / frames
        self.current = Content()
        self.last_count = 0  # confident boxes of the latest frame
        self._centres: dict[int, np.ndarray] = {}
        self._area_px2 = 0.0

    def update(self, result: FrameResult) -> None:
        detections = result.detections
        keep = detections.confidence >= self.min_confidence
        xyxy = detections.xyxy[keep]
        ids = detections.tracker_id[keep].tolist()
        self.last_count = len(ids)
        centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        moves = [
            float(np.hypot(*(centre - self._centres[i])))
            for i, centre in zip(ids, centres, strict=True)
            if i >= 0 and i in self._centres
        ]
        self._centres = {i: c for i, c in zip(ids, centres, strict=True) if i >= 0}
        area = float(np.prod(xyxy[:, 2:] - xyxy[:, :2], axis=1).mean()) if ids else None
        old, w = self.current, self.weight if self.current.known else 1.0
        if area is not None:
            self._area_px2 += w * (area - self._area_px2) if old.known else area
        speed = old.object_speed_px
        if moves:
            speed += w * (float(np.mean(moves)) - speed)
        self.current = Content(
            objects=old.objects + w * (len(ids) - old.objects),
            object_size_px=float(np.sqrt(self._area_px2)),
            object_speed_px=speed,
            known=True,
        )
