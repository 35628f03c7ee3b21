"""Synthetic latency tables of known truth, shaped as the profiler writes them.

Shared by the stage models' tests (`tests/scheduler`) and the fit step's
(`tests/profiler/fit_tables.py`); each passes its own truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import product

import numpy as np
import pandas as pd

from approxrt.profile_schema import TABLES

FIT_LEVELS = [(c, m) for c in (0.0, 1.0, 2.0) for m in (0.0, 3000.0)]
HELDOUT_LEVELS = [(0.5, 0.0), (1.5, 1500.0)]
FRAMES = [(480, 360), (1280, 720)]


def levels_of(cpu: float, membw: float) -> dict[str, float]:
    """The contention columns of a row at one level, as reached exactly."""
    return {
        "cpu": cpu,
        "membw_mbps": membw,
        "gpu_pct": 0.0,
        "cpu_measured": cpu,
        "membw_measured_mbps": membw,
    }


def switching_row(
    source: tuple[str, int],
    target: tuple[str, int],
    level: tuple[float, float],
    extra_ms: float,
) -> dict:
    """A ``latency/switching`` row: one-stage kernel ``source`` to ``target``."""
    return {
        "from_detector": source[0],
        "from_input_size": source[1],
        "from_proposals": 0,
        "to_detector": target[0],
        "to_input_size": target[1],
        "to_proposals": 0,
        **levels_of(*level),
        "extra_ms": extra_ms,
    }


def detector_table(
    rng: np.random.Generator,
    truth: Callable[..., float],
    kernels: Sequence[tuple[str, int]],
    samples: int = 15,
    sigma: float = 0.08,
) -> pd.DataFrame:
    """``latency/detector`` rows: every (detector, size) x frame x level.

    ``truth(detector, size, w, h, cpu, membw)`` gives a cell's ms; each sample is
    it times log-normal noise of ``sigma``, split 10/80/10 over the stages.
    """
    rows = []
    for (detector, size), (w, h), level in product(
        kernels, FRAMES, FIT_LEVELS + HELDOUT_LEVELS
    ):
        ms = truth(detector, size, w, h, *level)
        for sample in ms * np.exp(rng.normal(0, sigma, samples)):
            rows.append(
                {
                    "detector": detector,
                    "input_size": size,
                    "proposals": 0,
                    "frame_w": w,
                    "frame_h": h,
                    **levels_of(*level),
                    "preprocess_ms": 0.1 * sample,
                    "infer_ms": 0.8 * sample,
                    "postprocess_ms": 0.1 * sample,
                    "total_ms": sample,
                }
            )
    return pd.DataFrame(rows, columns=TABLES["latency/detector"])


def tracker_table(
    rng: np.random.Generator,
    truth: Callable[..., float],
    trackers: Sequence[str],
    downsamples: Sequence[int],
    objects: Sequence[int] = (1, 5, 15, 40),
    sizes_at_720p: Sequence[int] = (40, 120),
    samples: int = 6,
    sigma: float = 0.05,
) -> pd.DataFrame:
    """``latency/tracker`` rows: the full grid of objects x sizes when idle, only
    the fewest and most objects at other levels (as the profiler measures).

    ``truth(tracker, ds, phase, n, size_px, w, h, cpu, membw)`` gives a cell's
    ms; each sample is it times log-normal noise of ``sigma``.
    """
    rows = []
    for tracker, ds, phase, level, (w, h) in product(
        trackers, downsamples, ("seed", "update"), FIT_LEVELS + HELDOUT_LEVELS, FRAMES
    ):
        counts = objects if level == (0.0, 0.0) else (objects[0], objects[-1])
        for n, size in product(counts, sizes_at_720p):
            size_px = size * w / 1280
            ms = truth(tracker, ds, phase, n, size_px, w, h, *level)
            for sample in ms * np.exp(rng.normal(0, sigma, samples)):
                rows.append(
                    {
                        "tracker": tracker,
                        "downsample": ds,
                        "phase": phase,
                        "objects": n,
                        "object_size_px": size_px,
                        "frame_w": w,
                        "frame_h": h,
                        **levels_of(*level),
                        "ms": sample,
                    }
                )
    return pd.DataFrame(rows, columns=TABLES["latency/tracker"])
