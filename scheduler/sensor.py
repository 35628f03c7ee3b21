"""`ContentionSensor`: what other programs take of the device, from the OS.

Read every ``min_interval_s``: at a decision, or on a thread of its own
(``background=True``; `ContentionSensor.shared`, which the runtime uses) so that a
decision only takes the last estimate. On the H200 machine one read took 3.6 ms
(median of 30; max 7.1), NVML's per-process samples included, beside ~2.5 ms
detection frames: adaptive PETS at 5 ms, 795 frames back to back, two runs each,
had 1.9% and 1.8% of frames over with the reads on the decision's path and 0.6%
and 1.4% with them on the thread (mean frame 3.04/2.86 -> 2.57/2.71 ms). What is
read:

- **other programs' CPU**: busy cores of the whole machine (psutil) minus this
  process's own, plus CPU steal (a VM's host taking cores) — in the profile's
  unit, cores kept busy by another program;
- **cgroup quota and throttling**: a container allowed fewer cores than the
  machine has sees the missing ones as busy; throttled time is reported;
- **pressure stall** (``/proc/pressure/cpu`` and ``memory``, ``some avg10``):
  reported, and a sign of contention the core count does not show;
- **GPU utilisation and memory** through NVML when a GPU and nvidia-ml-py are
  present (`NvmlGpu`): the level is the others' utilisation, this process's own
  taken off where the driver says it; without NVML there are no GPU fields.

What the OS cannot see (memory-bandwidth contention, a program the profile
never met) shows up in latency residuals, which `LatencyFeedback` turns into
a correction; the policy logs both as the sensed contention.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic

import psutil

from approxrt.contention import ContentionLevels
from approxrt.scheduler.nvml_signals import NvmlGpu

log = logging.getLogger(__name__)
_CGROUP = Path("/sys/fs/cgroup")
_SHARED: dict[bool, ContentionSensor] = {}
_SHARED_LOCK = threading.Lock()


@dataclass
class ContentionSensor:
    """Smoothed contention levels from OS signals.

    Args:
        min_interval_s: signals are re-read at most this often; between reads
            the last estimate is returned (a decision must stay cheap).
        smoothing: weight of the newest reading in the running estimate
            (1 = no smoothing). Several readings are averaged so one busy
            instant does not swing the plan, and a step still shows within a
            second.
        gpu: read GPU 0 through NVML (when a GPU and nvidia-ml-py exist).
        background: read on a daemon thread every ``min_interval_s``; `sense`
            then only returns the latest estimate.
    """

    min_interval_s: float = 0.2
    smoothing: float = 0.5
    gpu: bool = False
    background: bool = False
    signals: dict[str, float] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._process = psutil.Process()
        self._cores = psutil.cpu_count() or 1
        self._nvml = NvmlGpu.open() if self.gpu else None
        self._last_read = 0.0
        self._previous = self._snapshot()
        self._levels: ContentionLevels | None = None  # the first reading stands alone
        self._stop = threading.Event()
        if self.background:
            # A daemon thread: it never holds a process open, and `close` ends it.
            threading.Thread(
                target=self._read_forever, name="contention-sensor", daemon=True
            ).start()

    @classmethod
    def shared(cls, gpu: bool = False) -> ContentionSensor:
        """The process's background sensor (one per ``gpu``): contention is the
        device's, so every stream and every policy of a process reads one,
        and one thread reads the OS for all of them."""
        with _SHARED_LOCK:
            if gpu not in _SHARED:
                _SHARED[gpu] = cls(gpu=gpu, background=True)
            return _SHARED[gpu]

    def sense(self) -> ContentionLevels:
        """The current estimate (re-read when ``min_interval_s`` has passed,
        unless a background thread keeps it current)."""
        if not self.background:
            now = monotonic()
            if now - self._last_read >= self.min_interval_s:
                self._last_read = now
                self._update()
        return self._levels or ContentionLevels()

    def close(self) -> None:
        """Stop the background thread (a no-op without one)."""
        self._stop.set()

    def _read_forever(self) -> None:
        while not self._stop.wait(self.min_interval_s):
            try:
                self._update()
            except Exception:  # a failed read keeps the last estimate
                log.warning("contention sensor: a read failed", exc_info=True)

    def _snapshot(self) -> dict[str, float]:
        machine = psutil.cpu_times()
        own = self._process.cpu_times()
        return {
            "t": monotonic(),
            "idle": machine.idle + getattr(machine, "iowait", 0.0),
            "total": sum(machine),
            "steal": getattr(machine, "steal", 0.0),
            "own": own.user + own.system,
            "throttled_s": _cgroup_throttled_s(),
        }

    def _update(self) -> None:
        now, before = self._snapshot(), self._previous
        self._previous = now
        wall_s = now["t"] - before["t"]
        if wall_s <= 0:
            return
        # /proc/stat counts every core: seconds of CPU per second of wall = cores.
        busy_cores = (now["total"] - now["idle"]) - (before["total"] - before["idle"])
        busy_cores /= wall_s
        own_cores = (now["own"] - before["own"]) / wall_s
        steal_cores = (now["steal"] - before["steal"]) / wall_s
        quota_missing = max(0.0, self._cores - _cgroup_quota_cores(self._cores))
        other = busy_cores - own_cores - steal_cores  # steal also counts as busy
        cpu = min(max(other, 0.0) + steal_cores + quota_missing, float(self._cores))
        self.signals = {
            "other_cpu_cores": max(other, 0.0),
            "steal_cores": steal_cores,
            "quota_missing_cores": quota_missing,
            "throttled_ms_per_s": (now["throttled_s"] - before["throttled_s"])
            / wall_s
            * 1e3,
            "psi_cpu_some_avg10": _pressure("cpu"),
            "psi_memory_some_avg10": _pressure("memory"),
        }
        gpu = 0.0
        if self._nvml is not None:
            self.signals |= self._nvml.read()
            gpu = self.signals["gpu_other_util_pct"]
        a, old = self.smoothing, self._levels
        if old is not None:
            cpu, gpu = (1 - a) * old.cpu + a * cpu, (1 - a) * old.gpu_pct + a * gpu
        self._levels = ContentionLevels(cpu=cpu, gpu_pct=min(gpu, 100.0))


def _pressure(resource: str) -> float:
    """``some avg10`` of ``/proc/pressure/<resource>`` (% of time stalled), or NaN."""
    try:
        first = Path(f"/proc/pressure/{resource}").read_text().splitlines()[0]
    except (OSError, IndexError):
        return float("nan")
    fields = dict(part.split("=") for part in first.split()[1:])
    return float(fields.get("avg10", "nan"))


def _cgroup_quota_cores(cores: int) -> float:
    """Cores this cgroup (v2) may use: ``cpu.max`` quota / period, else all."""
    try:
        quota, period = (_CGROUP / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return float(cores)
    return float(cores) if quota == "max" else min(int(quota) / int(period), cores)


def _cgroup_throttled_s() -> float:
    try:
        for line in (_CGROUP / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "throttled_usec":
                return int(value) / 1e6
    except (OSError, ValueError):
        pass
    return 0.0
