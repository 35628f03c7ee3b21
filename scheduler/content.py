"""Content features of the live stream, from the results the loop hands back.

The same light features the profiler scores segments with
(`profiler.features.light_features`): boxes per frame, their size (sqrt of the
mean area, px) and their speed (centre motion per frame, px). Online they are
running averages updated once per frame, so a decision reads them for free.
Speed comes from track ids rather than an IoU matching, and, as in the
profile, from detector boxes only: the centre of an id's box on one detection
frame against the same id on the last detection frame that held it, over the
frames between (so frames dropped on the way do not count as motion). Motion
between tracking frames would make the feature depend on the branch running
(a drifting tracker, a detector box after a tracker's), and the accuracy
predicted from it swing with every switch: on a daemon stream's events this
took the mean change of a branch's predicted AP50 between decisions from
0.012 to 0.008.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from approxrt.result import FrameResult


@dataclass(frozen=True)
class Content:
    """What the scene holds now (``known`` is False before any result).

    ``object_speed_px`` is NaN until one box has been seen on two detection
    frames: a speed of 0 would read as a still scene, where the profile rates
    cheap detectors and long tracking nearly as good as the best (at a PETS
    start it put fastestdet every frame above yolox_nano s416); NaN makes the
    accuracy model take the profile's average speed instead.
    """

    objects: float = 0.0
    object_size_px: float = 0.0  # as the running kernels saw it (latency reads it)
    object_speed_px: float = float("nan")
    known: bool = False
    reference_size_px: float = 0.0  # as the profile's reference kernel would see it

    def features(self, frame_wh: tuple[int, int]) -> dict[str, float]:
        """The light features' dict, as the accuracy models read it: the size
        as the profile's reference kernel would see it (`KernelViews`)."""
        return {
            "objects": self.objects,
            "object_size_px": self.reference_size_px,
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
        peak_frames: the object count is at least the most boxes a detection
            frame held within this many frames (see `_recent_peak`).
        own_frames: a kernel's own count (`own_count`) is known this many
            frames after its last detection frame.
    """

    def __init__(
        self,
        min_confidence: float,
        frames: float = 8.0,
        peak_frames: int = 60,
        own_frames: int = 30,
    ) -> None:
        self.min_confidence = min_confidence
        self.weight = 1.0 / frames
        self.peak_frames = peak_frames
        self.own_frames = own_frames
        # kernel -> (its latest detection frame, its smoothed boxes per frame)
        self._own: dict[str, tuple[int, float]] = {}
        self._peaks: deque[tuple[int, int]] = deque()  # (frame index, boxes)
        self._objects = 0.0  # the running average alone, before the peak
        self.current = Content()
        self.last_count = 0  # confident boxes of the latest frame
        # id -> (centre, frame index) on the latest detection frame
        self._detected: dict[int, tuple[np.ndarray, int]] = {}
        self._area_px2 = 0.0
        self._reference_area_px2 = 0.0

    def update(
        self,
        result: FrameResult,
        trusted: bool = True,
        size_ratio: float = 1.0,
        kernel: str | None = None,
    ) -> None:
        """Take in one frame's result.

        Args:
            trusted: False for a detector known to see little of what others
                see here (`KernelRecall`): its count neither sets nor ages the
                recent peak (see `_recent_peak`).
            size_ratio: how much larger the boxes of the kernel that made this
                result look than the profile's reference kernel's
                (`KernelViews.size_ratio`); divided out of ``reference_size_px``.
            kernel: the kernel that made it (``"yolox_nano/s320"``), for
                `own_count`; None counts for none.
        """
        detections = result.detections
        keep = detections.confidence >= self.min_confidence
        xyxy = detections.xyxy[keep]
        ids = detections.tracker_id[keep].tolist()
        self.last_count = len(ids)
        if result.detected and kernel is not None:
            self._count_own(kernel, result.frame.index, len(ids))
        moves = self._detector_moves(ids, xyxy, result) if result.detected else []
        area = float(np.prod(xyxy[:, 2:] - xyxy[:, :2], axis=1).mean()) if ids else None
        old, w = self.current, self.weight if self.current.known else 1.0
        if area is not None:
            reference_area = area / size_ratio**2
            if old.known:
                self._area_px2 += w * (area - self._area_px2)
                self._reference_area_px2 += w * (
                    reference_area - self._reference_area_px2
                )
            else:
                self._area_px2, self._reference_area_px2 = area, reference_area
        speed = old.object_speed_px
        if moves:
            move = float(np.mean(moves))
            speed = move if np.isnan(speed) else speed + w * (move - speed)
        self._objects += w * (len(ids) - self._objects) if old.known else len(ids)
        self.current = Content(
            objects=max(self._objects, self._recent_peak(result, len(ids), trusted)),
            object_size_px=float(np.sqrt(self._area_px2)),
            object_speed_px=speed,
            known=True,
            reference_size_px=float(np.sqrt(self._reference_area_px2)),
        )

    def _count_own(self, kernel: str, index: int, count: int) -> None:
        last = self._own.get(kernel)
        if last is None or index - last[0] > self.own_frames or count > last[1]:
            # More boxes count at once: a crowd entering must not be planned
            # a group late.
            self._own[kernel] = (index, float(count))
        else:  # fewer, at half weight: a few detection frames, not one odd one
            self._own[kernel] = (index, last[1] + 0.5 * (count - last[1]))

    def own_count(self, kernel: str, frame_index: int) -> float:
        """The boxes per detection frame ``kernel`` itself found lately: what
        its trackers will carry. NaN when it has not detected within
        ``own_frames`` (the plan then takes `Content.objects`).

        `Content.objects` guards against a weak detector's low count (see
        `_recent_peak`), so it is the most a recent trusted frame held, and
        it is right to plan another kernel with. Planning a kernel with it
        that keeps seeing fewer over-charges its tracking: on PETS under CPU
        steps at 10 ms the plans assumed 8-10 people where the tracked
        kernels found 3-7, and tracking frames ran at a median 0.5x their
        corrected plan, so long groups of cheap trackers were chosen.
        """
        last = self._own.get(kernel)
        if last is None or frame_index - last[0] > self.own_frames:
            return float("nan")
        return last[1]

    def _recent_peak(self, result: FrameResult, count: int, trusted: bool) -> float:
        """The most boxes a trusted detection frame held within ``peak_frames``.

        What one detector sees is not what the next one will: in the synthetic
        crowd yolox_nano s224 kept no box above the confidence threshold where
        nanodet_m s512 kept 20-28, so after a few of its frames every plan
        assumed 0.3-1.4 objects, nanodet's next group seeded and tracked 16-28
        and ran 3-6x its plan. A weak detector seeing fewer is no evidence that
        the objects left, so the plan takes the recent peak. Nor is a long run of
        it: in the crowd at a 10 ms SLA it ran 42 frames, the peak aged out, and
        the next plan tracked "2 objects" where nanodet_m seeded 20, at 2.5x its
        plan. While only untrusted detectors run, the peak is held.
        """
        if not trusted:
            return float(max((c for _, c in self._peaks), default=0))
        if result.detected:
            self._peaks.append((result.frame.index, count))
        while self._peaks and self._peaks[0][0] < result.frame.index - self.peak_frames:
            self._peaks.popleft()
        return float(max((c for _, c in self._peaks), default=0))

    def _detector_moves(self, ids, xyxy: np.ndarray, result: FrameResult) -> list:
        """Px per frame of each id seen on the previous detection frame."""
        index = result.frame.index
        centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        moves, detected = [], {}
        for track, centre in zip(ids, centres, strict=True):
            if track < 0:
                continue
            before = self._detected.get(track)
            if before is not None and index > before[1]:
                shift_px = float(np.hypot(*(centre - before[0])))
                moves.append(shift_px / (index - before[1]))
            detected[track] = (centre, index)
        self._detected = detected  # only the ids in view: bounded for months
        return moves
