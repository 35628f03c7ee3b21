"""Realtime replay of a file source, and the stream clock every run carries.

Synthetic scenes at a high frame rate keep these tests short; a consumer that
sleeps stands in for a busy runtime.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from approxrt.frame import Frame
from approxrt.sources import (
    ClockedSource,
    RealtimeSource,
    Source,
    SourceState,
    StreamStateError,
    open_source,
)

SPEC = "synthetic:objects=2,size=20-30,width=96,height=64,seed=1"


def scene(frames: int, fps: float) -> str:
    return f"{SPEC},frames={frames},fps={fps:g}"


def test_a_busy_reader_gets_the_newest_frame_and_the_rest_are_counted_as_dropped():
    fps, frames = 50.0, 30
    received: list[Frame] = []
    with open_source(scene(frames, fps), realtime=True) as source:
        for frame in source:
            received.append(frame)
            time.sleep(2.5 / fps)  # busy for 2.5 frame periods
        dropped = source.dropped_frames
    # The stream starts at frame 0, even when a loaded machine drops it.
    assert source.first_index == 0
    indices = [f.index for f in received]
    assert indices == sorted(set(indices))
    assert indices[-1] == frames - 1  # the last frame is never superseded
    assert len(received) + dropped == frames
    assert dropped >= frames // 3
    arrivals = [f.arrival_s for f in received]
    assert arrivals == sorted(arrivals)
    # No frame arrives before its time on the stream clock.
    assert all(f.arrival_s >= f.index / fps - 1e-6 for f in received)


def test_a_reader_that_keeps_up_gets_every_frame_at_its_time():
    fps, frames = 10.0, 6  # a 100 ms period: room for a loaded machine
    start_s = time.perf_counter()
    with open_source(scene(frames, fps), realtime=True) as source:
        received = list(source)
        assert source.dropped_frames == 0
    assert [f.index for f in received] == list(range(frames))
    assert time.perf_counter() - start_s >= (frames - 1) / fps
    assert all(f.arrival_s >= f.index / fps - 1e-6 for f in received)


def test_the_stream_clock_starts_at_the_first_read_not_at_peek():
    with open_source(scene(4, 10.0), realtime=True) as source:
        first = source.peek()
        time.sleep(0.5)  # e.g. warming models up on the first frame
        frames = list(source)
    assert first.index == 0 and first.arrival_s is None
    # Had the clock started at peek, frame 0 would have arrived 0.5 s late and
    # frames 1-3 (due at 0.1-0.3 s) released at once and dropped.
    assert frames[0].index == 0 and frames[0].arrival_s < 0.1
    assert len(frames) == 4 and source.dropped_frames == 0


def test_closing_mid_stream_stops_the_replay_thread():
    source = open_source(scene(200, 50.0), realtime=True)
    next(source)
    source.close()
    assert source.state is SourceState.CLOSED
    assert source.inner.state is SourceState.CLOSED
    assert not any(t.name.startswith("realtime-") for t in threading.enumerate())
    with pytest.raises(StreamStateError):
        source.read()


def test_a_clocked_source_waits_for_every_frame_and_stamps_it_when_read():
    with ClockedSource(open_source(scene(6, 1000.0))) as source:
        assert source.peek().index == 0 and not source.clock.started
        frames = []
        for frame in source:
            frames.append(frame)
            time.sleep(0.01)  # far slower than 1000 fps: still nothing dropped
        with pytest.raises(StreamStateError, match="peek"):
            source.peek()
    assert [f.index for f in frames] == list(range(6))
    assert frames[0].arrival_s < 0.05
    gaps = [b.arrival_s - a.arrival_s for a, b in itertools.pairwise(frames)]
    assert min(gaps) >= 0.01 and source.dropped_frames == 0


class StandInCamera(Source):
    """A live source that never delivers (only its kind matters here)."""

    def __init__(self, fps: float | None) -> None:
        super().__init__("camera")
        self.fps = fps

    @property
    def is_live(self) -> bool:
        return True

    def _read_next(self):
        return None

    def _release(self) -> None:
        pass


def test_live_sources_and_sources_without_a_frame_rate_are_refused():
    with pytest.raises(ValueError, match="is live and already arrives in real time"):
        RealtimeSource(StandInCamera(fps=30.0))
    # Refused by name, before a camera or a stream is opened.
    for spec in ("0", "rtsp://127.0.0.1:9/none"):
        with pytest.raises(ValueError, match="is a camera or stream"):
            open_source(spec, realtime=True)
    folder = open_source(scene(3, 10.0))
    folder.fps = None
    with pytest.raises(ValueError, match="has no frame rate"):
        RealtimeSource(folder)
