"""Pictures of the results: an annotated video, or one PNG per frame.

Boxes are coloured by track id (by class when untracked) and labelled
``class #id score``; a banner names the branch, detect/track and the latency
against the SLA.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import cv2
import numpy as np

from approxrt.classes import COCO_CLASSES
from approxrt.detections import Detections
from approxrt.result import FrameResult
from approxrt.sinks.base import BaseSink

_FONT = cv2.FONT_HERSHEY_SIMPLEX
DEFAULT_FPS = 25.0


def _colour(key: int) -> tuple[int, int, int]:
    """A stable, well spread BGR colour for an id (golden-ratio hue steps)."""
    hue = int((key * 0.618033988749895 % 1.0) * 179)
    hsv = np.array([[[hue, 200, 255]]], np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def _banner(result: FrameResult) -> str:
    mode = "detect" if result.detected else "track"
    text = f"{result.branch}  {mode}  {result.latency_ms:.1f} ms"
    if result.sla_ms is not None:
        text += f" / SLA {result.sla_ms:.0f} ms " + ("ok" if result.sla_hit else "MISS")
    return text


def _put_label(
    image: np.ndarray,
    text: str,
    origin: tuple[int, int],
    colour: tuple[int, int, int],
    scale: float,
) -> None:
    """Text on a filled box so it stays readable on any background."""
    (w, h), baseline = cv2.getTextSize(text, _FONT, scale, 1)
    x, y = origin
    y = max(y, h + baseline)
    cv2.rectangle(image, (x, y - h - baseline), (x + w, y), colour, cv2.FILLED)
    cv2.putText(image, text, (x, y - baseline), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)


def draw_result(
    image: np.ndarray, result: FrameResult, detections: Detections
) -> np.ndarray:
    """A copy of ``image`` with ``detections`` and the result's banner drawn.

    Args:
        image: ``(h, w, 3) uint8`` BGR.
        result: supplies branch, mode, latency and SLA for the banner.
        detections: the boxes to draw (already class-filtered).
    """
    canvas = image.copy()
    scale = max(0.35, min(canvas.shape[:2]) / 900)
    rows = zip(
        np.round(detections.xyxy).astype(int).tolist(),
        detections.confidence.tolist(),
        detections.class_id.tolist(),
        detections.tracker_id.tolist(),
        strict=True,
    )
    for (x1, y1, x2, y2), conf, cls, track in rows:
        colour = _colour(track if track >= 0 else 1000 + cls)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
        name = COCO_CLASSES[cls] if 0 <= cls < len(COCO_CLASSES) else str(cls)
        label = f"{name} #{track} {conf:.2f}" if track >= 0 else f"{name} {conf:.2f}"
        _put_label(canvas, label, (x1, y1), colour, scale)
    _put_label(canvas, _banner(result), (0, 0), (255, 255, 255), scale)
    return canvas


class AnnotatedVideoSink(BaseSink):
    """Writes annotated frames into a video file with `cv2.VideoWriter`.

    The writer opens on the first frame, sized like it; later frames of another
    size are resized to fit.

    Args:
        path: the video file; its suffix picks the container (``.mp4``, ``.avi``).
        fps: frame rate to record; default the rate of the first two frames'
            timestamps, or 25 when they do not tell.
        classes: class ids or COCO names to draw; default all.
        fourcc: four-character codec code, ``"mp4v"`` by default (``"MJPG"``
            for ``.avi``).

    Raises:
        ValueError: OpenCV cannot open a writer for this path and codec.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | None = None,
        classes: Collection[int | str] | str | None = None,
        fourcc: str = "mp4v",
    ) -> None:
        super().__init__(classes)
        if fps is not None and not fps > 0:
            raise ValueError(f"fps: expected a positive number or None, got {fps!r}")
        if len(fourcc) != 4:
            raise ValueError(f"fourcc: expected 4 characters, got {fourcc!r}")
        self.path = Path(path)
        self.fps = fps
        self.fourcc = fourcc
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        # Held back until the second frame's timestamp gives the rate.
        self._pending: tuple[np.ndarray, float] | None = None

    def _write(self, result: FrameResult, detections: Detections) -> None:
        image = draw_result(result.frame.image, result, detections)
        timestamp_s = result.frame.timestamp_s
        if self._writer is None and self.fps is None and self._pending is None:
            self._pending = (image, timestamp_s)
            return
        if self._writer is None:
            self._open(image, self._rate(timestamp_s))
        self._append(image)

    def _rate(self, timestamp_s: float) -> float:
        if self.fps is not None:
            return self.fps
        gap_s = timestamp_s - self._pending[1] if self._pending else 0.0
        return 1.0 / gap_s if gap_s > 0 else DEFAULT_FPS

    def _open(self, image: np.ndarray, fps: float) -> None:
        first = self._pending[0] if self._pending else image
        self._size = (first.shape[1], first.shape[0])
        writer = cv2.VideoWriter(
            str(self.path), cv2.VideoWriter_fourcc(*self.fourcc), fps, self._size
        )
        if not writer.isOpened():
            raise ValueError(
                f"AnnotatedVideoSink: OpenCV cannot write {self.path} "
                f"with codec {self.fourcc!r}; try .avi with 'MJPG'"
            )
        self._writer = writer
        if self._pending is not None:
            self._append(self._pending[0])
            self._pending = None

    def _append(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self._size:
            # VideoWriter silently drops frames of another size.
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)

    def _close(self) -> None:
        if self._pending is not None:  # a one-frame video
            self._open(self._pending[0], DEFAULT_FPS)
        if self._writer is not None:
            self._writer.release()


class PngFramesSink(BaseSink):
    """Writes one PNG per frame, named by frame number: ``000001.png``, ...

    Args:
        folder: created if missing.
        classes: class ids or COCO names to draw; default all.
        annotate: draw boxes and the banner (default), or save the raw frame.
    """

    def __init__(
        self,
        folder: str | Path,
        classes: Collection[int | str] | str | None = None,
        annotate: bool = True,
    ) -> None:
        super().__init__(classes)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.annotate = annotate

    def _write(self, result: FrameResult, detections: Detections) -> None:
        image = result.frame.image
        if self.annotate:
            image = draw_result(image, result, detections)
        path = self.folder / f"{result.frame.index + 1:06d}.png"
        if not cv2.imwrite(str(path), image):
            raise OSError(f"PngFramesSink: could not write {path}")

    def _close(self) -> None:
        pass
