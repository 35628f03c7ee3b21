"""`Detections`: the one columnar type every stage takes and returns.

Boxes are absolute pixel ``xyxy`` in the coordinates of the frame they were found in.
Class ids are contiguous COCO indices (0 = person, see `approxrt.classes`).
The boxes of a whole sequence (results and ground truth in `approxrt.evaluation`)
are one `Detections` too, built by `Detections.stack`, with each box's frame
number in the ``"frame"`` data column (`Detections.frame`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

UNTRACKED = -1
FRAME = "frame"  # data column: the frame number of each box of a sequence


def _as_array(name: str, value, dtype, shape_tail: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value, dtype=dtype)
    if array.size == 0:
        array = array.reshape((0, *shape_tail))
    if array.ndim != 1 + len(shape_tail) or array.shape[1:] != shape_tail:
        expected = (
            "(n, " + ", ".join(map(str, shape_tail)) + ")" if shape_tail else "(n,)"
        )
        raise ValueError(
            f"Detections.{name}: expected shape {expected}, got {array.shape}"
        )
    return array


@dataclass(eq=False)
class Detections:
    """Boxes found in one frame.

    Attributes:
        xyxy: ``(n, 4) float32`` corners ``x1, y1, x2, y2`` in pixels.
        confidence: ``(n,) float32`` score in ``[0, 1]``; tracked boxes carry a
            decayed copy of the detector's score.
        class_id: ``(n,) int64`` contiguous COCO class index.
        tracker_id: ``(n,) int64`` identity across frames, ``-1`` when untracked.
        data: extra per-box columns, each an array of length ``n``.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    tracker_id: np.ndarray = field(default=None)  # type: ignore[assignment]
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = _as_array("xyxy", self.xyxy, np.float32, (4,))
        self.confidence = _as_array("confidence", self.confidence, np.float32, ())
        self.class_id = _as_array("class_id", self.class_id, np.int64, ())
        if self.tracker_id is None:
            self.tracker_id = np.full(len(self.xyxy), UNTRACKED, dtype=np.int64)
        self.tracker_id = _as_array("tracker_id", self.tracker_id, np.int64, ())
        n = len(self.xyxy)
        columns = {
            "confidence": self.confidence,
            "class_id": self.class_id,
            "tracker_id": self.tracker_id,
        }
        columns.update({f"data[{k!r}]": np.asarray(v) for k, v in self.data.items()})
        for name, column in columns.items():
            if len(column) != n:
                raise ValueError(
                    f"Detections.{name}: expected length {n} (the number of boxes), "
                    f"got {len(column)}"
                )

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
        )

    @classmethod
    def merge(cls, parts: Iterable[Detections]) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        keys = set(parts[0].data)
        if any(set(p.data) != keys for p in parts):
            raise ValueError(
                "Detections.merge: every part must have the same data keys"
            )
        return cls._joined(
            parts, {k: np.concatenate([p.data[k] for p in parts]) for k in keys}
        )

    @classmethod
    def _joined(cls, parts: list[Detections], data: dict) -> Detections:
        """The boxes of ``parts`` one after another, with ``data`` columns."""
        if not parts:
            return cls(*cls.empty()._columns(), data)
        return cls(
            *(
                np.concatenate(c)
                for c in zip(*(p._columns() for p in parts), strict=True)
            ),
            data,
        )

    def _columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.xyxy, self.confidence, self.class_id, self.tracker_id

    @classmethod
    def stack(cls, frames: Iterable[tuple[int, Detections]]) -> Detections:
        """The boxes of many frames in one object, for scoring a whole sequence.

        Args:
            frames: ``(frame_number, detections)`` pairs; the number goes into
                the ``"frame"`` data column (`frame`) of each of their boxes.
                Their other data columns are not kept (frames may differ in
                them, e.g. detection and tracking frames).

        Returns:
            The boxes in the order given; empty, with an empty frame column,
            when no frame has any.
        """
        parts = [(number, d) for number, d in frames if len(d)]
        numbers = [np.full(len(d), number, np.int64) for number, d in parts]
        return cls._joined(
            [d for _, d in parts],
            {FRAME: np.concatenate(numbers) if numbers else np.zeros(0, np.int64)},
        )

    @property
    def frame(self) -> np.ndarray:
        """``(n,) int64`` frame number of each box of a sequence (see `stack`).

        Raises:
            ValueError: these boxes carry no ``"frame"`` data column.
        """
        if FRAME not in self.data:
            raise ValueError(
                "Detections.frame: these boxes carry no frame numbers; build a "
                "sequence with Detections.stack or a 'frame' data column"
            )
        return self.data[FRAME]

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> Detections:
        """Select boxes by boolean mask, integer array or slice; returns a copy."""
        if isinstance(index, int | np.integer):
            index = [index]
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.class_id[index],
            self.tracker_id[index],
            {k: np.asarray(v)[index] for k, v in self.data.items()},
        )

    def with_columns(self, **columns: np.ndarray) -> Detections:
        """A copy with some of the four columns replaced (by keyword)."""
        fields = {
            "xyxy": self.xyxy,
            "confidence": self.confidence,
            "class_id": self.class_id,
            "tracker_id": self.tracker_id,
        }
        unknown = set(columns) - set(fields)
        if unknown:
            raise TypeError(
                f"Detections.with_columns: unknown columns {sorted(unknown)}"
            )
        fields.update(columns)
        return Detections(**fields, data=dict(self.data))

    @property
    def xywh(self) -> np.ndarray:
        """``(n, 4) float64`` top-left corner, width and height in pixels."""
        xyxy = self.xyxy.astype(np.float64)
        return np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)

    @property
    def area(self) -> np.ndarray:
        """``(n,) float32`` box areas in square pixels."""
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def scaled(self, factor: float) -> Detections:
        """The same boxes with coordinates multiplied by ``factor``."""
        return self.with_columns(xyxy=self.xyxy * np.float32(factor))

    def clipped(self, width: int, height: int) -> Detections:
        """Boxes clipped to a ``width`` x ``height`` frame."""
        xyxy = self.xyxy.copy()
        np.clip(xyxy[:, 0::2], 0, width, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, height, out=xyxy[:, 1::2])
        return self.with_columns(xyxy=xyxy)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(n, m) float32`` IoU between ``(n, 4)`` and ``(m, 4)`` xyxy boxes."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)
