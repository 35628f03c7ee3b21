"""`ContentionGenerator`: CPU, memory-bandwidth and GPU load at asked levels.

    with ContentionGenerator(settle_s=2.0, backend="builtin") as generator:
        generator.set(ContentionLevels(cpu=1.5, membw_mbps=2000))  # waits settle_s
        ...  # measure something under this contention
        reading = generator.measured()  # what was really reached since set()
    # leaving the block ends every load process

CPU load fills cores from the last one (the profiled program tends to start on
core 0), memory load takes the cores after the CPU load's, the GPU load runs on
one CUDA device. Loads start on first use and stay, sleeping at level 0, so
changing levels costs no process start-up after the first time.

Load processes are started with ``spawn``, so a script that makes a generator
needs the usual ``if __name__ == "__main__":`` guard around its top-level code
(Python's multiprocessing rule: the children import the main module).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence

from tqdm import tqdm

from approxrt.contention import ContentionLevels
from approxrt.profiler.contention.cpu import CpuLoad
from approxrt.profiler.contention.gpu import GpuLoad, check_cuda
from approxrt.profiler.contention.membw import MembwLoad
from approxrt.profiler.contention.processes import cores_from_last
from approxrt.profiler.contention.reading import (
    ContentionReading,
    Counters,
    machine_cpu_seconds,
    process_cpu_seconds,
    reading_between,
)
from approxrt.profiler.contention.stressng import StressNgCpuLoad, find_stress_ng
from approxrt.profiler.contention.trace import ContentionTrace

BACKENDS = ("auto", "builtin", "stress-ng")
_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s"


def _check_settings(settle_s, backend, period_s, membw_buffer_mb) -> None:
    if not isinstance(settle_s, int | float) or not 0 <= settle_s < math.inf:
        raise ValueError(f"settle_s: expected a finite number >= 0, got {settle_s!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if not isinstance(period_s, int | float) or not 0.001 <= period_s <= 10:
        raise ValueError(f"period_s: expected 0.001..10 seconds, got {period_s!r}")
    if not isinstance(membw_buffer_mb, int) or membw_buffer_mb < 1:
        raise ValueError(
            f"membw_buffer_mb: expected a whole number >= 1, got {membw_buffer_mb!r}"
        )


def _sleep_until(deadline: float) -> None:
    remaining_s = deadline - time.monotonic()
    if remaining_s > 0:
        time.sleep(remaining_s)


class ContentionGenerator:
    """Generates contention on this machine at levels that can change while running.

    Starts no load until the first `set`. Use it as a context manager (or call
    `close`) so every load process ends; they also end if this process dies.

    Args:
        settle_s: wait after each `set` before its measuring window opens; raise it
            when loads take long to reach a steady state (caches, clocks, fans).
        backend: CPU load from ``"builtin"`` worker processes, ``"stress-ng"``
            (must be on PATH), or ``"auto"`` (stress-ng when on PATH). Memory and
            GPU load are always built in.
        period_s: duty-cycle period of the CPU and GPU loads; shorter follows a
            fractional level more smoothly, longer costs fewer wake-ups.
        membw_buffer_mb: each memory worker copies between two buffers this large;
            keep it well above the last-level cache.
        pin: pin load processes to single cores (where the OS allows).
        gpu_index: CUDA device of the GPU load.
    """

    def __init__(
        self,
        settle_s: float = 2.0,
        backend: str = "auto",
        *,
        period_s: float = 0.1,
        membw_buffer_mb: int = 64,
        pin: bool = True,
        gpu_index: int = 0,
    ) -> None:
        _check_settings(settle_s, backend, period_s, membw_buffer_mb)
        self.settle_s = settle_s
        use_stress_ng = backend == "stress-ng" or (
            backend == "auto" and find_stress_ng() is not None
        )
        self.backend = "stress-ng" if use_stress_ng else "builtin"
        self._cpu = StressNgCpuLoad() if use_stress_ng else CpuLoad(period_s)
        self._membw = MembwLoad(membw_buffer_mb)
        self._gpu: GpuLoad | None = None
        self._period_s, self._pin, self._gpu_index = period_s, pin, gpu_index
        self._asked = ContentionLevels()
        self._since = self._counters()

    def __enter__(self) -> ContentionGenerator:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def asked(self) -> ContentionLevels:
        """The levels last set."""
        return self._asked

    def set(self, levels: ContentionLevels) -> None:
        """Apply `levels`, wait `settle_s`, then open a new measuring window.

        Raises:
            TypeError: `levels` is not a `ContentionLevels`.
            ValueError: more CPU cores asked than this process may use.
            ContentionError: GPU load asked with no CUDA device, or a load died.
        """
        self._apply(levels)
        time.sleep(self.settle_s)
        self._since = self._counters()

    def measured(self, restart: bool = False) -> ContentionReading:
        """What was reached since the window opened (the last `set`, after settling).

        With `restart`, a new window opens now (for readings at intervals).
        """
        now = self._counters()
        reading = reading_between(self._since, now, self._asked)
        if restart:
            self._since = now
        return reading

    def play(
        self,
        trace: ContentionTrace,
        interval_s: float = 1.0,
        until_s: float | None = None,
        progress: bool = False,
    ) -> Iterator[tuple[float, ContentionReading]]:
        """Apply each step of `trace` at its time; yield readings every `interval_s`.

        Times count from the start of the play, after the loads the trace needs
        have started. Each item is (seconds since the start at the end of the
        window, reading). Readings start `settle_s` after each step is applied and
        the last one of a step ends with it. The play ends at `until_s` (default:
        the trace's last step); `math.inf` plays until the caller stops iterating.
        """
        if not interval_s > 0:
            raise ValueError(f"interval_s: expected > 0, got {interval_s!r}")
        self.start_loads([step.levels for step in trace.steps])
        end_s = trace.end_s if until_s is None else until_s
        start = time.monotonic()
        total = end_s if math.isfinite(end_s) else None
        with tqdm(
            total=total, disable=not progress, desc="contend", bar_format=_BAR_FORMAT
        ) as bar:
            for step, step_end_s in trace.spans(end_s):
                _sleep_until(start + step.at_s)
                self._apply(step.levels)
                _sleep_until(min(time.monotonic() + self.settle_s, start + step_end_s))
                self._since = self._counters()
                while (left_s := start + step_end_s - time.monotonic()) > 1e-3:
                    # A step's last window may stretch to 1.5 intervals rather than
                    # leave a sliver too short to read.
                    time.sleep(left_s if left_s < 1.5 * interval_s else interval_s)
                    at_s = time.monotonic() - start
                    yield at_s, self.measured(restart=True)
                    bar.n = min(at_s, end_s)
                    bar.refresh()

    def pids(self) -> list[int]:
        """Every load process running now (stress-ng's own workers included)."""
        gpu = self._gpu.pids() if self._gpu is not None else []
        return self._cpu.pids() + self._membw.pids() + gpu

    def close(self) -> None:
        """End every load process (a later `set` would start them anew)."""
        try:
            self._cpu.close()
        finally:
            try:
                self._membw.close()
            finally:
                if self._gpu is not None:
                    self._gpu.close()
                    self._gpu = None
        self._asked = ContentionLevels()

    def _check(self, levels: ContentionLevels) -> None:
        if not isinstance(levels, ContentionLevels):
            raise TypeError(
                f"levels: expected ContentionLevels, got {type(levels).__name__}"
            )
        cores = len(cores_from_last())
        if levels.cpu > cores:
            raise ValueError(
                f"ContentionLevels.cpu: {levels.cpu:g} cores asked, but this "
                f"process may use {cores}"
            )
        if levels.gpu_pct > 0 and self._gpu is None:
            check_cuda(self._gpu_index)

    def start_loads(self, levels: Sequence[ContentionLevels]) -> None:
        """Start, idle, the slow-starting loads that any of ``levels`` needs.

        The memory workers and the GPU load (a CUDA start-up: seconds) otherwise
        start at the first `set` that asks for them, which then lands seconds late
        in whatever clock the caller keeps. Call this before that clock starts.
        """
        for level in levels:
            self._check(level)
        if any(level.membw_mbps > 0 for level in levels):
            self._membw.start()
        if any(level.gpu_pct > 0 for level in levels) and self._gpu is None:
            self._gpu = GpuLoad(self._gpu_index, self._period_s)

    def _apply(self, levels: ContentionLevels) -> None:
        self._check(levels)
        if levels.gpu_pct > 0 and self._gpu is None:
            self._gpu = GpuLoad(self._gpu_index, self._period_s)
        order = cores_from_last() if self._pin else []
        self._cpu.set(levels.cpu, order)
        # Memory workers take the cores after the fully busy CPU workers', first
        # the one a fractional CPU worker leaves partly free.
        shift = math.floor(levels.cpu) % len(order) if order else 0
        self._membw.set(levels.membw_mbps, order[shift:] + order[:shift])
        if self._gpu is not None:
            self._gpu.set(levels.gpu_pct)
        self._asked = levels

    def _counters(self) -> Counters:
        busy_s, total_s = machine_cpu_seconds()
        return Counters(
            time_s=time.monotonic(),
            cpu_s=process_cpu_seconds(self._cpu.pids()),
            membw_cpu_s=process_cpu_seconds(self._membw.pids()),
            moved_bytes=self._membw.moved_bytes(),
            machine_busy_s=busy_s,
            machine_total_s=total_s,
            gpu=self._gpu.counters() if self._gpu is not None else {},
        )
