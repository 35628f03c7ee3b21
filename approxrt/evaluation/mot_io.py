"""MOTChallenge text files: ground truth in, results in and out.

Frames in these files are 1-based: frame number ``f`` is ``Frame.index == f - 1``.
Everything in `approxrt.evaluation` keeps frame *numbers* (1-based), so a results
file, a gt file and a COCO json (whose image ids are the frame numbers) line up.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from approxrt.classes import COCO_CLASSES
from approxrt.detections import Detections
from approxrt.evaluation.boxes import PERSON, sequence_from_xywh

RESULTS_TXT = "results.txt"

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


def write_mot_results(path: str | Path, table: Detections) -> None:
    """Write a sequence's boxes as a MOTChallenge results file, sorted by frame."""
    table = table[np.argsort(table.frame, kind="stable")]
    with open(path, "w", encoding="utf-8") as file:
        file.write(
            _mot_lines(table.frame, table.tracker_id, table.xyxy, table.confidence)
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


def read_mot_gt(path: str | Path, gt_format: str = "mot15") -> Detections:
    """Read a MOTChallenge ground-truth file.

    Args:
        path: ``gt.txt`` with columns ``frame,id,x,y,w,h,flag,...``.
        gt_format: ``"mot15"`` (every row a person, columns 8-10 are world
            coordinates) or ``"mot16"``/``"mot17"``/``"mot20"`` (column 8 is the
            MOT class, mapped by `MOT16_CLASSES`; column 9 the visibility).

    Returns:
        The boxes of the sequence (`approxrt.evaluation.boxes`); rows with flag 0
        (and MOT16 distractor classes) are marked ignored.

    Raises:
        ValueError: unknown ``gt_format``, a missing file, or a bad line (the
            message names the file, the line number and the problem).
    """
    if gt_format not in GT_FORMATS:
        raise ValueError(f"gt_format: expected one of {GT_FORMATS}, got {gt_format!r}")
    path = Path(path)
    rows, line_numbers = _parse_rows(path, min_columns=7 if gt_format == "mot15" else 9)
    if not rows:
        return sequence_from_xywh([], [], ignore=[])
    data = np.array([row[:7] if gt_format == "mot15" else row[:9] for row in rows])
    ignore = data[:, 6] == 0
    class_id = np.full(len(data), PERSON, np.int64)
    keep = np.ones(len(data), bool)
    if gt_format != "mot15":
        class_id, always_ignored, keep = _map_mot16_classes(
            data[:, 7], path, line_numbers
        )
        ignore |= always_ignored
    table = sequence_from_xywh(
        data[:, 0],
        data[:, 2:6],
        class_id=class_id,
        tracker_id=data[:, 1],
        ignore=ignore,
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


def read_mot_results(path: str | Path, class_id: int = PERSON) -> Detections:
    """Read a MOTChallenge results file ``frame,id,x,y,w,h,conf[,...]``.

    Results carry no class, so every box gets ``class_id`` (person by default).
    """
    rows, _ = _parse_rows(Path(path), min_columns=7)
    if not rows:
        return sequence_from_xywh([], [])
    data = np.array([row[:7] for row in rows])
    return sequence_from_xywh(
        data[:, 0],
        data[:, 2:6],
        confidence=data[:, 6],
        class_id=np.full(len(data), class_id),
        tracker_id=data[:, 1],
    )
