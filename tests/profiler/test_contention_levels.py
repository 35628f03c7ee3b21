"""The contention generator reaches the levels asked, measured from real processes."""

import math
import time

import psutil
import pytest

from approxrt.contention import ContentionLevels
from approxrt.profiler.contention import (
    ContentionError,
    ContentionGenerator,
    ContentionReading,
)
from approxrt.profiler.contention.processes import cores_from_last
from approxrt.profiler.contention.stressng import find_stress_ng

MEASURE_S = 1.5
FULL_PCT = 95
BACKENDS = [
    "builtin",
    pytest.param(
        "stress-ng",
        marks=pytest.mark.skipif(
            find_stress_ng() is None,
            reason="stress-ng is not on PATH (apt-get install stress-ng)",
        ),
    ),
]


def cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def assert_cores(reading: ContentionReading, low: float, high: float) -> None:
    """Within [low, high] cores, or below only because other programs filled
    every core (this machine is shared: the generator gets what is left)."""
    assert reading.cpu <= high, reading
    assert reading.cpu >= low or reading.cpu_busy_pct >= FULL_PCT, reading


def reach(generator: ContentionGenerator, **levels) -> ContentionReading:
    generator.set(ContentionLevels(**levels))
    time.sleep(MEASURE_S)
    return generator.measured()


@pytest.mark.parametrize("backend", BACKENDS)
def test_cpu_levels_are_reached_by_the_workers_cpu_time(backend):
    with ContentionGenerator(settle_s=0.3, backend=backend) as generator:
        assert generator.backend == backend
        one = reach(generator, cpu=1)
        half = reach(generator, cpu=0.5)
    assert_cores(one, 0.8, 1.2)
    assert_cores(half, 0.35, 0.65)
    assert half.cpu < one.cpu
    assert one.asked == ContentionLevels(cpu=1)
    assert one.membw_mbps == 0 and one.gpu_pct == 0
    assert abs(one.window_s - MEASURE_S) < 0.5
    # The whole machine is at least as busy as the generator keeps it.
    assert one.cpu_busy_pct >= 100 * 0.8 / len(cores_from_last())


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_busy_core_gets_a_worker_pinned_to_it(backend):
    """Whole cores are one worker per core: workers free to float may share a
    core and leave another idle for the program under test (profiler.md, stop 20)."""
    cores = cores_from_last()
    with ContentionGenerator(settle_s=0, backend=backend) as generator:
        generator.set(ContentionLevels(cpu=len(cores)))
        workers = [
            psutil.Process(pid)
            for pid in generator.pids()
            if not psutil.Process(pid).children()  # stress-ng's own parents
        ]
        affinities = [worker.cpu_affinity() for worker in workers]
    assert len(workers) == len(cores), affinities
    assert sorted(core for affinity in affinities for core in affinity) == sorted(cores)


def test_memory_bandwidth_is_measured_within_a_quarter_of_the_target():
    with ContentionGenerator(settle_s=0.3, backend="builtin") as generator:
        reading = reach(generator, membw_mbps=500)
    assert 375 <= reading.membw_mbps <= 625, reading
    # The copies cost CPU time, reported apart from the CPU load.
    assert reading.membw_cpu > 0 and reading.cpu == 0


def test_set_changes_the_level_while_running_without_restarting_workers():
    with ContentionGenerator(settle_s=0.3, backend="builtin") as generator:
        low = reach(generator, cpu=0.5, membw_mbps=300)
        pids = generator.pids()
        high = reach(generator, cpu=1.5, membw_mbps=900)
        assert set(pids) <= set(generator.pids())
        idle = reach(generator)
    assert_cores(low, 0.35, 0.65)
    assert_cores(high, 1.2, 1.7)
    assert high.cpu > low.cpu, (low, high)
    assert 225 <= low.membw_mbps <= 375 and 675 <= high.membw_mbps <= 1125
    assert idle.cpu < 0.05 and idle.membw_mbps == 0
    assert idle.levels == ContentionLevels(cpu=idle.cpu)


def test_measured_with_restart_opens_a_new_window():
    with ContentionGenerator(settle_s=0, backend="builtin") as generator:
        generator.set(ContentionLevels(cpu=1))
        time.sleep(0.6)
        first = generator.measured(restart=True)
        time.sleep(0.3)
        second = generator.measured()
    assert first.window_s > 0.5 and second.window_s < 0.5


def test_leaving_the_block_ends_every_load_process():
    with ContentionGenerator(settle_s=0, backend="builtin") as generator:
        generator.set(ContentionLevels(cpu=0.5, membw_mbps=200))
        processes = generator._cpu._workers + generator._membw._workers
        assert len(processes) == 2 and all(p.is_alive() for p in processes)
    assert not any(p.is_alive() for p in processes)
    assert generator.pids() == []


@pytest.mark.parametrize(
    ("levels", "error", "match"),
    [
        ({"cpu": 1}, TypeError, "ContentionLevels"),
        (ContentionLevels(cpu=len(cores_from_last()) + 1), ValueError, "cores asked"),
    ],
)
def test_bad_levels_are_rejected_naming_them(levels, error, match):
    with ContentionGenerator(settle_s=0, backend="builtin") as generator:
        with pytest.raises(error, match=match):
            generator.set(levels)
        assert generator.pids() == []


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"settle_s": -1}, "settle_s"),
        ({"settle_s": math.inf}, "settle_s"),
        ({"backend": "stressng"}, "backend"),
        ({"period_s": 0}, "period_s"),
        ({"membw_buffer_mb": 0.5}, "membw_buffer_mb"),
    ],
)
def test_bad_settings_are_rejected_naming_them(settings, match):
    with pytest.raises(ValueError, match=match):
        ContentionGenerator(**settings)


@pytest.mark.skipif(cuda_devices() > 0, reason="a CUDA device is present")
def test_gpu_load_without_cuda_is_a_clear_error():
    with ContentionGenerator(settle_s=0, backend="builtin") as generator:
        with pytest.raises(ContentionError, match=r"cuda:0.*0 CUDA device"):
            generator.set(ContentionLevels(gpu_pct=30))
        assert generator.pids() == []


@pytest.mark.skipif(cuda_devices() == 0, reason="no CUDA device: GPU load untested")
def test_gpu_load_reaches_about_the_asked_utilisation():
    with ContentionGenerator(settle_s=1.0, backend="builtin") as generator:
        busy = reach(generator, gpu_pct=50)
        (worker,) = (psutil.Process(pid) for pid in generator.pids())
        cpu_before_s = sum(worker.cpu_times()[:2])
        high = reach(generator, gpu_pct=90)
        cpu_s = sum(worker.cpu_times()[:2]) - cpu_before_s
        idle = reach(generator, gpu_pct=0)
    assert 35 <= busy.gpu_pct <= 65, busy
    assert 75 <= high.gpu_pct <= 100, high
    assert idle.gpu_pct < 10, idle
    # It waits for its kernels on a blocking event: a GPU load is no CPU load.
    assert cpu_s < 0.25 * high.window_s


class FakeGpuLoad:
    """Stands in for the CUDA worker: counts starts, keeps the last level."""

    started = 0

    def __init__(self, device_index: int = 0, period_s: float = 0.1) -> None:
        FakeGpuLoad.started += 1
        self.pct = 0.0

    def set(self, pct: float) -> None:
        self.pct = pct

    def counters(self) -> dict[str, float]:
        return {}

    def pids(self) -> list[int]:
        return []

    def close(self) -> None:
        pass


def test_start_loads_starts_the_gpu_load_idle_once_before_any_level(monkeypatch):
    from approxrt.profiler.contention import generator as module

    monkeypatch.setattr(module, "GpuLoad", FakeGpuLoad)
    monkeypatch.setattr(module, "check_cuda", lambda index: "fake GPU")
    FakeGpuLoad.started = 0
    with ContentionGenerator(settle_s=0, backend="builtin") as generator:
        generator.start_loads([ContentionLevels(), ContentionLevels(gpu_pct=25)])
        assert FakeGpuLoad.started == 1 and generator._gpu.pct == 0.0
        generator.set(ContentionLevels(gpu_pct=50))
        generator.start_loads([ContentionLevels(gpu_pct=75)])
        assert FakeGpuLoad.started == 1 and generator._gpu.pct == 50.0


def test_start_loads_without_a_level_that_needs_them_starts_nothing():
    with ContentionGenerator(settle_s=0, backend="builtin") as generator:
        generator.start_loads([ContentionLevels(), ContentionLevels(cpu=1)])
        assert generator.pids() == []
