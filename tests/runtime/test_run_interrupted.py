"""`approxrt run` stopped by Ctrl-C (SIGINT) or SIGTERM keeps what it processed.

The real command runs as a subprocess over the real PETS video and gets a real
signal mid-run, as a user at a terminal or a service manager would send it.
"""

import json
import signal
import subprocess
import sys
import time

import pytest

# Every frame detected at 640: the run lasts seconds, long enough to stop it.
BRANCH = "yolox_nano/s640/si1"
PETS_FRAMES = 795


def _start(pets_video, models_dir, out):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "approxrt.cli",
            "run",
            str(pets_video),
            "--branch",
            BRANCH,
            "--out",
            str(out),
            "--models",
            str(models_dir),
            "--classes",
            "person",
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_staging(out, process, timeout_s=90.0):
    """Until the run's hidden staging folder exists (detectors loaded, warm)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if list(out.parent.glob(f".{out.name}.partial-*")):
            return
        if process.poll() is not None:
            pytest.fail(f"run ended before the signal: {process.communicate()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail("the run never started writing")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_run_keeps_every_processed_frame(
    sig, pets_video, models_dir, tmp_path
):
    out = tmp_path / "run"
    process = _start(pets_video, models_dir, out)
    _wait_for_staging(out, process)
    time.sleep(1.5)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "INTERRUPTED" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert 0 < summary["frames"] < PETS_FRAMES
    events = (out / "events.jsonl").read_text().splitlines()
    assert len(events) == summary["frames"]
    indices = [json.loads(line)["frame_index"] for line in events]
    assert indices == list(range(summary["frames"]))
    mot_frames = {int(line.split(",")[0]) for line in (out / "results.txt").open()}
    assert max(mot_frames) <= summary["frames"] and len(mot_frames) > 0
    assert not list(tmp_path.glob(".*partial*"))
