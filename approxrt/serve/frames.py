"""`FrameFeed`: a stream's decoding thread, apart from inference.

The thread opens the source, reads frames and offers each to a bounded queue
that keeps the newest ``queue_frames``: when inference is slower than the
camera, the oldest waiting frame is dropped (and counted), so a stream never
falls behind. When the source fails or ends, a live source (and a looping file)
is opened again after an exponential backoff with full jitter, forever; a file
that does not loop ends the feed, and is read whole (the reader waits for room
in the queue instead of dropping). Frames get the stream's id and one index that
keeps counting across reconnects.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from approxrt.frame import Frame
from approxrt.serve.spec import redact_url
from approxrt.sources import is_stream_url, open_source

log = logging.getLogger(__name__)


def is_live(source: str) -> bool:
    return is_stream_url(source) or source.strip().isdigit()


def backoff_s(attempt: int, initial_s: float, max_s: float) -> float:
    """Full jitter: uniform in [0, min(max, initial * 2**attempt)], so many
    cameras dropped at once do not come back in lockstep."""
    return random.uniform(0, min(max_s, initial_s * 2**attempt))


class FrameFeed:
    """Reads ``source`` on a thread into a newest-frames queue.

    Args:
        stream_id: put on every frame.
        source: anything `approxrt.sources.open_source` accepts.
        loop: start a file over when it ends.
        queue_frames: frames kept waiting for inference.
        reconnect_initial_s / reconnect_max_s: backoff before reopening.
        on_reconnect: called before every reopen (metrics).
    """

    def __init__(
        self,
        stream_id: str,
        source: str,
        loop: bool = False,
        queue_frames: int = 2,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        on_reconnect: Callable[[], None] = lambda: None,
    ) -> None:
        self.stream_id = stream_id
        self.source = source
        self.loop = loop
        self.live = is_live(source)
        # A file read once is processed whole: the reader waits for room.
        self.lossless = not self.live and not loop
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.on_reconnect = on_reconnect
        self._dropped_here = 0
        self._earlier_sessions_dropped = 0
        self._source = None
        self.decoded = 0
        self.reconnects = 0
        self.connected = False
        self.ended = False  # a file that does not loop was read to its end
        self.last_error: str | None = None
        self._queue: deque[Frame] = deque(maxlen=queue_frames)
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._next_index = 0
        self._thread = threading.Thread(
            target=self._read_forever, name=f"decode {stream_id}", daemon=True
        )

    @property
    def dropped(self) -> int:
        """Frames never handed to inference: queue overflow plus the source's."""
        return (
            self._dropped_here + self._earlier_sessions_dropped + self._source_dropped()
        )

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop reading; frames already queued stay for `frames` to hand out."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        self._thread.join(timeout=5.0)

    def frames(self, paused: threading.Event | None = None) -> Iterator[Frame]:
        """Queued frames, newest kept, until stopped (or a file ended) and drained.

        While ``paused`` is set nothing is handed out (frames keep arriving and
        the oldest are dropped).
        """
        while True:
            with self._ready:
                while not self._queue or (paused is not None and paused.is_set()):
                    if self._stop.is_set() or self.ended:
                        if not self._queue:
                            return
                        break
                    self._ready.wait(0.2)
                frame = self._queue.popleft()
                self._ready.notify_all()  # room for a reader that waits for it
            yield frame

    def _offer(self, frame: Frame) -> None:
        frame = dataclasses.replace(
            frame, index=self._next_index, source_id=self.stream_id
        )
        self._next_index += 1
        with self._ready:
            while self.lossless and len(self._queue) == self._queue.maxlen:
                if self._stop.is_set():
                    return  # stopping: a frame nobody will process is not counted
                self._ready.wait(0.2)
            self.decoded += 1
            if len(self._queue) == self._queue.maxlen:
                self._dropped_here += 1  # the deque drops the oldest on append
            self._queue.append(frame)
            self._ready.notify()

    def _read_forever(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            got = self._read_once()
            if self._stop.is_set():
                break
            if not self.live:
                if not self.loop or not got:
                    break  # read to its end, or unreadable: reopening won't help
                continue  # a looping file starts over at once
            attempt = 0 if got else attempt + 1
            self.reconnects += 1
            self.on_reconnect()
            self._stop.wait(
                backoff_s(attempt, self.reconnect_initial_s, self.reconnect_max_s)
            )
        with self._ready:
            self.ended = True
            self._ready.notify_all()

    def _read_once(self) -> bool:
        """One open-read-close of the source; True when it gave any frame."""
        got = False
        self.last_error = None
        try:
            with open_source(self.source, **self._options()) as source:
                self._source = source
                self.connected = True
                pace = _Pacer(None if self.live else source.fps)
                for frame in source:
                    got = True
                    self._offer(frame)
                    if self._stop.is_set():
                        break
                    pace.wait(self._stop)
        except Exception as error:  # any failure of a source means: reopen it
            self.last_error = redact_url(f"{type(error).__name__}: {error}")
            log.warning("stream %s: %s", self.stream_id, self.last_error)
        finally:
            self.connected = False
            self._earlier_sessions_dropped += self._source_dropped()
            self._source = None
        if self.live and self.last_error is None and not self._stop.is_set():
            self.last_error = "the stream ended"
        return got

    def _source_dropped(self) -> int:
        """Frames a live source's own reader dropped (it keeps only the newest)."""
        return int(getattr(self._source, "dropped_frames", 0) or 0)

    def _options(self) -> dict:
        # The feed reconnects (with jitter, forever): the source must not.
        return {"reconnect_attempts": 0} if self.live else {}


class _Pacer:
    """Plays a file at its own frame rate, like the camera it stands in for."""

    def __init__(self, fps: float | None) -> None:
        self.period_s = 1.0 / fps if fps and fps > 0 else 0.0
        self.next_s = time.monotonic()

    def wait(self, stop: threading.Event) -> None:
        if not self.period_s:
            return
        self.next_s = max(self.next_s + self.period_s, time.monotonic() - 1.0)
        stop.wait(max(0.0, self.next_s - time.monotonic()))
