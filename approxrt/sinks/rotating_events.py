"""`RotatingJsonlEventSink`: a daemon's per-frame events, in files of bounded size.

The same lines as `JsonlEventSink` (see `approxrt.sinks.events`), written through
the standard library's `RotatingFileHandler`: when ``events.jsonl`` would pass
``max_bytes`` it becomes ``events.jsonl.1`` (the older ones shift up to
``backups``, the oldest is deleted), so a stream that runs for months keeps a
bounded amount of disk. Every line is flushed as it is written: a daemon stopped
at any moment has every accepted frame's event on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from itertools import count
from logging.handlers import RotatingFileHandler
from pathlib import Path

from approxrt.detections import Detections
from approxrt.result import FrameResult
from approxrt.sinks.base import BaseSink
from approxrt.sinks.events import event_json

_LOGGER_IDS = count()


class RotatingJsonlEventSink(BaseSink):
    """Appends one event line per frame; rotates at ``max_bytes``.

    Args:
        path: the current ``.jsonl`` file (appended to, its folder created).
        max_bytes: size at which the file is rotated.
        backups: how many rotated files to keep.
        classes: class ids or COCO names to keep in ``detections``; default all.
        stream: stream name to write; default each frame's ``source_id``.
    """

    def __init__(
        self,
        path: str | Path,
        max_bytes: int = 50_000_000,
        backups: int = 5,
        classes: Collection[int | str] | str | None = None,
        stream: str | None = None,
    ) -> None:
        super().__init__(classes)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.stream = stream
        self._handler = RotatingFileHandler(
            self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        # A logger of its own, not in the logging tree: events never reach logs.
        self._logger = logging.Logger(f"approxrt.events.{next(_LOGGER_IDS)}")
        self._logger.addHandler(self._handler)
        self._logger.propagate = False

    def _write(self, result: FrameResult, detections: Detections) -> None:
        self._logger.info(event_json(result, detections, self.stream))

    def _close(self) -> None:
        self._logger.removeHandler(self._handler)
        self._handler.close()
