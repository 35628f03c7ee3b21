"""Live sources: cameras and network streams, read by a thread that keeps the newest.

A reader thread reads the capture as fast as frames arrive and offers each to a
queue that holds one frame: when the consumer has not taken the previous one yet,
that one is dropped (counted in ``dropped_frames``) and replaced. The consumer so
always gets the newest frame and never falls behind the stream, however slow it is.

When the stream drops (``failures_before_reconnect`` failed reads in a row), the
reader releases the capture and reopens it up to ``reconnect_attempts`` times,
waiting ``reconnect_backoff_s``, then twice that, ... (at most
``max_reconnect_backoff_s``) before each try. When every try fails, the source ends
once the last frame has been read. ``close()`` sets a stop event and joins the
thread with a timeout.

Frame indices are the reader's capture sequence numbers, so a gap between two
frames the consumer got is the number of frames dropped between them.
``timestamp_s`` is the capture time since the reader started. ``decode_ms`` is the
time of the capture's ``read`` call, which for a live source also includes waiting
for the frame to arrive (OpenCV does not separate the two).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2

from approxrt.frame import Frame
from approxrt.sources.base import Source, SourceState, is_valid_image, timed_ms

logger = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
_POLL_S = 0.05

# Anything with OpenCV's VideoCapture methods isOpened/read/get/set/release.
Capture = Any


class LiveSource(Source):
    """Base of `CameraSource` and `StreamSource`: the newest-frame reader thread.

    Args:
        source_id: name carried by every frame.
        opener: returns a new, opened-or-not capture; called once here and again on
            every reconnect attempt.
        describe: how errors name the source (e.g. ``"camera 0"``).
        reconnect_attempts: reopen tries after the stream drops; 0 ends the source
            at the first drop, raising it rides out longer outages.
        reconnect_backoff_s: wait before the first reopen try; doubles per try.
        max_reconnect_backoff_s: cap on that wait.
        failures_before_reconnect: failed reads in a row that count as a drop;
            raising it tolerates more glitches before reopening.
        join_timeout_s: how long ``close()`` waits for the reader thread.

    Raises:
        ValueError: the first open fails.
    """

    def __init__(
        self,
        source_id: str,
        opener: Callable[[], Capture],
        describe: str,
        *,
        reconnect_attempts: int = 5,
        reconnect_backoff_s: float = 0.5,
        max_reconnect_backoff_s: float = 8.0,
        failures_before_reconnect: int = 3,
        join_timeout_s: float = 2.0,
    ) -> None:
        super().__init__(source_id)
        _check_non_negative(
            reconnect_attempts=reconnect_attempts,
            reconnect_backoff_s=reconnect_backoff_s,
            max_reconnect_backoff_s=max_reconnect_backoff_s,
            join_timeout_s=join_timeout_s,
        )
        if failures_before_reconnect < 1:
            raise ValueError(
                f"failures_before_reconnect: expected >= 1, got "
                f"{failures_before_reconnect!r}"
            )
        self._opener = opener
        self.reconnect_attempts = int(reconnect_attempts)
        self.reconnect_backoff_s = float(reconnect_backoff_s)
        self.max_reconnect_backoff_s = float(max_reconnect_backoff_s)
        self.failures_before_reconnect = int(failures_before_reconnect)
        self.join_timeout_s = float(join_timeout_s)
        self.reconnects = 0
        self.read_failures = 0
        self._capture = opener()
        if not self._capture.isOpened():
            self._capture.release()
            raise ValueError(f"{describe}: cannot be opened")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if 0 < fps < 1000 else None
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width > 0 and height > 0:
            self.width, self.height = width, height
        self._queue: queue.Queue[Frame] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._reader_done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_live(self) -> bool:
        return True

    @property
    def reader_running(self) -> bool:
        """Whether the reader thread is alive (False before the first read)."""
        return self._thread is not None and self._thread.is_alive()

    def _read_next(self) -> Frame | None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run_reader, name=f"source-{self.source_id}", daemon=True
            )
            self._thread.start()
        while self._state is not SourceState.CLOSED:
            try:
                frame = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                # The reader puts its last frame before it sets done, so an empty
                # queue after done means nothing more will come.
                if self._reader_done.is_set() and self._queue.empty():
                    return None
                continue
            self._set_size_from(frame.image)
            return frame
        return None

    def _release(self) -> None:
        self._stop.set()
        if self._thread is None:
            self._capture.release()
            return
        self._thread.join(self.join_timeout_s)
        if self._thread.is_alive():
            # Still blocked in read(); it releases the capture itself when it returns.
            logger.warning(
                "source %r: reader thread did not stop within %.1f s",
                self.source_id,
                self.join_timeout_s,
            )

    def _run_reader(self) -> None:
        capture = self._capture
        start_s = time.monotonic()
        sequence = 0
        failures = 0
        try:
            while not self._stop.is_set():
                read_start_s = time.perf_counter()
                ok, image = capture.read()
                decode_ms = timed_ms(read_start_s)
                if ok and is_valid_image(image):
                    failures = 0
                    self._offer(
                        Frame(
                            image,
                            sequence,
                            time.monotonic() - start_s,
                            self.source_id,
                            decode_ms,
                        )
                    )
                    sequence += 1
                    continue
                if ok:
                    self._count_bad_frame(sequence, "invalid image from the capture")
                    sequence += 1
                    continue
                failures += 1
                self.read_failures += 1
                if failures < self.failures_before_reconnect:
                    continue
                capture = self._reconnect(capture)
                self._capture = capture
                if capture is None:
                    break
                failures = 0
        finally:
            if capture is not None:
                capture.release()
            self._reader_done.set()

    def _offer(self, frame: Frame) -> None:
        """Put ``frame`` in the one-slot queue, dropping the unread older frame."""
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            try:
                self._queue.get_nowait()
                self.dropped_frames += 1
            except queue.Empty:
                pass  # the consumer took it meanwhile
            # Only this thread puts, so the slot is free now.
            self._queue.put_nowait(frame)

    def _reconnect(self, capture: Capture) -> Capture | None:
        capture.release()
        for attempt in range(self.reconnect_attempts):
            delay_s = min(
                self.reconnect_backoff_s * 2**attempt, self.max_reconnect_backoff_s
            )
            logger.warning(
                "source %r: stream dropped; reconnect %d/%d in %.2f s",
                self.source_id,
                attempt + 1,
                self.reconnect_attempts,
                delay_s,
            )
            if self._stop.wait(delay_s):
                return None
            new_capture = self._opener()
            if new_capture.isOpened():
                self.reconnects += 1
                return new_capture
            new_capture.release()
        logger.error(
            "source %r: stream dropped and %d reconnect attempts failed",
            self.source_id,
            self.reconnect_attempts,
        )
        return None


class CameraSource(LiveSource):
    """A local camera by OpenCV index.

    Args:
        index: camera number (``0`` is ``/dev/video0`` on Linux).
        width: requested frame width; the camera may pick another.
        height: requested frame height.
        fps: requested frame rate.
        source_id: defaults to ``"camera<index>"``.
        capture_factory: builds the capture from the index; ``cv2.VideoCapture``
            by default (tests pass a stand-in camera).
        **live_options: `LiveSource` reconnect and join options.
    """

    def __init__(
        self,
        index: int,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        source_id: str | None = None,
        capture_factory: Callable[[int], Capture] = cv2.VideoCapture,
        **live_options: Any,
    ) -> None:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"camera index: expected an integer >= 0, got {index!r}")
        self.index = index
        requested = {
            cv2.CAP_PROP_FRAME_WIDTH: width,
            cv2.CAP_PROP_FRAME_HEIGHT: height,
            cv2.CAP_PROP_FPS: fps,
        }

        def opener() -> Capture:
            capture = capture_factory(index)
            for prop, value in requested.items():
                if value is not None and capture.isOpened():
                    capture.set(prop, float(value))
            return capture

        super().__init__(
            source_id if source_id is not None else f"camera{index}",
            opener,
            f"camera {index}",
            **live_options,
        )


class StreamSource(LiveSource):
    """A network stream: ``rtsp://``, ``rtsps://``, ``http://`` or ``https://``.

    Args:
        url: the stream address; credentials in it are masked in ids and messages.
        open_timeout_s: how long FFmpeg may take to connect.
        read_timeout_s: how long one read may block before it counts as failed.
        source_id: defaults to the URL with any password masked.
        capture_factory: builds the capture from the URL; FFmpeg by default.
        **live_options: `LiveSource` reconnect and join options.
    """

    def __init__(
        self,
        url: str,
        *,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 10.0,
        source_id: str | None = None,
        capture_factory: Callable[[str], Capture] | None = None,
        **live_options: Any,
    ) -> None:
        if not isinstance(url, str) or not is_stream_url(url):
            raise ValueError(
                f"stream url: expected one of "
                f"{', '.join(s + '://' for s in STREAM_SCHEMES)}, "
                f"got {redact_url(str(url))!r}"
            )
        _check_non_negative(
            open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s
        )
        self.url = url
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(read_timeout_s * 1000),
        ]

        def opener() -> Capture:
            if capture_factory is not None:
                return capture_factory(url)
            return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)

        shown = redact_url(url)
        super().__init__(
            source_id if source_id is not None else shown,
            opener,
            f"stream {shown!r}",
            **live_options,
        )


def is_stream_url(spec: str) -> bool:
    """Whether ``spec`` starts with a scheme a `StreamSource` reads."""
    return re.match(r"^(" + "|".join(STREAM_SCHEMES) + r")://", spec, re.I) is not None


def redact_url(url: str) -> str:
    """``rtsp://user:secret@host/x`` -> ``rtsp://user:***@host/x``."""
    return re.sub(r"^([a-zA-Z]+://[^/:@]+):[^/@]*@", r"\1:***@", url)


def _check_non_negative(**values: float) -> None:
    for name, value in values.items():
        if not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
