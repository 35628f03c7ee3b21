"""GPU load at 25/50/75% utilisation, read through NVML (skipped without a GPU)."""

from __future__ import annotations

import time

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip(
        "no CUDA device: GPU load levels untested here", allow_module_level=True
    )
pytest.importorskip("pynvml", reason="nvidia-ml-py not installed (approxrt[gpu])")

from approxrt.contention import ContentionLevels  # noqa: E402
from approxrt.profiler.contention import ContentionGenerator  # noqa: E402


def test_gpu_load_reaches_25_50_75_percent_within_10_points():
    readings = {}
    with ContentionGenerator(settle_s=2.0, backend="builtin") as generator:
        for pct in (25, 50, 75):
            generator.set(ContentionLevels(gpu_pct=pct))
            time.sleep(3.0)
            readings[pct] = generator.measured().gpu_pct
    for pct, reached in readings.items():
        assert abs(reached - pct) <= 10, readings
