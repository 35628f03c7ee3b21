"""Built-in CPU contention: worker processes that spin for a duty cycle.

A level of N.x cores runs N workers busy all the time and one more busy a share x
of each period (spin for ``x * period_s``, sleep the rest). Each worker reads its
duty from shared memory every period, so a new level takes effect within one
period without restarting anything; workers beyond the level sleep at duty 0.
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing.process
import time

from approxrt.profiler.contention.processes import (
    SPAWN,
    check_alive,
    die_with_parent,
    pin,
    start_child,
    stop_children,
)


def split_cores(cores: float) -> list[float]:
    """Duty of each worker for `cores` busy cores: 1.5 -> [1.0, 0.5]."""
    full = math.floor(cores)
    fraction = cores - full
    return [1.0] * full + ([fraction] if fraction > 1e-9 else [])


def cpu_worker(parent_pid: int, duty: ctypes.c_double, period_s: float) -> None:
    """Spin a share `duty.value` of every `period_s`, sleep the rest, forever."""
    die_with_parent(parent_pid)
    while True:
        start = time.perf_counter()
        busy_until = start + min(max(duty.value, 0.0), 1.0) * period_s
        while time.perf_counter() < busy_until:
            pass
        idle_s = start + period_s - time.perf_counter()
        if idle_s > 0:
            time.sleep(idle_s)


class CpuLoad:
    """Keeps `cores` CPU cores busy with duty-cycled worker processes.

    Args:
        period_s: duty-cycle period; shorter follows a fractional level more
            smoothly, longer costs fewer wake-ups.
    """

    def __init__(self, period_s: float = 0.1) -> None:
        self.period_s = period_s
        self._workers: list[multiprocessing.process.BaseProcess] = []
        self._duties: list[ctypes.c_double] = []

    def set(self, cores: float, pin_cores: list[int]) -> None:
        """Keep `cores` cores busy; worker i is pinned to ``pin_cores[i]`` if given."""
        duties = split_cores(cores)
        while len(self._workers) < len(duties):
            duty = SPAWN.RawValue("d", 0.0)
            name = f"approxrt-contend-cpu{len(self._workers)}"
            self._workers.append(
                start_child(cpu_worker, (duty, self.period_s), name=name)
            )
            self._duties.append(duty)
        check_alive(self._workers, "CPU load")
        for index, (worker, duty) in enumerate(
            zip(self._workers, self._duties, strict=True)
        ):
            if pin_cores:
                pin(worker.pid, pin_cores[index % len(pin_cores)])
            duty.value = duties[index] if index < len(duties) else 0.0

    def pids(self) -> list[int]:
        return [worker.pid for worker in self._workers]

    def close(self) -> None:
        stop_children(self._workers)
        self._workers, self._duties = [], []
