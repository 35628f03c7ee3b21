"""`Source`: an explicit state machine that yields `Frame`s.

Every source goes ``NEW -> RUNNING -> ENDED`` as it is read, and to ``CLOSED`` when
closed (from any state). Opening the underlying file, folder, camera or stream
happens in the constructor, so a bad spec fails before anything else runs::

    with VideoFileSource("clip.mp4") as source:
        for frame in source:          # Frame(image, index, timestamp_s, ...)
            ...
"""

from __future__ import annotations

import enum
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator

import numpy as np

from approxrt.frame import Frame

logger = logging.getLogger(__name__)


class StreamStateError(RuntimeError):
    """An operation that the source's current state does not allow."""


class SourceState(enum.Enum):
    """Where a source is in its life.

    NEW: opened, no frame read yet. RUNNING: frames are being read. ENDED: the
    source has no more frames (reading again stops at once). CLOSED: resources
    released; reading raises `StreamStateError`.
    """

    NEW = "new"
    RUNNING = "running"
    ENDED = "ended"
    CLOSED = "closed"


def is_valid_image(image: object) -> bool:
    """Whether ``image`` is a non-empty ``(h, w, 3) uint8`` array."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.size > 0
    )


class Source(ABC):
    """An iterator of `Frame` with explicit states; also a context manager.

    Attributes:
        source_id: the stream name every frame carries.
        fps: frames per second (the container's, the folder's or the camera's).
        frame_count: frames in the source, or None when unknown or live.
        width: frame width in pixels, or None until known.
        height: frame height in pixels, or None until known.
        bad_frames: frames that could not be read or decoded and were skipped.
        dropped_frames: live frames replaced by a newer one before they were read
            (always 0 for files, folders and synthetic scenes).
    """

    def __init__(self, source_id: str) -> None:
        self.source_id = str(source_id)
        self.fps: float | None = None
        self.frame_count: int | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.bad_frames = 0
        self.dropped_frames = 0
        self._state = SourceState.NEW

    @property
    def state(self) -> SourceState:
        return self._state

    @property
    def is_live(self) -> bool:
        """Whether frames arrive in real time (cameras, network streams)."""
        return False

    def read(self) -> Frame | None:
        """The next frame, or None once the source has ended.

        Raises:
            StreamStateError: the source is closed.
        """
        if self._state is SourceState.CLOSED:
            raise StreamStateError(
                f"source {self.source_id!r} is closed; open a new source to read again"
            )
        if self._state is SourceState.ENDED:
            return None
        self._state = SourceState.RUNNING
        frame = self._read_next()
        # close() from another thread may have run meanwhile; CLOSED must stay.
        if frame is None and self._state is SourceState.RUNNING:
            self._state = SourceState.ENDED
        return frame

    def close(self) -> None:
        """Release the underlying resources; idempotent."""
        if self._state is SourceState.CLOSED:
            return
        self._state = SourceState.CLOSED
        self._release()

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        frame = self.read()
        if frame is None:
            raise StopIteration
        return frame

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        # Best effort only: a source dropped without close() still frees its capture.
        try:
            if getattr(self, "_state", SourceState.CLOSED) is not SourceState.CLOSED:
                self.close()
        except Exception:  # noqa: S110 - never raise from a finaliser
            pass

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(source_id={self.source_id!r}, "
            f"state={self._state.value}, fps={self.fps}, "
            f"frame_count={self.frame_count}, "
            f"size={self.width}x{self.height})"
        )

    def _set_size_from(self, image: np.ndarray) -> None:
        if self.width is None or self.height is None:
            self.height, self.width = int(image.shape[0]), int(image.shape[1])

    def _count_bad_frame(self, position: int, why: str) -> None:
        self.bad_frames += 1
        logger.warning(
            "source %r: skipped frame %d (%s); %d bad so far",
            self.source_id,
            position,
            why,
            self.bad_frames,
        )

    @abstractmethod
    def _read_next(self) -> Frame | None:
        """The next good frame, or None at the end; called only while not ENDED."""

    @abstractmethod
    def _release(self) -> None:
        """Free captures, threads and files."""


class FileSource(Source):
    """A finite source that decodes its first frame when opened.

    A file or folder that opens but holds no decodable frame then fails at open,
    with the path in the message, instead of as an empty stream later.
    """

    def _open_first(self, what: str) -> None:
        """Decode the first good frame now; ``what`` names the source in errors."""
        self._first: Frame | None = self._read_good()
        if self._first is None:
            self._release()
            raise ValueError(f"{what}: opens, but no frame can be decoded")

    def _read_next(self) -> Frame | None:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        return self._read_good()

    @abstractmethod
    def _read_good(self) -> Frame | None:
        """The next frame that decodes (bad ones counted and skipped), or None."""


def timed_ms(start_s: float) -> float:
    """Milliseconds since ``start_s`` (a `time.perf_counter` reading)."""
    return (time.perf_counter() - start_s) * 1000.0
