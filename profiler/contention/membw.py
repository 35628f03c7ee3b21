"""Built-in memory-bandwidth contention: rate-controlled streaming copies.

Each worker copies between two buffers far larger than any last-level cache, a
chunk at a time, and sleeps between chunks to hold its target rate. Bandwidth is
counted as STREAM counts a copy: bytes read plus bytes written (copying N bytes
moves 2N), in MB of 10^6 bytes. Write-allocate traffic the hardware may add is
not counted. The copies burn CPU time too; the generator reports it apart.

The first worker measures the fastest rate one worker reaches (calibration); a
target above what one worker can hold is split over more workers.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import math
import multiprocessing.process
import os
import time
from collections.abc import Iterator

import numpy as np

from approxrt.profiler.contention.processes import (
    SPAWN,
    check_alive,
    die_with_parent,
    pin,
    start_child,
    stop_children,
    wait_until,
)

logger = logging.getLogger(__name__)

CHUNK_BYTES = 2 * 2**20
_IDLE_POLL_S = 0.05
_MAX_LAG_S = 0.1  # behind schedule by more than this: start over, don't burst
_CALIBRATION_S = 0.3
_CALIBRATION_TIMEOUT_S = 60.0
_WORKER_SHARE = 0.8  # plan each worker at most at this share of the calibrated rate


def _copy_forever(source: np.ndarray, dest: np.ndarray) -> Iterator[int]:
    """Copy chunk after chunk, wrapping around; yields bytes moved per chunk."""
    for offset in itertools.cycle(range(0, len(source), CHUNK_BYTES)):
        end = offset + CHUNK_BYTES
        np.copyto(dest[offset:end], source[offset:end])
        yield 2 * (min(end, len(source)) - offset)


def _calibrate(chunks: Iterator[int], seconds: float) -> float:
    """Fastest rate in MB/s: copy without pause for `seconds`."""
    moved = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        moved += next(chunks)
    return moved / (time.perf_counter() - start) / 1e6


def _stream(
    chunks: Iterator[int], target_mbps: ctypes.c_double, moved_bytes: ctypes.c_double
) -> None:
    """Hold the rate `target_mbps.value`, reading it anew before every chunk."""
    target, start_s, sent = 0.0, 0.0, 0
    while True:
        asked = target_mbps.value
        if asked <= 0:
            target = 0.0
            time.sleep(_IDLE_POLL_S)
            continue
        now = time.perf_counter()
        if asked != target or now - (start_s + sent / (asked * 1e6)) > _MAX_LAG_S:
            target, start_s, sent = asked, now, 0
        chunk = next(chunks)
        sent += chunk
        moved_bytes.value += chunk
        ahead_s = start_s + sent / (target * 1e6) - time.perf_counter()
        if ahead_s > 0:
            time.sleep(ahead_s)


def membw_worker(
    parent_pid: int,
    target_mbps: ctypes.c_double,
    moved_bytes: ctypes.c_double,
    max_mbps: ctypes.c_double,
    buffer_mb: int,
    calibrate: bool,
) -> None:
    """Stream copies at `target_mbps`; count bytes in `moved_bytes`, forever."""
    die_with_parent(parent_pid)
    size = buffer_mb * 2**20
    # Filled, not np.empty/np.zeros, so every page is mapped before timing starts.
    source = np.full(size, 1, np.uint8)
    dest = np.full(size, 2, np.uint8)
    chunks = _copy_forever(source, dest)
    if calibrate:
        _calibrate(chunks, _CALIBRATION_S / 3)  # warm-up
        max_mbps.value = _calibrate(chunks, _CALIBRATION_S)
    _stream(chunks, target_mbps, moved_bytes)


class MembwLoad:
    """Moves `mbps` MB/s through memory with streaming-copy worker processes.

    Args:
        buffer_mb: size of each of a worker's two buffers; keep it well above the
            last-level cache so copies reach memory (each worker holds 2x this).
    """

    def __init__(self, buffer_mb: int = 64) -> None:
        self.buffer_mb = buffer_mb
        self._workers: list[multiprocessing.process.BaseProcess] = []
        self._targets: list[ctypes.c_double] = []
        self._moved: list[ctypes.c_double] = []
        self._max_mbps = SPAWN.RawValue("d", 0.0)

    @property
    def max_mbps(self) -> float:
        """Calibrated rate of one worker alone, MB/s (0 before the first start)."""
        return self._max_mbps.value

    def set(self, mbps: float, pin_cores: list[int]) -> None:
        """Move `mbps` MB/s; worker j is pinned to ``pin_cores[j]`` if given."""
        if mbps > 0:
            self.start()
        needed = self._workers_for(mbps)
        while len(self._workers) < needed:
            self._start_worker(calibrate=False)
        check_alive(self._workers, "memory-bandwidth load")
        for index, (worker, target) in enumerate(
            zip(self._workers, self._targets, strict=True)
        ):
            if pin_cores:
                pin(worker.pid, pin_cores[index % len(pin_cores)])
            target.value = mbps / needed if index < needed else 0.0

    def start(self) -> None:
        """Start and calibrate the first worker, if not yet done (about a second)."""
        if self._workers:
            return
        self._start_worker(calibrate=True)
        wait_until(
            lambda: self.max_mbps > 0,
            self._workers,
            "memory-bandwidth calibration",
            _CALIBRATION_TIMEOUT_S,
        )

    def _workers_for(self, mbps: float) -> int:
        if mbps <= 0:
            return 0
        cores = os.cpu_count() or 1
        if mbps > cores * self.max_mbps:
            logger.warning(
                "membw %.0f MB/s is above the %.0f MB/s that %d workers reach "
                "(%.0f MB/s each alone); the reading shows what was reached",
                mbps,
                cores * self.max_mbps,
                cores,
                self.max_mbps,
            )
        return min(cores, max(1, math.ceil(mbps / (_WORKER_SHARE * self.max_mbps))))

    def _start_worker(self, calibrate: bool) -> None:
        target = SPAWN.RawValue("d", 0.0)
        moved = SPAWN.RawValue("d", 0.0)
        args = (target, moved, self._max_mbps, self.buffer_mb, calibrate)
        name = f"approxrt-contend-membw{len(self._workers)}"
        self._workers.append(start_child(membw_worker, args, name=name))
        self._targets.append(target)
        self._moved.append(moved)

    def moved_bytes(self) -> float:
        """Bytes moved (read + written) by every worker since it started."""
        return sum(moved.value for moved in self._moved)

    def pids(self) -> list[int]:
        return [worker.pid for worker in self._workers]

    def close(self) -> None:
        stop_children(self._workers)
        self._workers, self._targets, self._moved = [], [], []
        self._max_mbps.value = 0.0
