"""VideoFileSource on the real PETS video and on damaged copies of it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from approxrt.sources import SourceState, StreamStateError, VideoFileSource


def pets_frames(pets_video, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(pets_video))
    frames = [capture.read()[1] for _ in range(count)]
    capture.release()
    return frames


def write_mjpg(path, frames) -> bytes:
    writer = cv2.VideoWriter(
        str(path),
        cv2.VideoWriter_fourcc(*"MJPG"),
        10.0,
        (frames[0].shape[1], frames[0].shape[0]),
    )
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path.read_bytes()


def jpeg_payloads(data: bytes) -> list[tuple[int, int]]:
    """(start, size) of each frame's JPEG inside an MJPG AVI, from its chunk header."""
    spans, start = [], data.find(b"\xff\xd8\xff")
    while start != -1:
        size = int.from_bytes(data[start - 4 : start], "little")
        spans.append((start, size))
        start = data.find(b"\xff\xd8\xff", start + size)
    return spans


def test_reads_every_pets_frame_with_indices_timestamps_and_decode_time(pets_video):
    with VideoFileSource(pets_video) as source:
        assert source.state is SourceState.NEW
        assert (source.fps, source.frame_count) == (10.0, 795)
        assert (source.width, source.height) == (480, 360)
        frames = list(source)
        assert source.state is SourceState.ENDED
    assert [f.index for f in frames] == list(range(795))
    assert all(
        f.image.shape == (360, 480, 3) and f.image.dtype == np.uint8 for f in frames
    )
    assert np.allclose([f.timestamp_s for f in frames], np.arange(795) / 10.0)
    assert all(f.decode_ms > 0 for f in frames)
    assert {f.source_id for f in frames} == {"video.avi"}
    assert source.bad_frames == 0


def test_frames_are_the_decoded_video_frames_in_order(pets_video):
    expected = pets_frames(pets_video, 5)
    with VideoFileSource(pets_video, source_id="cam-a") as source:
        got = [next(source) for _ in range(5)]
    assert all(np.array_equal(f.image, e) for f, e in zip(got, expected, strict=True))
    assert got[0].source_id == "cam-a"


def test_a_missing_file_is_a_value_error_naming_the_path(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(ValueError, match=r"nope\.mp4.*no such file"):
        VideoFileSource(missing)


def test_a_garbage_file_is_a_value_error_naming_the_path(tmp_path):
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(np.random.default_rng(0).bytes(20_000))
    with pytest.raises(ValueError, match=r"garbage\.avi.*cannot"):
        VideoFileSource(garbage)


def test_a_directory_is_not_a_video_file(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        VideoFileSource(tmp_path)


def test_an_undecodable_frame_mid_stream_is_counted_and_skipped(pets_video, tmp_path):
    path = tmp_path / "damaged.avi"
    data = bytearray(write_mjpg(path, pets_frames(pets_video, 20)))
    start, size = jpeg_payloads(bytes(data))[10]
    data[start : start + size] = bytes(size)  # frame 10's JPEG becomes zeros
    path.write_bytes(bytes(data))
    with VideoFileSource(path) as source:
        indices = [f.index for f in source]
    assert indices == [*range(10), *range(11, 20)]
    assert source.bad_frames == 1


def test_a_truncated_file_ends_after_its_last_readable_frame(pets_video, tmp_path):
    path = tmp_path / "truncated.avi"
    data = write_mjpg(path, pets_frames(pets_video, 20))
    start, size = jpeg_payloads(data)[15]
    path.write_bytes(data[: start + size // 2])
    with VideoFileSource(path, max_consecutive_failures=3) as source:
        claimed = source.frame_count
        indices = [f.index for f in source]
    assert indices == list(range(len(indices)))
    assert 10 <= len(indices) < 20
    assert source.bad_frames == min(3, claimed - len(indices))


def test_reading_a_closed_source_raises_the_state_error(pets_video):
    source = VideoFileSource(pets_video)
    next(source)
    source.close()
    assert source.state is SourceState.CLOSED
    with pytest.raises(StreamStateError, match="closed"):
        source.read()
    with pytest.raises(StreamStateError):
        next(source)
    source.close()  # closing twice is harmless


def test_an_ended_source_keeps_returning_none(pets_video, tmp_path):
    path = tmp_path / "short.avi"
    write_mjpg(path, pets_frames(pets_video, 3))
    with VideoFileSource(path) as source:
        assert len(list(source)) == 3
        assert source.read() is None
        assert list(source) == []
