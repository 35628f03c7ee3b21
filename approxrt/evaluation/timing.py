"""``timing.csv``: when each output of a run was ready, for streaming evaluation.

One row per frame the runtime produced an output for (boxes or none), in the
order they came out::

    frame,timestamp_s,arrival_s,finish_s
    1,0.000000,0.000000,0.031207
    2,0.100000,0.100113,0.131880

``frame`` is the 1-based frame number (MOTChallenge's, the COCO image id);
``timestamp_s`` the frame's time in its source; ``arrival_s`` and ``finish_s``
are seconds on the run's stream clock (0 = the first frame's arrival, see
`approxrt.sources.realtime`): when the frame reached the runtime and when its
detections were ready. Stream-clock times carry 6 decimals (microseconds).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from approxrt.result import FrameResult

TIMING_CSV = "timing.csv"
TIMING_COLUMNS = ("frame", "timestamp_s", "arrival_s", "finish_s")


@dataclass(frozen=True, eq=False)
class OutputTimes:
    """When each output of a run was ready.

    Attributes:
        frame: ``(n,) int64`` 1-based frame number each output was computed on.
        finish_s: ``(n,) float64`` when it was ready, on the stream clock.
        arrival_s: ``(n,) float64`` when its frame arrived (NaN when unknown).
    """

    frame: np.ndarray
    finish_s: np.ndarray
    arrival_s: np.ndarray

    def __post_init__(self) -> None:
        frame = np.asarray(self.frame, np.int64).reshape(-1)
        n = len(frame)
        columns = {"finish_s": self.finish_s, "arrival_s": self.arrival_s}
        for name, value in columns.items():
            column = np.asarray(value, np.float64).reshape(-1)
            if column.shape != (n,):
                raise ValueError(
                    f"OutputTimes.{name}: expected shape ({n},), got {column.shape}"
                )
            object.__setattr__(self, name, column)
        object.__setattr__(self, "frame", frame)
        if not np.isfinite(self.finish_s).all():
            raise ValueError(
                "OutputTimes.finish_s: every output needs a finite finish time "
                "(stamp the loop's results with approxrt.sources.stamp_finish_times)"
            )

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def from_frame_results(cls, results: Iterable[FrameResult]) -> OutputTimes:
        """From the frame loop's results, once their ``finish_s`` is stamped."""
        rows = [
            (
                r.frame.index + 1,
                np.nan if r.finish_s is None else r.finish_s,
                np.nan if r.frame.arrival_s is None else r.frame.arrival_s,
            )
            for r in results
        ]
        frame, finish_s, arrival_s = zip(*rows, strict=True) if rows else ((), (), ())
        return cls(np.asarray(frame), np.asarray(finish_s), np.asarray(arrival_s))


def format_timing_line(result: FrameResult) -> str:
    """One ``timing.csv`` row for ``result``, newline-ended (empty for None)."""
    frame = result.frame
    return (
        f"{frame.index + 1},{frame.timestamp_s:.6f},"
        f"{_seconds(frame.arrival_s)},{_seconds(result.finish_s)}\n"
    )


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def read_timing(path: str | Path) -> OutputTimes:
    """Read a ``timing.csv``.

    Raises:
        ValueError: a missing file, a wrong header, or a bad row (the message
            names the file and the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    with open(path, encoding="utf-8", newline="") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != TIMING_COLUMNS:
            raise ValueError(
                f"{path}:1: expected the header {','.join(TIMING_COLUMNS)}, "
                f"got {','.join(header or [])!r}"
            )
        rows = [
            _parse_row(path, number, row)
            for number, row in enumerate(reader, start=2)
            if row
        ]
    if not rows:
        return OutputTimes(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    frame, finish_s, arrival_s = (np.asarray(c) for c in zip(*rows, strict=True))
    return OutputTimes(frame, finish_s, arrival_s)


def _parse_row(path: Path, number: int, row: list[str]) -> tuple[int, float, float]:
    if len(row) != len(TIMING_COLUMNS):
        raise ValueError(
            f"{path}:{number}: expected {len(TIMING_COLUMNS)} columns, got {row!r}"
        )
    try:
        frame = int(row[0])
        arrival_s = float(row[2]) if row[2].strip() else np.nan
        finish_s = float(row[3])
    except ValueError:
        raise ValueError(
            f"{path}:{number}: expected an integer frame and numeric seconds "
            f"(finish_s required), got {row!r}"
        ) from None
    if frame < 1:
        raise ValueError(f"{path}:{number}: frame must be >= 1 (1-based), got {frame}")
    return frame, finish_s, arrival_s
