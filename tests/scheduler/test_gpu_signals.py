"""The contention sensor's GPU readings through NVML: none without NVML (here,
on CPU machines) and, on a GPU, another program's load and the memory in use."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from approxrt.contention import ContentionLevels
from approxrt.scheduler.nvml_signals import NvmlGpu
from approxrt.scheduler.sensor import ContentionSensor

HAS_NVIDIA_DRIVER = Path("/proc/driver/nvidia").exists()


def _gpu_fields(sensor: ContentionSensor) -> set[str]:
    return {key for key in sensor.signals if key.startswith("gpu")}


def test_without_nvidia_ml_py_the_sensor_has_no_gpu_fields(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # importing it now fails
    assert NvmlGpu.open() is None
    sensor = ContentionSensor(min_interval_s=0.0, gpu=True)
    time.sleep(0.05)
    assert sensor.sense().gpu_pct == 0.0
    assert "other_cpu_cores" in sensor.signals
    assert _gpu_fields(sensor) == set()


@pytest.mark.skipif(HAS_NVIDIA_DRIVER, reason="an NVIDIA driver is present")
def test_without_a_driver_nvml_opens_nothing():
    pytest.importorskip("pynvml", reason="nvidia-ml-py not installed")
    assert NvmlGpu.open() is None


def _settle(sensor: ContentionSensor, seconds: float) -> ContentionLevels:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sensor.sense()
        time.sleep(0.05)
    return sensor.sense()


def _needs_gpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available() or NvmlGpu.open() is None:
        pytest.skip("no CUDA device readable through NVML")
    return torch


def test_another_programs_gpu_load_shows_with_the_memory_in_use():
    _needs_gpu()
    from approxrt.profiler.contention import ContentionGenerator

    sensor = ContentionSensor(min_interval_s=0.1, smoothing=0.5, gpu=True)
    quiet = _settle(sensor, 1.0).gpu_pct
    with ContentionGenerator(settle_s=2.0, backend="builtin") as generator:
        generator.set(ContentionLevels(gpu_pct=50))
        loaded = _settle(sensor, 3.0).gpu_pct
    assert quiet < 15, quiet
    assert abs(loaded - 50) <= 15, loaded
    signals = sensor.signals
    assert 0 < signals["gpu_memory_used_mb"] < signals["gpu_memory_total_mb"]


def test_this_process_own_gpu_work_is_not_counted_as_contention():
    torch = _needs_gpu()
    sensor = ContentionSensor(min_interval_s=0.1, smoothing=0.5, gpu=True)
    stop = threading.Event()
    matrix = torch.randn(4096, 4096, device="cuda")

    def busy() -> None:
        while not stop.is_set():
            matrix @ matrix
            torch.cuda.synchronize()

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        levels = _settle(sensor, 3.0)
    finally:
        stop.set()
        worker.join()
    signals = sensor.signals
    if signals["gpu_own_util_pct"] != signals["gpu_own_util_pct"]:  # NaN
        pytest.skip("the driver keeps no per-process utilisation samples here")
    assert signals["gpu_util_pct"] > 50, str(signals)
    assert levels.gpu_pct < 20, str(signals)
