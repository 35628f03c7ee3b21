"""CPU contention from stress-ng (Debian/Ubuntu/L4T package ``stress-ng``).

A level of N.x cores runs N instances ``--cpu 1 --cpu-load 100``, each pinned
to a core of its own, and one ``--cpu 1 --cpu-load x*100`` on the next core, so
the load splits over cores as the built-in one does. One instance per core, not
one ``--cpu N --taskset <N cores>``: that instance's workers may share a core and
leave another free. Measured at cpu=2 on the 2-core VM with one ONNX Runtime
thread (profile lat12, docs/benchmarks/profiler.md, stop 20): yolox_nano s416
took 11-12 ms in 29 of its 30 calls, as on the idle device (10.9-12.4 ms), and
the two workers reached 1.0-1.4 cores, not 2. stress-ng cannot change its load
while running: a new level restarts these instances (and nothing else). Each
instance is tied to this process with a death signal set before exec; stress-ng
ties its own workers to itself the same way.

Memory bandwidth stays with the built-in generator: stress-ng reports how much it
moved only when it exits, and the generator must report it while running.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time

import psutil

from approxrt.profiler.contention.processes import (
    ContentionError,
    exec_hook_dying_with,
)

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 2.0


def find_stress_ng() -> str | None:
    """Path of the stress-ng executable on PATH, or None."""
    return shutil.which("stress-ng")


class StressNgCpuLoad:
    """Keeps `cores` CPU cores busy with stress-ng instances."""

    def __init__(self) -> None:
        executable = find_stress_ng()
        if executable is None:
            raise ContentionError(
                "backend 'stress-ng' needs the stress-ng program on PATH "
                "(apt-get install stress-ng); use backend 'builtin' or 'auto'"
            )
        self.executable = executable
        self._instances: list[subprocess.Popen] = []
        self._running: tuple[float, tuple[int, ...]] = (0.0, ())

    def set(self, cores: float, pin_cores: list[int]) -> None:
        """Keep `cores` cores busy; the instances use ``pin_cores`` if given."""
        if (cores, tuple(pin_cores)) == self._running:
            self._check_alive()
            return
        self.close()
        full = math.floor(cores)
        fraction_pct = round((cores - full) * 100)
        if full and not pin_cores:  # no pinning here: the OS places the workers
            self._start(full, 100, [])
        for core in pin_cores[:full]:
            self._start(1, 100, [core])
        if fraction_pct:
            self._start(1, fraction_pct, pin_cores[full : full + 1])
        self._running = (cores, tuple(pin_cores))

    def _start(self, workers: int, load_pct: int, cores: list[int]) -> None:
        command = [self.executable, "--quiet", "--cpu", str(workers)]
        command += ["--cpu-load", str(load_pct)]
        if cores:
            command += ["--taskset", ",".join(str(core) for core in cores)]
        instance = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # A pre-exec hook is the only way to set the death signal of a program
            # we don't own; it does no more than that (see exec_hook_dying_with).
            preexec_fn=exec_hook_dying_with(os.getpid()),
        )
        self._instances.append(instance)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while len(_descendants(instance.pid)) < workers:
            self._check_alive()
            if time.monotonic() > deadline:
                raise ContentionError(
                    f"{' '.join(command)} started no {workers} workers "
                    f"in {_START_TIMEOUT_S:g} s"
                )
            time.sleep(0.02)

    def _check_alive(self) -> None:
        for instance in self._instances:
            if instance.poll() is not None:
                error = instance.stderr.read().decode(errors="replace").strip()
                raise ContentionError(
                    f"stress-ng {' '.join(instance.args[1:])} exited with code "
                    f"{instance.returncode}: {error or 'no message'}"
                )

    def pids(self) -> list[int]:
        """The instances and their stress-ng workers."""
        pids = []
        for instance in self._instances:
            pids += [instance.pid, *_descendants(instance.pid)]
        return pids

    def close(self) -> None:
        """SIGTERM each instance (it stops its workers), SIGKILL what is left."""
        left = _processes(self.pids())
        for instance in self._instances:
            instance.terminate()
        for instance in self._instances:
            try:
                instance.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                instance.kill()
                instance.wait(_STOP_TIMEOUT_S)
            instance.stderr.close()
        _, alive = psutil.wait_procs(left, timeout=_STOP_TIMEOUT_S)
        for process in alive:
            process.kill()
        self._instances, self._running = [], (0.0, ())


def _processes(pids: list[int]) -> list[psutil.Process]:
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return processes


def _descendants(pid: int) -> list[int]:
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
