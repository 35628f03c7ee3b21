"""A whole synthetic profile whose truth is known, for the fit step's tests.

The tables are built from formulas plus noise, shaped as the profiler measures
them: detector cells on the full grid; tracker cells on the full grid when idle
and only at the corners (fewest/most objects, smallest/largest size) at other
levels; whole branches at held-out levels, some in crowded scenes. Contention
follows the generator's physics: integer CPU levels slow the detector (two
threads on two cores) convexly, a fractional level is a duty cycle between its
neighbours, memory bandwidth adds a proportional slowdown.
"""

from __future__ import annotations

from itertools import product

import latency_tables
import numpy as np
import pandas as pd
from latency_tables import (
    FIT_LEVELS,
    FRAMES,
    HELDOUT_LEVELS,
    levels_of,
    switching_row,
)

from approxrt.branch import Branch
from approxrt.profile_schema import TABLES
from approxrt.scheduler.accuracy_table import knob_columns

KERNELS = [("yolox_nano", s) for s in (224, 320, 416, 512)] + [("fastestdet", 352)]
TRACKERS = ("medianflow", "kcf")
DOWNSAMPLES = (1, 2)
OBJECTS = (1, 5, 15, 40)
SIZES_AT_720P = (40, 120)
NOISE = 0.08  # log-normal sigma of one sample


def slowdown(cpu_factors, cpu, membw_mbps, per_1000_mbps):
    """Duty cycle between integer CPU levels, times a memory-bandwidth term."""
    low = min(int(np.floor(cpu)), len(cpu_factors) - 2)
    t = cpu - low
    by_cpu = (1 - t) * cpu_factors[low] + t * cpu_factors[low + 1]
    return by_cpu * (1 + per_1000_mbps * membw_mbps / 1000)


def detector_ms(detector, size, w, h, cpu, membw):
    scale = {"yolox_nano": 9.0, "fastestdet": 4.0}[detector]
    idle = scale * (size / 416) ** 2 + 0.6 * w * h / 1e6 + 0.3
    return idle * slowdown((1.0, 1.6, 2.9), cpu, membw, 0.08)


def tracker_ms(tracker, ds, phase, n, size, w, h, cpu, membw):
    mpx, side = w * h / 1e6 / ds**2, size / ds
    per_frame = 0.1 + 0.3 * mpx
    per_object = {
        ("medianflow", "update"): 0.15 + 1.8 * mpx,
        ("medianflow", "seed"): 0.3 + 0.5 * mpx,
        ("kcf", "update"): 0.4 + 0.012 * side,
        ("kcf", "seed"): 1.0 + 0.03 * side,
    }[tracker, phase]
    return (per_frame + n * per_object) * slowdown((1.0, 1.25, 1.9), cpu, membw, 0.05)


def association_ms(n, m, cpu, membw):
    idle = 0.02 + 0.004 * (n + m) + 0.0008 * n * m
    return idle * slowdown((1.0, 1.25, 1.9), cpu, membw, 0.05)


def overhead_ms(detected, cpu, membw):
    return (0.08 if detected else 0.03) * slowdown((1.0, 1.2, 1.6), cpu, membw, 0.0)


def _samples(rng, ms, count):
    return ms * np.exp(rng.normal(0, NOISE, count))


def detector_table(rng, samples=15):
    return latency_tables.detector_table(rng, detector_ms, KERNELS, samples, NOISE)


def tracker_table(rng, samples=6):
    return latency_tables.tracker_table(
        rng, tracker_ms, TRACKERS, DOWNSAMPLES, OBJECTS, SIZES_AT_720P, samples, NOISE
    )


def small_tables(rng):
    association, overhead, switching = [], [], []
    for level in FIT_LEVELS + HELDOUT_LEVELS:
        for n, m in product(OBJECTS, OBJECTS):
            for ms in _samples(rng, association_ms(n, m, *level), 5):
                association.append(
                    {"objects": n, "previous_objects": m, **levels_of(*level), "ms": ms}
                )
        for detected in (True, False):
            for ms in _samples(rng, overhead_ms(detected, *level), 20):
                overhead.append({"detected": detected, **levels_of(*level), "ms": ms})
        for (a, sa), (b, sb) in product(KERNELS[:3], KERNELS[:3]):
            if (a, sa) != (b, sb):
                extra_ms = 2.0 + sb / 100 + rng.normal(0, 0.2)
                switching.append(switching_row((a, sa), (b, sb), level, extra_ms))
    return {
        "latency/association": pd.DataFrame(association),
        "latency/overhead": pd.DataFrame(overhead),
        "latency/switching": pd.DataFrame(switching),
    }


def true_branch_ms(branch, n, size, w, h, level):
    detect = (
        detector_ms(branch.detector, branch.input_size, w, h, *level)
        + association_ms(n, n, *level)
        + overhead_ms(True, *level)
    )
    track = 0.0
    if branch.tracker:
        args = (branch.tracker, branch.downsample)
        detect += tracker_ms(*args, "seed", n, size, w, h, *level)
        track = tracker_ms(*args, "update", n, size, w, h, *level)
        track += overhead_ms(False, *level)
    si = branch.sampling_interval
    return detect, track, (detect + (si - 1) * track) / si


def validation_branches():
    kernels = [f"{d}/s{s}" for d, s in KERNELS]
    names = [f"{k}/si1" for k in kernels]
    names += [
        f"{k}/si{si}/{t}/ds{ds}"
        for k, si, t, ds in product(kernels, (4, 20), TRACKERS, DOWNSAMPLES)
    ]
    return [Branch.parse(n) for n in names]


def branches_table(rng):
    rows = []
    for i, branch in enumerate(validation_branches()):
        level = HELDOUT_LEVELS[i % 2]
        w, h = FRAMES[i % 2]
        n = [3.0, 12.0, 35.0, 44.0][i % 4]  # every other branch a crowded scene
        size = (60.0 + 10 * (i % 3)) * w / 1280
        detect, track, gof = (
            v * np.exp(rng.normal(0, 0.03))
            for v in true_branch_ms(branch, n, size, w, h, level)
        )
        rows.append(
            {
                "branch": str(branch),
                "scene": "synthetic",
                "frame_w": w,
                "frame_h": h,
                "objects_mean": n,
                "object_size_px": size,
                **levels_of(*level),
                "detect_frame_ms": detect,
                "track_frame_ms": track,
                "gof_mean_ms": gof,
            }
        )
    return pd.DataFrame(rows, columns=TABLES["latency/branches"])


def accuracy_tables(rng, videos=3, segments_per_video=8):
    """AP50 falls with tracked frames x relative speed, and with a hidden
    darkness visible only in the colour histogram."""
    branches = [Branch(d, s) for d, s in KERNELS] + [
        Branch(d, s, None, si, t, ds)
        for (d, s), si, t, ds in product(KERNELS, (4, 20), TRACKERS, DOWNSAMPLES)
    ]
    segment_rows, feature_rows, kernel_rows = [], [], []
    for video, segment in product(range(videos), range(segments_per_video)):
        w, h = FRAMES[video % 2]
        size = rng.uniform(15, 120) * w / 1280
        speed = rng.uniform(0.5, 12) * w / 1280
        dark = rng.uniform(0, 1)
        hist = np.exp(-((np.arange(12) - (10 - 8 * dark)) ** 2) / 6)
        feature_rows.append(
            {
                "video": f"v{video}",
                "segment": segment,
                "frame_w": w,
                "frame_h": h,
                "objects": rng.uniform(1, 40),
                "object_size_px": size,
                "object_speed_px": speed,
                **{f"color_hist_{i}": v for i, v in enumerate(hist / hist.sum())},
            }
        )
        for detector, input_size in KERNELS:
            seen_px = size * kernel_size_ratio(input_size) * np.exp(rng.normal(0, 0.05))
            kernel_rows.append(
                (f"v{video}", segment, f"{detector}/s{input_size}", 5.0, seen_px)
            )
        for b in branches:
            ap = 0.92 - 0.5 * np.exp(-size * b.input_size / max(w, h) / 12)
            if b.tracker:
                rate = 0.05 if b.tracker == "medianflow" else 0.03
                ap -= np.log2(b.sampling_interval) * speed / size * rate * b.downsample
            ap -= 0.2 * dark
            segment_rows.append(
                {
                    "video": f"v{video}",
                    "segment": segment,
                    "first_frame": segment * 100,
                    "last_frame": segment * 100 + 99,
                    "branch": str(b),
                    **knob_columns(b),
                    "ap50": float(np.clip(ap + rng.normal(0, 0.02), 0, 1)),
                    "truth_boxes": 100,
                    "truth": "gt",
                }
            )
    return {
        "accuracy/segments": pd.DataFrame(segment_rows),
        "accuracy/features": pd.DataFrame(feature_rows),
        "accuracy/kernel_features": pd.DataFrame(
            kernel_rows, columns=TABLES["accuracy/kernel_features"]
        ),
    }


def kernel_size_ratio(input_size):
    """How much larger a kernel's boxes look than the reference's: a small
    input misses the small objects (PETS, yolox_nano s224: 1.22)."""
    return 1 + (416 - input_size) / 800


def make_tables(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "latency/detector": detector_table(rng),
        "latency/tracker": tracker_table(rng),
        **small_tables(rng),
        "latency/branches": branches_table(rng),
        **accuracy_tables(rng),
    }
