"""`TimingSink`: ``timing.csv``, when each output was ready (streaming evaluation).

The format is `approxrt.evaluation.timing`'s. One row per result, boxes or none:
an output without boxes still replaces the previous one on a viewer's screen.
"""

from __future__ import annotations

from pathlib import Path

from approxrt.detections import Detections
from approxrt.evaluation.timing import TIMING_COLUMNS, format_timing_line
from approxrt.result import FrameResult
from approxrt.sinks.base import BaseSink


class TimingSink(BaseSink):
    """Writes one ``frame,timestamp_s,arrival_s,finish_s`` row per result.

    Args:
        path: the ``timing.csv`` file (created or truncated).
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._file = open(self.path, "w", encoding="utf-8", buffering=1 << 16)
        self._file.write(",".join(TIMING_COLUMNS) + "\n")

    def _write(self, result: FrameResult, detections: Detections) -> None:
        self._file.write(format_timing_line(result))

    def _close(self) -> None:
        self._file.close()
