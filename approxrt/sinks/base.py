"""The `Sink` protocol, the class filter every sink applies, and fan-out."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Protocol, runtime_checkable

import numpy as np

from approxrt.classes import as_class_filter
from approxrt.detections import Detections
from approxrt.result import FrameResult


@runtime_checkable
class Sink(Protocol):
    """Consumes the frame loop's results, one `FrameResult` at a time."""

    def write(self, result: FrameResult) -> None: ...

    def close(self) -> None: ...


class SinkClosedError(RuntimeError):
    """`write` was called on a sink that is already closed."""


def select_classes(
    detections: Detections, classes: frozenset[int] | None
) -> Detections:
    """The boxes whose class is in ``classes`` (all of them when None)."""
    if classes is None or len(detections) == 0:
        return detections
    keep = np.isin(detections.class_id, np.fromiter(classes, np.int64, len(classes)))
    return detections if keep.all() else detections[keep]


class BaseSink:
    """Shared plumbing: the class filter, the closed state, ``with`` support.

    Subclasses implement `_write` and `_close`; `write` and `close` guard them.
    """

    def __init__(self, classes: Collection[int | str] | str | None = None) -> None:
        self.classes = as_class_filter(classes)
        self.closed = False

    def write(self, result: FrameResult) -> None:
        if self.closed:
            raise SinkClosedError(f"{type(self).__name__}: write after close")
        self._write(result, select_classes(result.detections, self.classes))

    def close(self) -> None:
        """Finish the output; closing twice is a no-op."""
        if not self.closed:
            self.closed = True
            self._close()

    def _write(self, result: FrameResult, detections: Detections) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class MultiSink:
    """Writes every result to several sinks; `close` closes them all.

    If closing one fails, the others are still closed and the first error is
    raised afterwards.
    """

    def __init__(self, sinks: Iterable[Sink]) -> None:
        self.sinks = list(sinks)

    def write(self, result: FrameResult) -> None:
        for sink in self.sinks:
            sink.write(result)

    def close(self) -> None:
        errors = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as error:  # close the rest, then report the first
                errors.append(error)
        if errors:
            raise errors[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
