"""Live cameras in the daemon: a real GStreamer RTSP server killed and restarted
mid-stream, and a real HTTP MJPEG camera, beside a file stream that never stops."""

import json
import re
import subprocess
import sys
import time

from serve_parts import BRANCH, free_port, rtsp_server_args, wait_until

from approxrt.serve.cameras import mjpeg_server_command


def _processed(daemon, stream_id):
    return daemon.stream(stream_id)["frames_processed"]


def _reconnects_metric(daemon, stream_id):
    text = daemon.client.get("/metrics").text
    match = re.search(rf'approxrt_reconnects_total{{stream="{stream_id}"}} (\S+)', text)
    return float(match.group(1)) if match else 0.0


def test_an_rtsp_camera_comes_back_by_itself_after_its_server_restarts(
    daemons, helpers, pets_video, models_dir, tmp_path
):
    port = free_port()
    server_args = rtsp_server_args(pets_video, port)
    server = helpers(server_args)
    daemon = daemons(
        {
            "models": str(models_dir),
            "reconnect_initial_s": 0.2,
            "reconnect_max_s": 1.0,
            "streams": [
                {
                    "id": "cam",
                    "source": f"rtsp://127.0.0.1:{port}/live",
                    "branch": BRANCH,
                },
                {
                    "id": "file",
                    "source": str(pets_video),
                    "branch": BRANCH,
                    "loop": True,
                },
            ],
        }
    )
    wait_until(lambda: _processed(daemon, "cam") > 10, 30, "RTSP frames")
    for _ in range(2):
        server.stop()
        during = _processed(daemon, "file")
        wait_until(
            lambda: daemon.stream("cam")["state"] == "connecting",
            30,
            "the camera to be seen gone",
        )
        assert _processed(daemon, "file") > during  # the other stream never stops
        server = helpers(server_args)
        before = _processed(daemon, "cam")
        wait_until(
            lambda before=before: _processed(daemon, "cam") > before + 10,
            40,
            "the camera to resume",
        )
    assert _reconnects_metric(daemon, "cam") >= 2


def test_an_http_mjpeg_camera_is_read(daemons, helpers, pets_video, models_dir):
    port = free_port()
    helpers(mjpeg_server_command(pets_video, port))
    daemon = daemons(
        {
            "models": str(models_dir),
            "streams": [
                {
                    "id": "mjpeg",
                    "source": f"http://127.0.0.1:{port}/video.mjpg",
                    "branch": BRANCH,
                },
            ],
        }
    )
    wait_until(lambda: _processed(daemon, "mjpeg") > 15, 30, "MJPEG frames")
    assert daemon.stream("mjpeg")["state"] == "running"


def test_approxrt_run_rides_out_an_rtsp_server_restart(
    helpers, pets_video, models_dir, tmp_path
):
    port = free_port()
    server_args = rtsp_server_args(pets_video, port)
    server = helpers(server_args)
    out = tmp_path / "run"
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "approxrt.cli",
            "run",
            f"rtsp://127.0.0.1:{port}/live",
            "--branch",
            BRANCH,
            "--out",
            str(out),
            "--models",
            str(models_dir),
            "--max-frames",
            "60",
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: list(tmp_path.glob(".run.partial-*")), 60, "the run")
        time.sleep(1.5)
        server.stop()
        helpers(server_args)
        _, stderr = run.communicate(timeout=90)
    finally:
        run.kill()
    assert run.returncode == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 60
