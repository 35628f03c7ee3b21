"""A real HTTP MJPEG camera for the tests: a video's frames as
``multipart/x-mixed-replace`` JPEG parts, at the video's frame rate, looping.

``python mjpeg_server.py VIDEO PORT`` serves ``http://127.0.0.1:PORT/video.mjpg``
and prints ``ready`` once it listens.
"""

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

BOUNDARY = "frame"


def load_jpegs(video: str, limit: int = 200) -> tuple[list[bytes], float]:
    capture = cv2.VideoCapture(video)
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    jpegs = []
    while len(jpegs) < limit:
        ok, image = capture.read()
        if not ok:
            break
        jpegs.append(cv2.imencode(".jpg", image)[1].tobytes())
    capture.release()
    return jpegs, fps


def handler_for(jpegs: list[bytes], fps: float):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header(
                "Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}"
            )
            self.end_headers()
            index = 0
            try:
                while True:
                    jpeg = jpegs[index % len(jpegs)]
                    self.wfile.write(
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                        + jpeg
                        + b"\r\n"
                    )
                    index += 1
                    time.sleep(1 / fps)
            except (BrokenPipeError, ConnectionResetError):
                return

        def log_message(self, *args):
            pass

    return Handler


def main() -> None:
    jpegs, fps = load_jpegs(sys.argv[1])
    server = ThreadingHTTPServer(
        ("127.0.0.1", int(sys.argv[2])), handler_for(jpegs, fps)
    )
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
