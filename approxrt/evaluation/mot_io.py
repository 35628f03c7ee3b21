"""MOTChallenge text files: ground truth in, results in and out.

Frames in these files are 1-based: frame number ``f`` is ``Frame.index == f - 1``.
Everything in `approxrt.evaluation` keeps frame *numbers* (1-based), so a results
file, a gt file and a COCO json (whose image ids are the frame numbers) line up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from approxrt.classes import COCO_CLASSES
from approxrt.detections import Detections

RESULTS_TXT = "results.txt"
PERSON = COCO_CLASSES.index("person")

# gt formats: mot15 has no class column (every row is a person); mot16 and later
# carry the class in column 8 and the visibility ratio in column 9.
GT_FORMATS = ("mot15", "mot16", "mot17", "mot20")

# MOT16+ class numbers -> (contiguous COCO class, always ignored). Persons that
# are not walking pedestrians (on a vehicle, static, distractors, reflections)
# are ignore regions, as the MOT16 devkit treats them; occluders (9-11) and
# non-motorised vehicles (6) have no COCO class and are dropped.
MOT16_CLASSES: dict[int, tuple[int, bool] | None] = {
    1: (PERSON, False),
    2: (PERSON, True),
    3: (COCO_CLASSES.index("car"), False),
    4: (COCO_CLASSES.index("bicycle"), False),
    5: (COCO_CLASSES.index("motorcycle"), False),
    6: None,
    7: (PERSON, True),
    8: (PERSON, True),
    9: None,
    10: None,
    11: None,
    12: (PERSON, True),
}

_SEPARATOR = re.compile(r"\s*,\s*|\s+")


@dataclass(eq=False)
class BoxTable:
    """The boxes of one whole sequence, one row per box, columnar.

    Attributes:
        frame: ``(n,) int64`` 1-based frame number.
        xyxy: ``(n, 4) float64`` corners in pixels.
        confidence: ``(n,) float64`` score; 1 for ground truth.
        class_id: ``(n,) int64`` contiguous COCO class (0 = person).
        track_id: ``(n,) int64`` identity, -1 when none.
        ignore: ``(n,) bool`` ground-truth rows that are not scored (flag 0,
            crowd or distractor); always False for results.
    """

    frame: np.ndarray
    xyxy: np.ndarray
    confidence: np.ndarray = field(default=None)  # type: ignore[assignment]
    class_id: np.ndarray = field(default=None)  # type: ignore[assignment]
    track_id: np.ndarray = field(default=None)  # type: ignore[assignment]
    ignore: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.frame = np.asarray(self.frame, np.int64).reshape(-1)
        n = len(self.frame)
        self.xyxy = np.asarray(self.xyxy, np.float64)
        if self.xyxy.size != 4 * n:
            raise ValueError(
                f"BoxTable.xyxy: expected shape ({n}, 4), got {self.xyxy.shape}"
            )
        self.xyxy = self.xyxy.reshape(n, 4)
        defaults = {
            "confidence": (1.0, np.float64),
            "class_id": (PERSON, np.int64),
            "track_id": (-1, np.int64),
            "ignore": (False, bool),
        }
        for name, (fill, dtype) in defaults.items():
            value = getattr(self, name)
            column = (
                np.full(n, fill, dtype) if value is None else np.asarray(value, dtype)
            )
            if column.shape != (n,):
                raise ValueError(
                    f"BoxTable.{name}: expected shape ({n},), got {column.shape}"
                )
            setattr(self, name, column)

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, index) -> BoxTable:
        """Rows by boolean mask or integer array; returns a copy."""
        return BoxTable(
            self.frame[index],
            self.xyxy[index],
            self.confidence[index],
            self.class_id[index],
            self.track_id[index],
            self.ignore[index],
        )

    @property
    def xywh(self) -> np.ndarray:
        """``(n, 4) float64`` top-left corner, width and height."""
        top_left = self.xyxy[:, :2]
        return np.concatenate([top_left, self.xyxy[:, 2:] - top_left], 1)

    @classmethod
    def empty(cls) -> BoxTable:
        return cls(np.zeros(0, np.int64), np.zeros((0, 4)))

    @classmethod
    def from_xywh(cls, frame, xywh, **columns) -> BoxTable:
        xywh = np.asarray(xywh, np.float64).reshape(-1, 4)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
        return cls(frame, xyxy, **columns)

    @classmethod
    def from_detections(cls, frames: Iterable[tuple[int, Detections]]) -> BoxTable:
        """Stack ``(frame_number, detections)`` pairs into one table."""
        parts = [(number, d) for number, d in frames if len(d)]
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([np.full(len(d), number, np.int64) for number, d in parts]),
            np.concatenate([d.xyxy for _, d in parts]),
            np.concatenate([d.confidence for _, d in parts]),
            np.concatenate([d.class_id for _, d in parts]),
            np.concatenate([d.tracker_id for _, d in parts]),
        )


def format_mot_lines(frame_number: int, detections: Detections) -> str:
    """Result lines ``frame,id,x,y,w,h,conf,-1,-1,-1`` for one frame, newline-ended.

    Boxes get 2 decimals, confidences 4; an untracked box is written with id -1.
    """
    return _mot_lines(
        np.full(len(detections), frame_number),
        detections.tracker_id,
        detections.xyxy,
        detections.confidence,
    )


def write_mot_results(path: str | Path, table: BoxTable) -> None:
    """Write ``table`` as a MOTChallenge results file, sorted by frame."""
    table = table[np.argsort(table.frame, kind="stable")]
    with open(path, "w", encoding="utf-8") as file:
        file.write(
            _mot_lines(table.frame, table.track_id, table.xyxy, table.confidence)
        )


def _mot_lines(
    frame: np.ndarray, track_id: np.ndarray, xyxy: np.ndarray, confidence: np.ndarray
) -> str:
    xyxy = np.asarray(xyxy, np.float64)
    wh = xyxy[:, 2:] - xyxy[:, :2]
    rows = zip(
        frame.tolist(),
        track_id.tolist(),
        xyxy[:, 0].tolist(),
        xyxy[:, 1].tolist(),
        wh[:, 0].tolist(),
        wh[:, 1].tolist(),
        np.asarray(confidence, np.float64).tolist(),
        strict=True,
    )
    return "".join(
        f"{f},{track},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{conf:.4f},-1,-1,-1\n"
        for f, track, x, y, w, h, conf in rows
    )


def _parse_rows(path: Path, min_columns: int) -> tuple[list[list[float]], list[int]]:
    """Numeric rows of a comma (or whitespace) separated file and their line numbers.

    Blank lines are skipped.
    """
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    rows, line_numbers = [], []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            text = line.strip()
            if text:
                rows.append(_parse_line(path, number, text, min_columns))
                line_numbers.append(number)
    return rows, line_numbers


def _parse_line(path: Path, number: int, text: str, min_columns: int) -> list[float]:
    fields = _SEPARATOR.split(text)
    if len(fields) < min_columns:
        raise ValueError(
            f"{path}:{number}: expected at least {min_columns} "
            f"comma-separated columns, got {len(fields)}: {text!r}"
        )
    try:
        row = [float(value) for value in fields]
    except ValueError:
        raise ValueError(f"{path}:{number}: non-numeric value in {text!r}") from None
    _check_row(path, number, row, text)
    return row


def _check_row(path: Path, number: int, row: list[float], text: str) -> None:
    if not all(np.isfinite(row[:7])):
        raise ValueError(f"{path}:{number}: non-finite value in {text!r}")
    if row[0] < 1 or row[0] != int(row[0]):
        raise ValueError(
            f"{path}:{number}: frame must be an integer >= 1 (frames are "
            f"1-based), got {row[0]:g}"
        )
    if row[4] < 0 or row[5] < 0:
        raise ValueError(f"{path}:{number}: negative box width or height in {text!r}")


def read_mot_gt(path: str | Path, gt_format: str = "mot15") -> BoxTable:
    """Read a MOTChallenge ground-truth file.

    Args:
        path: ``gt.txt`` with columns ``frame,id,x,y,w,h,flag,...``.
        gt_format: ``"mot15"`` (every row a person, columns 8-10 are world
            coordinates) or ``"mot16"``/``"mot17"``/``"mot20"`` (column 8 is the
            MOT class, mapped by `MOT16_CLASSES`; column 9 the visibility).

    Returns:
        The boxes; rows with flag 0 (and MOT16 distractor classes) have
        ``ignore`` set.

    Raises:
        ValueError: unknown ``gt_format``, a missing file, or a bad line (the
            message names the file, the line number and the problem).
    """
    if gt_format not in GT_FORMATS:
        raise ValueError(f"gt_format: expected one of {GT_FORMATS}, got {gt_format!r}")
    path = Path(path)
    rows, line_numbers = _parse_rows(path, min_columns=7 if gt_format == "mot15" else 9)
    if not rows:
        return BoxTable.empty()
    data = np.array([row[:7] if gt_format == "mot15" else row[:9] for row in rows])
    ignore = data[:, 6] == 0
    class_id = np.full(len(data), PERSON, np.int64)
    keep = np.ones(len(data), bool)
    if gt_format != "mot15":
        class_id, always_ignored, keep = _map_mot16_classes(
            data[:, 7], path, line_numbers
        )
        ignore |= always_ignored
    table = BoxTable.from_xywh(
        data[:, 0], data[:, 2:6], class_id=class_id, track_id=data[:, 1], ignore=ignore
    )
    return table[keep]


def _map_mot16_classes(
    mot_class: np.ndarray, path: Path, line_numbers: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MOT16 class column -> (COCO class id, always ignored, kept) per row."""
    n = len(mot_class)
    class_id, ignore, keep = np.zeros(n, np.int64), np.zeros(n, bool), np.ones(n, bool)
    for i, value in enumerate(mot_class.astype(np.int64).tolist()):
        if value not in MOT16_CLASSES:
            raise ValueError(
                f"{path}:{line_numbers[i]}: unknown MOT class {value}; "
                f"expected one of {sorted(MOT16_CLASSES)}"
            )
        mapped = MOT16_CLASSES[value]
        if mapped is None:
            keep[i] = False
        else:
            class_id[i], ignore[i] = mapped
    return class_id, ignore, keep


def read_mot_results(path: str | Path, class_id: int = PERSON) -> BoxTable:
    """Read a MOTChallenge results file ``frame,id,x,y,w,h,conf[,...]``.

    Results carry no class, so every box gets ``class_id`` (person by default).
    """
    rows, _ = _parse_rows(Path(path), min_columns=7)
    if not rows:
        return BoxTable.empty()
    data = np.array([row[:7] for row in rows])
    return BoxTable.from_xywh(
        data[:, 0],
        data[:, 2:6],
        confidence=data[:, 6],
        class_id=np.full(len(data), class_id),
        track_id=data[:, 1],
    )
