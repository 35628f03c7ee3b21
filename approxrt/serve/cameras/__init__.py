"""Stand-in cameras on 127.0.0.1 for the daemon's tests and soak benchmark.

``rtsp_server.py`` (GStreamer's RTSP server, run by the system Python) and
``mjpeg_server.py`` (an HTTP MJPEG camera) each serve a video file in a loop;
`rtsp_server_command` and `mjpeg_server_command` give the command lines.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SYSTEM_PYTHON = "/usr/bin/python3"


def rtsp_server_problem() -> str | None:
    """Why the RTSP server cannot run here, or None when it can."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is missing"
    probe = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); "
            "from gi.repository import GstRtspServer",
        ],
        capture_output=True,
        text=True,
    )
    if probe.returncode:
        return (
            "GStreamer's RTSP server is not installed for the system Python "
            "(apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
            "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad "
            "gstreamer1.0-plugins-ugly)"
        )
    return None


def rtsp_server_command(video: str | Path, port: int) -> list[str]:
    """Serves ``video`` looping at ``rtsp://127.0.0.1:PORT/live``; says ``ready``."""
    return [SYSTEM_PYTHON, str(HERE / "rtsp_server.py"), str(video), str(port)]


def mjpeg_server_command(video: str | Path, port: int) -> list[str]:
    """Serves ``video`` looping at ``http://127.0.0.1:PORT/video.mjpg``."""
    return [sys.executable, str(HERE / "mjpeg_server.py"), str(video), str(port)]
