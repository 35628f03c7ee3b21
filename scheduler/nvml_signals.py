"""`NvmlGpu`: what a GPU's other users take of it, read through NVML.

nvidia-ml-py (``pynvml``) is optional: without it, without a driver or without a
GPU, `NvmlGpu.open` returns None and the contention sensor reads no GPU fields.

NVML's utilisation is the share of time any kernel ran on the device, this
process's included, while the profile's GPU levels are another program's load.
So this process's own share (NVML's per-process samples, ``smUtil``) is taken
off; where the driver gives no per-process samples (some containers), the
device's figure is used whole and ``gpu_own_util_pct`` is NaN.
"""

from __future__ import annotations

import math
import os


class NvmlGpu:
    """One GPU's utilisation and memory; see the module docstring.

    Args:
        handle: NVML's handle of the device.
        pynvml: the imported module (kept so tests without it never import it).
    """

    def __init__(self, handle, pynvml) -> None:
        self.handle = handle
        self.pynvml = pynvml
        self.pid = os.getpid()
        self._last_sample_us = 0  # NVML returns the per-process samples since this
        self._own_pct = 0.0

    @classmethod
    def open(cls, index: int = 0) -> NvmlGpu | None:
        """GPU ``index`` through NVML, or None when NVML cannot read one."""
        try:
            import pynvml

            pynvml.nvmlInit()
            return cls(pynvml.nvmlDeviceGetHandleByIndex(index), pynvml)
        except Exception:  # no pynvml, no driver, no such GPU: no GPU readings
            return None

    def read(self) -> dict[str, float]:
        """``gpu_util_pct`` (the device), ``gpu_own_util_pct`` (this process, NaN
        when unknown), ``gpu_other_util_pct`` (the rest), memory used and total."""
        nvml = self.pynvml
        device_pct = float(nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)
        memory = nvml.nvmlDeviceGetMemoryInfo(self.handle)
        own_pct = self._own_util_pct()
        other_pct = device_pct if math.isnan(own_pct) else device_pct - own_pct
        return {
            "gpu_util_pct": device_pct,
            "gpu_own_util_pct": own_pct,
            "gpu_other_util_pct": min(max(other_pct, 0.0), 100.0),
            "gpu_memory_used_mb": memory.used / 2**20,
            "gpu_memory_total_mb": memory.total / 2**20,
        }

    def _own_util_pct(self) -> float:
        """Mean ``smUtil`` of this process's samples since the last read (0 when
        others' samples came and none of its own), NaN when the driver keeps no
        per-process samples."""
        nvml = self.pynvml
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(
                self.handle, self._last_sample_us
            )
        except nvml.NVMLError as error:
            if error.value == nvml.NVML_ERROR_NOT_FOUND:
                # No process has a new sample yet (they come less often than the
                # sensor reads): the last share still stands.
                return self._own_pct
            return float("nan")
        if not samples:
            return self._own_pct
        self._last_sample_us = max(s.timeStamp for s in samples)
        own = [s.smUtil for s in samples if s.pid == self.pid]
        self._own_pct = sum(own) / len(own) if own else 0.0
        return self._own_pct
