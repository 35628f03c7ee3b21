"""A run's stream clock, and file sources replayed on it as a camera would deliver.

The *stream clock* counts seconds from the first frame's arrival. Each frame that
reaches the runtime carries its arrival time on it (`Frame.arrival_s`) and each
result the time its detections were ready (`FrameResult.finish_s`, stamped by
`stamp_finish_times`), so streaming accuracy (`approxrt.evaluation.streaming`)
can tell which output was the newest at any moment of the stream.

- `ClockedSource` (as fast as possible): a frame arrives when the runtime reads
  it, and every frame is waited for.
- `RealtimeSource` (``approxrt run --realtime``): a thread releases each frame at
  its timestamp on the wall clock into a one-frame slot. A frame still in the
  slot when the next one is released is dropped (counted in ``dropped_frames``),
  so a busy runtime gets the newest frame, as from a camera, and never falls
  behind the stream.

Neither starts its clock before the first `read`; `peek` gives the first frame
before that, to warm models up on without the stream running::

    with open_source("clip.mp4", realtime=True) as frames:    # a RealtimeSource
        kernel = prepare_kernel(config, branches, frames.peek().image)
        results = run_loop(frames, kernel, policy)
        for result in stamp_finish_times(results, frames.clock):
            print(result.frame.arrival_s, result.finish_s)
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterable, Iterator
from time import perf_counter

from approxrt.frame import Frame
from approxrt.result import FrameResult
from approxrt.sources.base import Source, SourceState, StreamStateError

logger = logging.getLogger(__name__)


class StreamClock:
    """Seconds since `start` (the first frame's arrival), on `time.perf_counter`."""

    def __init__(self) -> None:
        self._origin_s: float | None = None

    @property
    def started(self) -> bool:
        return self._origin_s is not None

    def start(self) -> None:
        """Start counting from now; a clock already started keeps its origin."""
        if self._origin_s is None:
            self._origin_s = perf_counter()

    def now_s(self) -> float:
        """Seconds since `start`.

        Raises:
            StreamStateError: the clock has not started (no frame read yet).
        """
        if self._origin_s is None:
            raise StreamStateError("stream clock: not started; read a frame first")
        return perf_counter() - self._origin_s


def stamp_finish_times(
    results: Iterable[FrameResult], clock: StreamClock
) -> Iterator[FrameResult]:
    """``results``, each with ``finish_s`` = the clock's reading when it came out.

    Wrap the frame loop directly, before anything slow (sinks, progress bars),
    so the time stamped is when the loop produced the result.
    """
    for result in results:
        yield dataclasses.replace(result, finish_s=clock.now_s())


class ClockedSource(Source):
    """Frames of ``inner``, each stamped with its arrival on the stream clock.

    Frames arrive when they are read (the clock starts at the first read), so a
    run over a file goes as fast as the runtime does and waits for every frame.

    Args:
        inner: the source to read; closing this one closes it.
        clock: the stream clock to stamp with; a new one by default.

    Attributes:
        first_index: index of the frame that arrived at 0 on the stream clock
            (None before it), which a realtime replay may drop before the
            runtime takes it; streaming evaluation times frames from it.
    """

    def __init__(self, inner: Source, clock: StreamClock | None = None) -> None:
        super().__init__(inner.source_id)
        self.inner = inner
        self.clock = clock if clock is not None else StreamClock()
        self.fps = inner.fps
        self.frame_count = inner.frame_count
        self.width, self.height = inner.width, inner.height
        self._peeked: Frame | None = None
        self._drops = 0  # frames this wrapper dropped (only a replay does)
        self.first_index: int | None = None

    @property
    def is_live(self) -> bool:
        return self.inner.is_live

    def peek(self) -> Frame | None:
        """The first frame (None for an empty source), without starting the clock.

        Raises:
            StreamStateError: a frame was already read.
        """
        if self._state is not SourceState.NEW:
            raise StreamStateError(
                f"source {self.source_id!r}: peek is only possible before the "
                f"first read (state: {self._state.value})"
            )
        if self._peeked is None:
            self._peeked = self.inner.read()
        return self._peeked

    def _read_next(self) -> Frame | None:
        self.clock.start()
        frame = self._take()
        return None if frame is None else self._arrived(frame)

    def _take(self) -> Frame | None:
        """The next frame of ``inner`` (the peeked one first), without a stamp."""
        if self._peeked is not None:
            frame, self._peeked = self._peeked, None
        else:
            frame = self.inner.read()
        self.bad_frames = self.inner.bad_frames
        self.dropped_frames = self.inner.dropped_frames + self._drops
        return frame

    def _arrived(self, frame: Frame) -> Frame:
        self._set_size_from(frame.image)
        if self.first_index is None:
            self.first_index = frame.index
        return dataclasses.replace(frame, arrival_s=self.clock.now_s())

    def _release(self) -> None:
        self.inner.close()


class RealtimeSource(ClockedSource):
    """A file source replayed at its own frame rate, keeping only the newest frame.

    A thread reads (decodes) each frame of ``inner`` ahead of time and releases
    it when the stream clock reaches its timestamp (relative to the first
    frame's). Released frames wait in a one-frame slot; one that a newer frame
    replaces before the runtime took it is dropped and counted in
    ``dropped_frames``. The replay starts, with the clock, at the first `read`.

    Args:
        inner: a file, folder or synthetic source with a frame rate; live
            sources already arrive in real time and are refused.
        clock: the stream clock; a new one by default.
        join_timeout_s: how long `close` waits for the replay thread.

    Raises:
        ValueError: ``inner`` is live or has no frame rate.
    """

    def __init__(
        self,
        inner: Source,
        clock: StreamClock | None = None,
        join_timeout_s: float = 2.0,
    ) -> None:
        if inner.is_live:
            raise ValueError(
                f"realtime: source {inner.source_id!r} is live and already "
                "arrives in real time; realtime replay is for files, image "
                "folders and synthetic scenes"
            )
        if not inner.fps or inner.fps <= 0:
            raise ValueError(
                f"realtime: source {inner.source_id!r} has no frame rate "
                f"(fps={inner.fps!r}) to replay it at"
            )
        super().__init__(inner, clock)
        self.join_timeout_s = float(join_timeout_s)
        self._slot: Frame | None = None
        self._replay_done = False
        self._replay_error: Exception | None = None
        self._slot_changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_live(self) -> bool:
        return True

    def _read_next(self) -> Frame | None:
        if self._thread is None:
            self._start_replay()
        with self._slot_changed:
            self._slot_changed.wait_for(
                lambda: self._slot is not None or self._replay_done
            )
            frame, self._slot = self._slot, None
        if frame is None and self._replay_error is not None:
            raise RuntimeError(
                f"source {self.source_id!r}: realtime replay failed: "
                f"{self._replay_error}"
            ) from self._replay_error
        return frame

    def _start_replay(self) -> None:
        self.clock.start()
        self._thread = threading.Thread(
            target=self._replay, name=f"realtime-{self.source_id}", daemon=True
        )
        self._thread.start()

    def _replay(self) -> None:
        first_timestamp_s = None
        try:
            while not self._stop.is_set():
                frame = self._take()
                if frame is None:
                    break
                if first_timestamp_s is None:
                    first_timestamp_s = frame.timestamp_s
                due_s = frame.timestamp_s - first_timestamp_s
                if self._stop.wait(max(0.0, due_s - self.clock.now_s())):
                    break
                self._offer(self._arrived(frame))
        except Exception as error:  # handed to the reader, which raises it
            self._replay_error = error
        finally:
            with self._slot_changed:
                self._replay_done = True
                self._slot_changed.notify_all()

    def _offer(self, frame: Frame) -> None:
        with self._slot_changed:
            if self._slot is not None:
                self._drops += 1
                self.dropped_frames = self.inner.dropped_frames + self._drops
            self._slot = frame
            self._slot_changed.notify_all()

    def _release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.join_timeout_s)
            if self._thread.is_alive():
                # Still decoding; closing the capture under it could crash.
                logger.warning(
                    "source %r: replay thread did not stop within %.1f s",
                    self.source_id,
                    self.join_timeout_s,
                )
                return
        self.inner.close()


def clocked(source: Source) -> ClockedSource:
    """``source`` with a stream clock: itself when it has one, else wrapped."""
    return source if isinstance(source, ClockedSource) else ClockedSource(source)
