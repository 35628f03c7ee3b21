"""A real RTSP server for the tests: GStreamer's, serving a video file in a loop.

Run with the system Python (it needs python3-gi and gir1.2-gst-rtsp-server-1.0):
``/usr/bin/python3 rtsp_server.py VIDEO PORT``; the stream is
``rtsp://127.0.0.1:PORT/live``. It prints ``ready`` once it listens.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    video, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( multifilesrc location="{video}" loop=true ! decodebin ! videoconvert ! '
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! "
        "rtph264pay name=pay0 pt=96 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/live", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
