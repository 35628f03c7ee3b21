"""Built-in GPU contention: a duty-cycled CUDA workload in a worker process.

Each period the worker queues enough matrix products to keep the GPU busy a share
``gpu_pct / 100`` of the period, waits for them on a blocking CUDA event (so the
wait costs no CPU time) and sleeps the rest. On an otherwise idle GPU this
reaches about that utilisation. torch is imported only here and only in the
worker (and by `check_cuda`), so a generator without GPU load never loads it.

The worker reads utilisation from NVML (``pynvml``, package nvidia-ml-py) every
period when it is importable; that is the whole GPU's utilisation, this load and
any other program together. Without NVML the reading falls back to the share of
time the worker's own kernels ran.
"""

from __future__ import annotations

import ctypes
import multiprocessing.process
import time

from approxrt.profiler.contention.processes import (
    SPAWN,
    ContentionError,
    check_alive,
    die_with_parent,
    start_child,
    stop_children,
    wait_until,
)

MATRIX_SIZE = 2048
_TIMING_RUNS = 20
_START_TIMEOUT_S = 180.0  # CUDA start-up on a small board can take a minute


def check_cuda(device_index: int) -> str:
    """Name of CUDA device `device_index`; `ContentionError` when torch sees none."""
    import torch

    available = torch.cuda.is_available()
    count = torch.cuda.device_count() if available else 0
    if device_index >= count:
        raise ContentionError(
            f"gpu_pct > 0 asks for GPU contention on cuda:{device_index}, but torch "
            f"sees {count} CUDA device(s) (torch.cuda.is_available() is "
            f"{available}); use gpu_pct=0 on this machine"
        )
    return torch.cuda.get_device_name(device_index)


def _open_nvml(torch, device_index: int):
    """NVML handle of the device torch calls `device_index`; None without NVML."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        # CUDA_VISIBLE_DEVICES renumbers devices for torch but not for NVML.
        uuid = getattr(torch.cuda.get_device_properties(device_index), "uuid", None)
        if uuid is not None:
            return pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
        return pynvml.nvmlDeviceGetHandleByIndex(device_index)
    except pynvml.NVMLError:
        return None


def _kernel_seconds(torch, a, b, out) -> float:
    """Mean time of one matrix product on the GPU."""
    torch.mm(a, b, out=out)
    torch.cuda.synchronize(a.device)
    start = time.perf_counter()
    for _ in range(_TIMING_RUNS):
        torch.mm(a, b, out=out)
    torch.cuda.synchronize(a.device)
    return (time.perf_counter() - start) / _TIMING_RUNS


def gpu_worker(
    parent_pid: int,
    counters: dict[str, ctypes.c_double],
    device_index: int,
    period_s: float,
) -> None:
    """Keep the GPU busy a share ``counters["duty"]`` of each period, forever."""
    die_with_parent(parent_pid)
    import torch

    device = torch.device("cuda", device_index)
    a = torch.rand((MATRIX_SIZE, MATRIX_SIZE), device=device)
    b, out = torch.rand_like(a), torch.empty_like(a)
    kernel_s = _kernel_seconds(torch, a, b, out)
    nvml = _open_nvml(torch, device_index)
    done = torch.cuda.Event(blocking=True)
    counters["ready"].value = 1.0
    while True:
        start = time.perf_counter()
        launches = round(
            min(max(counters["duty"].value, 0.0), 1.0) * period_s / kernel_s
        )
        if launches:
            for _ in range(launches):
                torch.mm(a, b, out=out)
            done.record()
            done.synchronize()
            counters["busy_s"].value += time.perf_counter() - start
        if nvml is not None:
            import pynvml

            counters["nvml_pct_sum"].value += pynvml.nvmlDeviceGetUtilizationRates(
                nvml
            ).gpu
            counters["nvml_samples"].value += 1
        idle_s = start + period_s - time.perf_counter()
        if idle_s > 0:
            time.sleep(idle_s)


class GpuLoad:
    """Keeps CUDA device `device_index` busy `pct` percent of the time.

    Raises `ContentionError` at construction when there is no such CUDA device.
    """

    COUNTERS = ("duty", "ready", "busy_s", "nvml_pct_sum", "nvml_samples")

    def __init__(self, device_index: int = 0, period_s: float = 0.1) -> None:
        self.device_name = check_cuda(device_index)
        self._counters = {name: SPAWN.RawValue("d", 0.0) for name in self.COUNTERS}
        self._worker: multiprocessing.process.BaseProcess = start_child(
            gpu_worker,
            (self._counters, device_index, period_s),
            name="approxrt-contend-gpu",
        )
        wait_until(
            lambda: self._counters["ready"].value > 0,
            [self._worker],
            f"GPU load on cuda:{device_index} ({self.device_name})",
            _START_TIMEOUT_S,
        )

    def set(self, pct: float) -> None:
        check_alive([self._worker], "GPU load")
        self._counters["duty"].value = pct / 100

    def counters(self) -> dict[str, float]:
        """busy_s, nvml_pct_sum, nvml_samples: running totals since start."""
        return {name: self._counters[name].value for name in self.COUNTERS[2:]}

    def pids(self) -> list[int]:
        return [self._worker.pid]

    def close(self) -> None:
        stop_children([self._worker])
