"""Real parts for the daemon's tests, all on 127.0.0.1, started and stopped by them:
the daemon itself (a subprocess), a GStreamer RTSP server, an HTTP MJPEG camera
and a mosquitto broker. A part whose program is missing skips its tests with the
reason (`.ci/run` installs them)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from approxrt.serve.cameras import rtsp_server_command, rtsp_server_problem

BRANCH = "yolox_nano/s320/si4/medianflow/ds2"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, timeout_s: float, what: str, interval_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def _wait_for_line(process: subprocess.Popen, word: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if word in line:
            return
        if process.poll() is not None:
            pytest.fail(f"helper ended: {process.communicate()}")
    pytest.fail(f"helper never said {word!r}")


class Helper:
    """A helper program started by a test; `stop` ends it (and waits)."""

    def __init__(self, args: list[str], ready_word: str | None = "ready") -> None:
        self.args = args
        self.ready_word = ready_word
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 20.0) -> Helper:
        self.process = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if self.ready_word:
            _wait_for_line(self.process, self.ready_word, timeout_s)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def rtsp_server_args(video: Path, port: int) -> list[str]:
    problem = rtsp_server_problem()
    if problem:
        pytest.skip(problem)
    return rtsp_server_command(video, port)


def mosquitto_args(port: int, config_dir: Path) -> list[str]:
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if binary is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    config = config_dir / f"mosquitto-{port}.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    return [binary, "-c", str(config)]


class Daemon:
    """`approxrt serve` as a subprocess, with an HTTP client to its API."""

    def __init__(self, settings: dict, workdir: Path, env: dict | None = None):
        self.port = free_port()
        settings = {"listen": f"127.0.0.1:{self.port}", **settings}
        self.config_path = workdir / "streams.yaml"
        self.config_path.write_text(yaml.safe_dump(settings))
        self.log_path = workdir / "daemon.log"
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def start(self, timeout_s: float = 60.0) -> Daemon:
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "approxrt.cli",
                "serve",
                "--config",
                str(self.config_path),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        wait_until(self._ready, timeout_s, "the daemon to be ready")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"daemon exited {self.process.returncode}: {self.log()}")
        try:
            return self.client.get("/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text()

    def stream(self, stream_id: str) -> dict:
        return self.client.get(f"/streams/{stream_id}").json()

    def terminate(self, timeout_s: float = 60.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout_s)
        self._log.close()
        return code

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.client.close()
