"""The OS contention sensor against a real busy program."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psutil
import pytest

from approxrt.scheduler.sensor import ContentionSensor

SPIN = "import time\nend = time.time() + 20\nwhile time.time() < end: pass\n"


def settle(sensor, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sensor.sense()
        time.sleep(0.05)
    return sensor.sense().cpu


@pytest.mark.skipif((psutil.cpu_count() or 1) < 2, reason="needs 2 cores")
@pytest.mark.parametrize("background", [False, True], ids=["at_decision", "thread"])
def test_a_busy_program_shows_as_about_one_busy_core_and_goes_away(background):
    sensor = ContentionSensor(min_interval_s=0.1, smoothing=0.5, background=background)
    quiet = settle(sensor, 1.0)
    if quiet > (psutil.cpu_count() or 1) - 1.2:
        pytest.skip(f"other programs already keep {quiet:.1f} cores busy")
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        busy = settle(sensor, 1.5)
    finally:
        spinner.kill()
        spinner.wait()
    after = settle(sensor, 1.5)
    sensor.close()
    # One spinning process keeps one core busy; this test's own process is not
    # counted, whatever else the machine runs stays about the same.
    assert busy - quiet > 0.6, (quiet, busy)
    assert busy - after > 0.6, (busy, after)
    assert {"other_cpu_cores", "steal_cores", "psi_cpu_some_avg10"} <= set(
        sensor.signals
    )


def test_one_background_sensor_serves_the_whole_process():
    first = ContentionSensor.shared(gpu=False)
    assert ContentionSensor.shared(gpu=False) is first and first.background
    reader = [t for t in threading.enumerate() if t.name == "contention-sensor"]
    assert reader and all(t.daemon for t in reader)
