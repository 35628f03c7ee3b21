"""Results for standard evaluators: MOTChallenge text and COCO results json.

Both use frame numbers ``Frame.index + 1`` (MOTChallenge frames and COCO image
ids), so `approxrt.evaluation.evaluate` can score either against a MOT gt.
Results carry no stream: use one sink per stream.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from approxrt.detections import Detections
from approxrt.evaluation.coco import write_coco_results
from approxrt.evaluation.mot_io import format_mot_lines
from approxrt.result import FrameResult
from approxrt.sinks.base import BaseSink


class MotResultsSink(BaseSink):
    """Writes ``frame,id,x,y,w,h,conf,-1,-1,-1`` lines (MOTChallenge results).

    MOT results have no class column, so every kept box is written; pass
    ``classes=["person"]`` for a file a MOT pedestrian benchmark can score.
    Untracked boxes are written with id -1.

    Args:
        path: the ``results.txt`` file (created or truncated).
        classes: class ids or COCO names to keep; default all.
    """

    def __init__(
        self, path: str | Path, classes: Collection[int | str] | str | None = None
    ) -> None:
        super().__init__(classes)
        self.path = Path(path)
        self._file = open(self.path, "w", encoding="utf-8", buffering=1 << 16)

    def _write(self, result: FrameResult, detections: Detections) -> None:
        self._file.write(format_mot_lines(result.frame.index + 1, detections))

    def _close(self) -> None:
        self._file.close()


class CocoResultsSink(BaseSink):
    """Collects boxes and writes a COCO results json on `close`.

    Each box becomes ``{"image_id": frame number, "category_id": COCO id,
    "bbox": [x, y, w, h], "score": s}``.

    Args:
        path: the ``results.coco.json`` file, written when the sink closes.
        classes: class ids or COCO names to keep; default all.
    """

    def __init__(
        self, path: str | Path, classes: Collection[int | str] | str | None = None
    ) -> None:
        super().__init__(classes)
        self.path = Path(path)
        self._frames: list[tuple[int, Detections]] = []

    def _write(self, result: FrameResult, detections: Detections) -> None:
        if len(detections):
            # Copy only the columns COCO needs; the loop may reuse its arrays.
            self._frames.append(
                (
                    result.frame.index + 1,
                    Detections(
                        detections.xyxy.copy(),
                        detections.confidence.copy(),
                        detections.class_id.copy(),
                    ),
                )
            )

    def _close(self) -> None:
        write_coco_results(self.path, Detections.stack(self._frames))
        self._frames.clear()
