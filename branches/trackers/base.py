"""The tracker contract: one object, one `update` method.

`update(detections, frame)` with detections re-seeds the tracker from them (a
detection frame); `update(None, frame)` moves the seeded boxes to ``frame`` (a
tracking frame). The base class owns what every tracker shares: the downsampled
view, dropping objects that fail alone, clipping, and decaying confidence with
the age of a box since its detection.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from numbers import Integral, Real
from typing import ClassVar

import cv2
import numpy as np

from approxrt.detections import Detections
from approxrt.frame import Frame


class Tracker(ABC):
    """Fills the frames between detections by moving the last detections.

    Args:
        downsample: the tracker works on the frame shrunk by this factor on each
            side; raising it makes tracking cheaper and boxes coarser.
        confidence_decay: a tracked box's confidence is its detection's
            confidence times ``confidence_decay ** age`` (frames since detection);
            lower values rank stale boxes below fresh ones sooner.
    """

    name: str
    # Whether the tracker works on the grayscale frame (see `MedianFlowTracker`).
    grayscale: ClassVar[bool] = False

    def __init__(self, downsample: int = 1, confidence_decay: float = 0.95) -> None:
        if (
            isinstance(downsample, bool)
            or not isinstance(downsample, Integral)
            or downsample < 1
        ):
            raise ValueError(f"downsample: expected a positive int, got {downsample!r}")
        if not isinstance(confidence_decay, Real) or not 0 < confidence_decay <= 1:
            raise ValueError(
                "confidence_decay: expected a number in (0, 1], "
                f"got {confidence_decay!r}"
            )
        self.downsample = int(downsample)
        self.confidence_decay = confidence_decay
        self._seeds = Detections.empty()
        self._alive = np.zeros(0, dtype=bool)
        self._age = 0

    def reset(self) -> None:
        """Forget every seeded object."""
        self._seeds = Detections.empty()
        self._alive = np.zeros(0, dtype=bool)
        self._age = 0

    def update(self, detections: Detections | None, frame: Frame) -> Detections:
        """Seed from ``detections``, or, with None, track the seeds into ``frame``."""
        if detections is not None and not len(detections):
            self.reset()  # nothing to seed: no view of the frame is made
            return detections
        if detections is not None:
            small, to_small = self._view(frame)
            self._seeds = detections
            self._age = 0
            self._alive = self._start(small, detections.xyxy * to_small)
            # Every detection is output on its own frame, seeded or not.
            return detections.clipped(frame.width, frame.height)
        self._age += 1
        if not self._alive.any():
            return self._seeds[self._alive]
        small, to_small = self._view(frame)
        boxes_small, ok = self._step(small)
        self._alive &= ok
        moved = self._seeds.with_columns(
            xyxy=boxes_small.astype(np.float32) / to_small,
            confidence=self._seeds.confidence * self.confidence_decay**self._age,
        )
        return moved[self._alive].clipped(frame.width, frame.height)

    def _view(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        """The image this tracker works on and the ``(4,) float32`` xyxy scale into it.

        The downsampled (and, where `grayscale`, single-channel) frame; made once
        per frame and shared with every other tracker that works on the same view.
        """
        w, h = frame.width, frame.height
        ds = self.downsample
        small_w, small_h = max(1, w // ds), max(1, h // ds)
        small = frame.image
        if ds > 1:
            small = frame.derived(
                ("downsampled", ds),
                lambda image: cv2.resize(
                    image, (small_w, small_h), interpolation=cv2.INTER_AREA
                ),
            )
        if self.grayscale:
            # Converted after downsampling, so a view is the same pixels either way.
            bgr = small
            small = frame.derived(
                ("grayscale", ds), lambda _: cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            )
        scale_x, scale_y = small_w / w, small_h / h
        return small, np.array([scale_x, scale_y, scale_x, scale_y], np.float32)

    @abstractmethod
    def _start(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Seed one object per ``(n, 4)`` xyxy box on the downsampled ``image``.

        Returns ``(n,) bool``: which objects could be seeded (False drops that one
        alone).
        """

    @abstractmethod
    def _step(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Track every seeded object into the downsampled ``image``.

        Returns ``(n, 4)`` xyxy boxes (downsampled pixels) and ``(n,) bool`` success;
        a failed object is dropped alone, for good, until the next seeding.
        """
