"""A stream's decoding thread keeps only the newest frames and counts the rest."""

import time

from approxrt.serve.frames import FrameFeed, backoff_s


def test_a_slow_consumer_gets_the_newest_frames_and_drops_are_counted(pets_video):
    feed = FrameFeed("cam", str(pets_video), loop=True, queue_frames=2)
    feed.start()
    handed = []
    try:
        for frame in feed.frames():
            handed.append(frame)
            if len(handed) == 4:
                break
            time.sleep(0.5)  # five frames arrive (10 fps) while we are busy
    finally:
        feed.stop()
    indices = [f.index for f in handed]
    assert all(f.source_id == "cam" for f in handed)
    assert indices == sorted(indices) and indices[-1] - indices[0] > 3 * 2
    assert feed.dropped >= 6
    assert feed.decoded == len(handed) + feed.dropped + feed.depth


def test_a_file_that_cannot_be_read_ends_the_feed_with_the_reason(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    feed = FrameFeed("cam", str(broken))
    feed.start()
    assert list(feed.frames()) == []
    assert feed.ended and feed.last_error
    assert feed.reconnects == 0


def test_backoff_grows_exponentially_with_full_jitter():
    waits = [backoff_s(attempt, 0.5, 8.0) for attempt in range(8) for _ in range(50)]
    assert all(0 <= w <= 8.0 for w in waits)
    late = [backoff_s(6, 0.5, 8.0) for _ in range(200)]
    assert max(late) > 4.0 and min(late) < 4.0  # spread over [0, 8], not lockstep


def test_a_file_read_once_is_handed_out_whole_to_a_slow_consumer(pets_video):
    feed = FrameFeed("cam", str(pets_video), queue_frames=2)
    feed.start()
    handed = []
    try:
        for frame in feed.frames():
            handed.append(frame.index)
            if len(handed) == 6:
                break
            time.sleep(0.3)
    finally:
        feed.stop()
    assert handed == list(range(6)) and feed.dropped == 0
