"""Accuracy profiling through a real local Ray cluster equals the local run.

Starts a one-node cluster on 127.0.0.1 (``ray start --head``), profiles a tiny
space through it, and stops exactly the processes that cluster started.
"""

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from approxrt.branches.space import BranchSpace
from approxrt.config import load_config
from approxrt.profiler.accuracy import profile_accuracy
from approxrt.profiler.videos import VideoSpec

pytest.importorskip("ray", reason="ray is not installed (pip install approxrt[ray])")

SCENE = "synthetic:objects=4,size=100-160,speed=1-3,frames=30,seed=5"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_cluster(temp_dir: str) -> None:
    """Kill the cluster's processes (those naming its temp dir, and their children).

    As ``ray stop --force`` does (SIGKILL), but only this cluster's processes:
    ``ray stop`` would end every Ray process of this user on the machine.
    """
    started = [
        p
        for p in psutil.process_iter(["cmdline"])
        if temp_dir in " ".join(p.info["cmdline"] or [])
    ]
    family = {p.pid: p for p in started}
    for process in started:
        try:
            family |= {c.pid: c for c in process.children(recursive=True)}
        except psutil.NoSuchProcess:
            continue
    for process in family.values():
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(map(ended, family.values())):
        time.sleep(0.1)


def ended(process: psutil.Process) -> bool:
    """Gone, or a zombie (its parent, not us, has to reap it)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(scope="module")
def ray_address():
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip(f"no ray command beside {sys.executable}")
    # Short: Ray puts unix sockets under it, and their paths have a length limit.
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    port = free_port()
    command = [
        str(ray_cli),
        "start",
        "--head",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--num-cpus",
        "2",
        "--include-dashboard",
        "false",
        "--disable-usage-stats",
        "--temp-dir",
        temp_dir,
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}"
    finally:
        stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def config(models_dir):
    settings = load_config(
        models_dir=str(models_dir),
        classes=["person"],
        download=False,
        detectors=["yolox_nano"],
        input_sizes={"yolox_nano": [224]},
        sampling_intervals=[1, 4],
        trackers=["medianflow"],
        downsamples=[2],
    )
    profile = settings.profile.model_copy(update={"segment_frames": 20})
    return settings.replace(profile=profile.model_dump())


def test_profiling_through_ray_gives_the_local_runs_tables(
    config, ray_address, pets_video, pets_gt, tmp_path
):
    space = BranchSpace.from_config(config)
    videos = [
        VideoSpec("pets", str(pets_video), str(pets_gt), max_frames=40),
        VideoSpec("scene", SCENE),
    ]
    local = profile_accuracy(
        config, space, videos, tmp_path / "local", workers=2, progress=False
    )
    on_ray = profile_accuracy(
        config,
        space,
        videos,
        tmp_path / "ray",
        ray_address=ray_address,
        progress=False,
    )
    segments = local["accuracy/segments"]
    assert len(segments) == (2 + 2) * len(space)
    assert segments.ap50.between(0.1, 1).all()
    pd.testing.assert_frame_equal(on_ray["accuracy/segments"], segments)
    pd.testing.assert_frame_equal(
        on_ray["accuracy/features"], local["accuracy/features"]
    )
    # Costs are timings: the same features at the same frame sizes, other ms.
    columns = ["feature", "frame_w", "frame_h"]
    pd.testing.assert_frame_equal(
        on_ray["accuracy/feature_cost"][columns],
        local["accuracy/feature_cost"][columns],
    )
    assert sorted(p.name for p in (tmp_path / "ray" / "pets").iterdir()) == [
        "yolox_nano_s224.json",
        "yolox_nano_s224.parquet",
    ]
