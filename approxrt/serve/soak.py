"""The daemon's soak benchmark: ``python -m approxrt.serve.soak --models M --video V``.

Four streams on one daemon (two RTSP cameras, one HTTP MJPEG camera, one looping
file; all stand-ins on 127.0.0.1 serving ``--video``) run until ``--frames``
results in total. Meanwhile the first RTSP server is killed and restarted
``--restarts`` times (each time the stream must resume by itself while the others
go on), and the MQTT broker is stopped for ``--broker-down-s`` and restarted.
At the end the daemon gets SIGTERM. Reported: RSS growth after warm-up, per-stream
fps, latency and drops, reconnects from ``/metrics``, whether every result in the
JSONL events reached MQTT in order and once, and the exit code. Writes a
Markdown report with a PNG plot.
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import httpx
import paho.mqtt.client as mqtt
import psutil
import yaml
from tqdm import tqdm

from approxrt.serve.cameras import (
    mjpeg_server_command,
    rtsp_server_command,
    rtsp_server_problem,
)
from approxrt.serve.soak_report import write_report

BRANCH = "yolox_nano/s320/si4/medianflow/ds2"
STREAMS = ("rtsp1", "rtsp2", "mjpeg", "file")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Soak:
    """What the run saw; `write_report` turns it into the Markdown page."""

    command: str
    samples: list[dict] = field(default_factory=list)  # t_s, rss, processed
    warmup_end_s: float = 0.0
    restarts: list[dict] = field(default_factory=list)
    broker_down_s: tuple[float, float] | None = None
    final_status: list[dict] = field(default_factory=list)
    metrics_text: str = ""
    exit_code: int | None = None
    events: dict[str, list[dict]] = field(default_factory=dict)
    mqtt: dict[str, list[int]] = field(default_factory=dict)
    duration_s: float = 0.0


class Process:
    """A helper program; `stop` kills it, `terminate` stops it cleanly."""

    def __init__(self, args: list[str], ready: str | None = "ready") -> None:
        self.args = args
        self.ready = ready
        self.popen: subprocess.Popen | None = None

    def start(self) -> Process:
        self.popen = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        while self.ready and self.ready not in (self.popen.stdout.readline() or "!"):
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.args[:2]} ended: {self.popen.stdout.read()}")
        return self

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def terminate(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(10)


class Subscriber:
    """A durable MQTT subscriber: the broker keeps its messages across a restart."""

    def __init__(self, port: int) -> None:
        self.received: dict[str, list[int]] = {s: [] for s in STREAMS}
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="soak-sub", clean_session=False
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = lambda c, *_: c.subscribe("approxrt/#", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _client, _userdata, message) -> None:
        event = json.loads(message.payload)
        self.received[event["stream"]].append(event["frame_index"])

    def total(self) -> int:
        return sum(len(v) for v in self.received.values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Daemon:
    """``approxrt serve`` as a subprocess and a client to its API."""

    def __init__(self, settings: dict, workdir: Path) -> None:
        self.port = free_port()
        path = workdir / "streams.yaml"
        path.write_text(
            yaml.safe_dump({"listen": f"127.0.0.1:{self.port}", **settings})
        )
        self.log = (workdir / "daemon.log").open("w")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "approxrt.cli", "serve", "--config", str(path)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"the daemon exited {self.popen.returncode}")
            try:
                if self.api.get("/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the daemon never became ready")

    def processed(self) -> dict[str, int]:
        return {s["id"]: s["frames_processed"] for s in self.api.get("/streams").json()}

    def state(self, stream: str) -> str:
        return self.api.get(f"/streams/{stream}").json()["state"]

    def terminate(self) -> int:
        self.popen.send_signal(signal.SIGTERM)
        code = self.popen.wait(120)
        self.log.close()
        return code


def wait_for(check, timeout_s: float) -> float | None:
    """Seconds until ``check()`` held, or None when it never did."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(0.2)
    return None


def sample_forever(daemon: Daemon, soak: Soak, start: float, stop: threading.Event):
    process = psutil.Process(daemon.popen.pid)
    while not stop.wait(2.0):
        try:
            processed = daemon.processed()
        except httpx.HTTPError:
            continue
        soak.samples.append(
            {
                "t_s": time.monotonic() - start,
                "rss": process.memory_info().rss,
                "processed": processed,
            }
        )


def restart_camera(daemon, server: Process, soak: Soak, start: float) -> Process:
    """Kill the first RTSP server, start it again, time the stream's return."""
    before = daemon.processed()
    server.stop()
    gone_s = wait_for(lambda: daemon.state("rtsp1") != "running", 60)
    server = Process(server.args).start()
    resumed_at = daemon.processed()["rtsp1"]
    resume_s = wait_for(lambda: daemon.processed()["rtsp1"] >= resumed_at + 5, 90)
    # The others' progress from the kill until the camera was back.
    others = {s: daemon.processed()[s] - before[s] for s in STREAMS[1:]}
    soak.restarts.append(
        {
            "t_s": time.monotonic() - start,
            "seen_gone_s": gone_s,
            "resumed_s": resume_s,
            "others_progress": others,
        }
    )
    return server


def broker_outage(broker: Process, down_s: float, soak: Soak, start: float) -> None:
    began = time.monotonic() - start
    broker.terminate()  # a clean stop: the broker keeps the subscriber's session
    time.sleep(down_s)
    broker.start()
    soak.broker_down_s = (began, time.monotonic() - start)


def read_events(out: Path) -> dict[str, list[dict]]:
    events = {}
    for stream in STREAMS:
        files = sorted((out / stream).glob("events.jsonl*"), reverse=True)
        events[stream] = [
            json.loads(line) for path in files for line in path.read_text().splitlines()
        ]
    return events


@click.command()
@click.option("--models", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--video", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--frames", default=10_000, show_default=True, help="Results in total.")
@click.option("--restarts", default=20, show_default=True)
@click.option("--warmup-s", default=60.0, show_default=True)
@click.option("--broker-down-s", default=60.0, show_default=True)
@click.option("--report", default="docs/benchmarks/daemon.md", show_default=True)
def main(models, video, frames, restarts, warmup_s, broker_down_s, report):
    """Run the soak and write its report (see the module docstring)."""
    problem = rtsp_server_problem()
    if problem:
        raise click.ClickException(problem)
    command = "python -m approxrt.serve.soak " + shlex.join(sys.argv[1:])
    soak = Soak(command)
    # SIGTERM unwinds like Ctrl-C, so the cameras, broker and daemon are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("soak: stopped by SIGTERM"))
    with tempfile.TemporaryDirectory(prefix="approxrt-soak-") as workdir:
        run_soak(
            Path(workdir),
            soak,
            models,
            video,
            frames,
            restarts,
            warmup_s,
            broker_down_s,
        )
    write_report(soak, Path(report), frames)
    click.echo(f"report: {report}")


def run_soak(workdir, soak, models, video, frames, restarts, warmup_s, down_s):
    ports = {name: free_port() for name in ("rtsp1", "rtsp2", "mjpeg", "mqtt")}
    cameras = [
        Process(rtsp_server_command(video, ports[n])).start()
        for n in ("rtsp1", "rtsp2")
    ]
    cameras.append(Process(mjpeg_server_command(video, ports["mjpeg"])).start())
    broker = Process(broker_command(workdir, ports["mqtt"]), ready=None).start()
    time.sleep(0.5)
    subscriber = Subscriber(ports["mqtt"])
    subscriber.subscribed.wait(10)
    daemon = Daemon(daemon_settings(workdir, models, video, ports), workdir)
    try:
        drive(daemon, cameras, broker, soak, frames, restarts, warmup_s, down_s)
        soak.events = read_events(workdir / "out")
        wait_for(lambda: subscriber.total() >= sum(map(len, soak.events.values())), 60)
        soak.mqtt = subscriber.received
    finally:
        subscriber.close()
        for helper in (*cameras, broker):
            helper.stop()
        if daemon.popen.poll() is None:
            daemon.popen.kill()


def drive(daemon, cameras, broker, soak, frames, restarts, warmup_s, down_s):
    daemon.wait_ready()
    start = time.monotonic()
    stop = threading.Event()
    sampler = threading.Thread(
        target=sample_forever, args=(daemon, soak, start, stop), daemon=True
    )
    sampler.start()
    wait_for(lambda: min(daemon.processed().values()) > 0, 120)
    time.sleep(max(0.0, warmup_s - (time.monotonic() - start)))
    soak.warmup_end_s = time.monotonic() - start
    outage = threading.Thread(
        target=broker_outage, args=(broker, down_s, soak, start), daemon=True
    )
    outage.start()
    with tqdm(total=restarts, desc="RTSP restarts", unit="restart") as bar:
        for _ in range(restarts):
            time.sleep(3.0)
            cameras[0] = restart_camera(daemon, cameras[0], soak, start)
            bar.update()
    outage.join()
    with tqdm(total=frames, desc="results", unit="frame") as bar:
        while (done := sum(daemon.processed().values())) < frames:
            bar.n = done
            bar.refresh()
            time.sleep(2.0)
    soak.final_status = daemon.api.get("/streams").json()
    soak.metrics_text = daemon.api.get("/metrics").text
    stop.set()
    sampler.join()
    soak.duration_s = time.monotonic() - start
    soak.exit_code = daemon.terminate()


def broker_command(workdir: Path, port: int) -> list[str]:
    (workdir / "mqtt-db").mkdir()
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        f"persistence true\npersistence_location {workdir / 'mqtt-db'}/\n"
    )
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return [binary, "-c", str(config)]


def daemon_settings(workdir: Path, models, video, ports: dict) -> dict:
    sources = {
        "rtsp1": f"rtsp://127.0.0.1:{ports['rtsp1']}/live",
        "rtsp2": f"rtsp://127.0.0.1:{ports['rtsp2']}/live",
        "mjpeg": f"http://127.0.0.1:{ports['mjpeg']}/video.mjpg",
        "file": str(video),
    }
    return {
        "models": str(models),
        "reconnect_initial_s": 0.5,
        "reconnect_max_s": 4.0,
        "mqtt": {"port": ports["mqtt"], "spool_dir": str(workdir / "spool")},
        "streams": [
            {
                "id": name,
                "source": source,
                "branch": BRANCH,
                "classes": ["person"],
                "out": str(workdir / "out" / name),
                "loop": name == "file",
            }
            for name, source in sources.items()
        ],
    }


if __name__ == "__main__":
    main()
