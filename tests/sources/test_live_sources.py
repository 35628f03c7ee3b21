"""Live sources: a real local HTTP MJPEG stream, and a stand-in camera."""

from __future__ import annotations

import itertools
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from approxrt.sources import CameraSource, SourceState, StreamSource, StreamStateError
from approxrt.sources.live import redact_url


@pytest.fixture(scope="module")
def pets_jpegs(pets_video) -> list[bytes]:
    capture = cv2.VideoCapture(str(pets_video))
    jpegs = [cv2.imencode(".jpg", capture.read()[1])[1].tobytes() for _ in range(40)]
    capture.release()
    return jpegs


class MjpegServer:
    """multipart/x-mixed-replace JPEG stream on 127.0.0.1; one clip per connection.

    The first ``connections`` requests each get every frame of ``jpegs``, paced
    ``interval_s`` apart, then the connection closes; later requests get a 404.
    """

    def __init__(self, jpegs: list[bytes], interval_s: float, connections: int):
        self.served = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.served += 1
                if server.served > connections:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header(
                    "Content-Type", "multipart/x-mixed-replace; boundary=frame"
                )
                self.end_headers()
                for jpeg in jpegs:
                    self.wfile.write(
                        b"--frame\r\nContent-Type: image/jpeg\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n"
                    )
                    time.sleep(interval_s)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class StandInCamera:
    """A camera for tests: numbered frames, one per ``read``, a little apart."""

    def __init__(self, index: int, opened: bool = True, frames: int = 10_000):
        self.opened, self.left, self.count = opened, frames, 0

    def isOpened(self) -> bool:
        return self.opened

    def read(self):
        time.sleep(0.002)
        if self.left <= 0:
            return False, None
        self.left -= 1
        self.count += 1
        return True, np.full((48, 64, 3), self.count % 256, np.uint8)

    def get(self, prop) -> float:
        return {
            cv2.CAP_PROP_FPS: 30.0,
            cv2.CAP_PROP_FRAME_WIDTH: 64.0,
            cv2.CAP_PROP_FRAME_HEIGHT: 48.0,
        }.get(prop, 0.0)

    def set(self, prop, value) -> bool:
        return True

    def release(self) -> None:
        self.opened = False


def test_a_slow_consumer_gets_the_newest_frames_and_the_rest_are_counted_as_dropped(
    pets_jpegs,
):
    server = MjpegServer(pets_jpegs, interval_s=0.005, connections=1)
    try:
        with StreamSource(server.url, reconnect_attempts=0) as source:
            received = []
            for frame in source:
                received.append(frame)
                time.sleep(0.03)  # a consumer slower than the stream
            assert source.state is SourceState.ENDED
    finally:
        server.stop()
    indices = [f.index for f in received]
    assert indices == sorted(set(indices))
    assert source.dropped_frames > 0
    # Every captured frame was either delivered or dropped, and the newest (the
    # stream's last) was delivered.
    assert len(received) + source.dropped_frames == len(pets_jpegs)
    assert indices[-1] == len(pets_jpegs) - 1
    assert sum(b - a - 1 for a, b in itertools.pairwise(indices)) + indices[0] == (
        source.dropped_frames
    )
    assert received[0].image.shape == (360, 480, 3)
    assert source.reconnects == 0


def test_a_dropped_stream_is_reopened_until_the_attempts_run_out(pets_jpegs):
    server = MjpegServer(pets_jpegs[:10], interval_s=0.002, connections=2)
    try:
        with StreamSource(
            server.url,
            reconnect_attempts=2,
            reconnect_backoff_s=0.01,
            failures_before_reconnect=1,
        ) as source:
            received = list(source)
    finally:
        server.stop()
    # First connection, one successful reconnect, then both attempts of the
    # second drop got a 404.
    assert source.reconnects == 1
    assert server.served == 4
    assert len(received) + source.dropped_frames == 20
    assert [f.index for f in received][-1] == 19


def test_a_stream_that_cannot_be_opened_is_a_value_error():
    with pytest.raises(ValueError, match=r"stream 'http://127\.0\.0\.1:1/x'"):
        StreamSource("http://127.0.0.1:1/x", open_timeout_s=1)


@pytest.mark.parametrize("url", ["ftp://host/x", "/dev/video0", "rtsp:/missing-slash"])
def test_a_stream_url_must_have_a_stream_scheme(url):
    with pytest.raises(ValueError, match="rtsp://"):
        StreamSource(url)


def test_stream_credentials_are_masked_in_ids_and_messages():
    assert (
        redact_url("rtsp://admin:s3cret@10.0.0.5/live")
        == "rtsp://admin:***@10.0.0.5/live"
    )
    with pytest.raises(ValueError) as error:
        StreamSource("rtsp://admin:s3cret@127.0.0.1:1/live", open_timeout_s=1)
    assert "s3cret" not in str(error.value)


def test_a_camera_source_delivers_frames_and_close_stops_its_reader():
    source = CameraSource(3, capture_factory=StandInCamera)
    assert source.state is SourceState.NEW and not source.reader_running
    assert (source.fps, source.frame_count, source.width) == (30.0, None, 64)
    frames = [next(source) for _ in range(5)]
    assert source.reader_running and source.is_live
    assert [f.index for f in frames] == sorted(f.index for f in frames)
    assert all(f.source_id == "camera3" for f in frames)
    assert np.all(np.diff([f.timestamp_s for f in frames]) > 0)
    source.close()
    assert not source.reader_running
    with pytest.raises(StreamStateError):
        source.read()


def test_a_camera_that_gives_up_ends_the_source_after_its_last_frame():
    source = CameraSource(
        0, capture_factory=lambda i: StandInCamera(i, frames=3), reconnect_attempts=0
    )
    with source:
        assert len(list(source)) + source.dropped_frames == 3
    assert source.state is SourceState.CLOSED


@pytest.mark.parametrize("index", [-1, 1.5, "0", True])
def test_a_camera_index_must_be_a_non_negative_integer(index):
    with pytest.raises(ValueError, match="camera index"):
        CameraSource(index, capture_factory=StandInCamera)


def test_a_camera_that_cannot_be_opened_is_a_value_error():
    with pytest.raises(ValueError, match="camera 7: cannot be opened"):
        CameraSource(7, capture_factory=lambda i: StandInCamera(i, opened=False))
