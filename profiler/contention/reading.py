"""What the generator really reached: counters read before and after a window."""

from __future__ import annotations

from dataclasses import dataclass, field

import psutil

from approxrt.contention import ContentionLevels


@dataclass(frozen=True)
class ContentionReading:
    """Contention the generator really produced over a window of `window_s` seconds.

    Attributes:
        asked: the levels asked for during the window.
        cpu: cores kept busy by the CPU-load workers, from their CPU times.
        cpu_busy_pct: whole-machine CPU busy %, 100 = every core busy (psutil);
            includes every program, the one being profiled too.
        membw_mbps: MB/s the memory workers moved (bytes read + written, 10^6 B).
        membw_cpu: cores the memory workers burnt moving it (on top of `cpu`).
        gpu_pct: GPU utilisation % from NVML (whole GPU) when a GPU load runs; the
            share of time its own kernels ran when NVML is absent; else 0.
        window_s: length of the window.
    """

    asked: ContentionLevels
    cpu: float
    cpu_busy_pct: float
    membw_mbps: float
    membw_cpu: float
    gpu_pct: float
    window_s: float

    @property
    def levels(self) -> ContentionLevels:
        """The reached levels in the units they are asked in."""
        return ContentionLevels(
            cpu=self.cpu, membw_mbps=self.membw_mbps, gpu_pct=min(self.gpu_pct, 100.0)
        )

    def __str__(self) -> str:
        return (
            f"cpu={self.cpu:.2f} cores (machine {self.cpu_busy_pct:.0f}% busy), "
            f"membw={self.membw_mbps:.0f} MB/s (+{self.membw_cpu:.2f} cores), "
            f"gpu={self.gpu_pct:.0f}%"
        )


@dataclass(frozen=True)
class Counters:
    """Running totals at one instant; two of them make a reading."""

    time_s: float
    cpu_s: dict[int, float]
    membw_cpu_s: dict[int, float]
    moved_bytes: float
    machine_busy_s: float
    machine_total_s: float
    gpu: dict[str, float] = field(default_factory=dict)


def process_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds used by each live process, with its reaped children's."""
    seconds = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[pid] = (
            times.user + times.system + times.children_user + times.children_system
        )
    return seconds


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores together, as psutil counts them."""
    times = psutil.cpu_times()
    # guest time is already inside user time on Linux.
    total = (
        sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    )
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _cores(before: dict[int, float], after: dict[int, float], seconds: float) -> float:
    # A process that started inside the window counts from zero.
    return sum(used - before.get(pid, 0.0) for pid, used in after.items()) / seconds


def _gpu_pct(
    before: dict[str, float], after: dict[str, float], seconds: float
) -> float:
    if not after:
        return 0.0
    samples = after["nvml_samples"] - before.get("nvml_samples", 0.0)
    if samples > 0:
        return (after["nvml_pct_sum"] - before.get("nvml_pct_sum", 0.0)) / samples
    return 100 * (after["busy_s"] - before.get("busy_s", 0.0)) / seconds


def reading_between(
    before: Counters, after: Counters, asked: ContentionLevels
) -> ContentionReading:
    """The reading of the window from `before` to `after`."""
    seconds = max(after.time_s - before.time_s, 1e-9)
    total_s = after.machine_total_s - before.machine_total_s
    busy_s = after.machine_busy_s - before.machine_busy_s
    return ContentionReading(
        asked=asked,
        cpu=_cores(before.cpu_s, after.cpu_s, seconds),
        cpu_busy_pct=100 * busy_s / total_s if total_s > 0 else 0.0,
        membw_mbps=(after.moved_bytes - before.moved_bytes) / seconds / 1e6,
        membw_cpu=_cores(before.membw_cpu_s, after.membw_cpu_s, seconds),
        gpu_pct=_gpu_pct(before.gpu, after.gpu, seconds),
        window_s=seconds,
    )
