"""Content features of video segments, and what each costs to compute per frame.

The accuracy model learns how a branch's AP50 depends on what the video shows, so
each segment gets:

- light features, from detections the runtime has anyway (the reference kernel's
  cached boxes at least ``config.tracker_min_confidence`` confident, the boxes
  that would seed trackers): ``objects`` (mean boxes per frame),
  ``object_size_px`` (square root of the mean box area) and ``object_speed_px``
  (mean centre motion per frame of boxes matched frame to frame by IoU). A segment
  without boxes has 0 for all three; without matched pairs, speed 0.
- heavy features, from pixels, each a short vector spread over ``<name>_0..``:
  ``hog`` (gradient orientations of a downscaled grey frame, 9 bins in each
  quarter of the frame: 36 numbers; edges, texture and clutter) and
  ``color_hist`` (an HSV histogram of a downscaled frame: 8 hues x 4 saturations
  plus 4 brightness bins: 36 numbers; lighting and scene type). Each is the mean
  over `SAMPLES_PER_SEGMENT` frames spread over the segment.

Every feature's cost is timed on the frames it is computed on, resizing included,
since that is what the runtime would pay for it (table ``accuracy/feature_cost``).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

import cv2
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from approxrt.detections import Detections, box_iou
from approxrt.profile_schema import LIGHT_FEATURES, TABLES
from approxrt.profiler import detection_cache

# Frames per segment the heavy features are averaged over: enough to smooth one
# odd frame out, few enough that features stay a small share of profiling time.
SAMPLES_PER_SEGMENT = 5

_HOG_FRAME_WH = (128, 96)
# OpenCV 5 builds without the contrib modules (opencv-python-headless 5, as on the
# GPU machine of gpu.md) have no HOGDescriptor: the rest of this module works there.
HOG_AVAILABLE = hasattr(cv2, "HOGDescriptor")
_COLOR_FRAME_WH = (160, 120)
_HUE_BINS, _SATURATION_BINS, _VALUE_BINS = 8, 4, 4


@functools.cache
def _hog() -> cv2.HOGDescriptor:
    # A 9-bin histogram per quarter of the frame, the four normalised together as
    # one block (normalising each quarter alone saturates OpenCV's L2-Hys
    # clipping, which flattens a busy quarter's histogram to a constant).
    return cv2.HOGDescriptor(_HOG_FRAME_WH, _HOG_FRAME_WH, _HOG_FRAME_WH, (64, 48), 9)


def hog_vector(image: np.ndarray) -> np.ndarray:
    """``(36,) float32`` HOG of ``image`` (BGR) shrunk to 128 x 96 grey."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, _HOG_FRAME_WH, interpolation=cv2.INTER_AREA)
    return _hog().compute(small).reshape(-1).astype(np.float32)


def color_hist_vector(image: np.ndarray) -> np.ndarray:
    """``(36,) float32``: hue x saturation (32 bins), then value (4); each sums to 1."""
    small = cv2.resize(image, _COLOR_FRAME_WH, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    hue_saturation = cv2.calcHist(
        [hsv], [0, 1], None, [_HUE_BINS, _SATURATION_BINS], [0, 180, 0, 256]
    ).reshape(-1)
    value = cv2.calcHist([hsv], [2], None, [_VALUE_BINS], [0, 256]).reshape(-1)
    pixels = float(small.shape[0] * small.shape[1])
    return (np.concatenate([hue_saturation, value]) / pixels).astype(np.float32)


HEAVY_FEATURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hog": hog_vector,
    "color_hist": color_hist_vector,
}


def check_heavy_features(names: Sequence[str]) -> list[str]:
    """``names`` as a list, or a ValueError naming an unknown one and the valid ones."""
    unknown = [n for n in names if n not in HEAVY_FEATURES]
    if unknown:
        raise ValueError(
            f"profile.heavy_features: unknown {unknown}; valid: "
            f"{', '.join(HEAVY_FEATURES)}"
        )
    if "hog" in names and not HOG_AVAILABLE:
        raise ValueError(
            f"profile.heavy_features: 'hog' needs cv2.HOGDescriptor, which OpenCV "
            f"{cv2.__version__} here lacks (OpenCV 5 has it in the contrib build); "
            "install opencv-contrib-python-headless or leave 'hog' out"
        )
    return list(names)


def light_features(
    detections: Sequence[Detections], iou_threshold: float
) -> dict[str, float]:
    """``objects``, ``object_size_px`` and ``object_speed_px`` of consecutive frames.

    Args:
        detections: one entry per frame, in order (already the boxes that count).
        iou_threshold: least IoU for a box to continue a box of the frame before.
    """
    counts = [len(d) for d in detections]
    areas = np.concatenate([d.area for d in detections]) if detections else []
    moves = [
        _matched_motion(before, after, iou_threshold)
        for before, after in itertools.pairwise(detections)
    ]
    moves = np.concatenate(moves) if moves else np.zeros(0)
    return {
        "objects": float(np.mean(counts)) if counts else 0.0,
        "object_size_px": float(np.sqrt(np.mean(areas))) if len(areas) else 0.0,
        "object_speed_px": float(moves.mean()) if len(moves) else 0.0,
    }


def _matched_motion(
    before: Detections, after: Detections, iou_threshold: float
) -> np.ndarray:
    """Centre motion (px) of each box of ``after`` that continues one of ``before``."""
    if len(before) == 0 or len(after) == 0:
        return np.zeros(0)
    iou = box_iou(before.xyxy, after.xyxy)
    iou[before.class_id[:, None] != after.class_id[None, :]] = 0
    rows, cols = linear_sum_assignment(iou, maximize=True)
    keep = iou[rows, cols] >= iou_threshold
    rows, cols = rows[keep], cols[keep]
    centre_before = (before.xyxy[rows, :2] + before.xyxy[rows, 2:]) / 2
    centre_after = (after.xyxy[cols, :2] + after.xyxy[cols, 2:]) / 2
    return np.hypot(*(centre_after - centre_before).T).astype(np.float64)


def sample_indices(first: int, last: int, count: int = SAMPLES_PER_SEGMENT) -> set[int]:
    """Up to ``count`` frame indices spread evenly over ``first..last``."""
    return set(np.linspace(first, last, count).round().astype(int).tolist())


def features_task(
    video: str,
    source: str,
    max_frames: int | None,
    reference: str,
    segments: list[list[int]],
    heavy: list[str],
    min_confidence: float,
    iou_threshold: float,
    kernels: dict[str, str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Job: every segment's features and their cost, for one video.

    Args:
        video: the video's name in the tables.
        source: its path or synthetic spec (read once, in order).
        max_frames: frames read at most.
        reference: the reference kernel's detection cache entry.
        kernels: kernel name (``yolox_nano/s224``) to its detection cache
            entry, for `kernel_features`; None: none.
        segments: ``[first, last]`` frame indices of each segment.
        heavy: heavy feature names (see `HEAVY_FEATURES`).
        min_confidence: boxes less confident than this are not counted.
        iou_threshold: least IoU for a box to continue one of the frame before.

    Returns:
        ``{"features": ..., "cost": ..., "kernel_features": ...}`` with the
        columns of ``accuracy/features`` (plus the heavy columns),
        ``accuracy/feature_cost`` and ``accuracy/kernel_features``.
    """
    heavy = check_heavy_features(heavy)
    found = [d[d.confidence >= min_confidence] for d in detection_cache.read(reference)]
    vectors, cost, frame_wh = _heavy_vectors(source, max_frames, segments, heavy)
    rows = []
    for number, (first, last) in enumerate(segments):
        start = perf_counter()
        light = light_features(found[first : last + 1], iou_threshold)
        light_ms = (perf_counter() - start) * 1e3 / (last + 1 - first)
        # One timing covers the three: they share the pass over the boxes.
        cost += [(name, *frame_wh, light_ms) for name in LIGHT_FEATURES]
        row = {"video": video, "segment": number, "frame_w": frame_wh[0]}
        row |= {"frame_h": frame_wh[1], **light}
        for name in heavy:
            mean = np.mean(vectors[name, number], axis=0)
            row |= {f"{name}_{i}": float(v) for i, v in enumerate(mean)}
        rows.append(row)
    return {
        "features": pd.DataFrame(rows),
        "cost": pd.DataFrame(cost, columns=TABLES["accuracy/feature_cost"]),
        "kernel_features": kernel_features(
            video, kernels or {}, segments, min_confidence
        ),
    }


def kernel_features(
    video: str,
    kernels: dict[str, str],
    segments: Sequence[Sequence[int]],
    min_confidence: float,
) -> pd.DataFrame:
    """``accuracy/kernel_features`` of one video: each segment's ``objects``
    and ``object_size_px`` as each kernel's cached boxes show them (the
    features a live run reads while that kernel runs; see
    `approxrt.scheduler.kernel_views`)."""
    rows = []
    for kernel, entry in kernels.items():
        found = [d[d.confidence >= min_confidence] for d in detection_cache.read(entry)]
        for number, (first, last) in enumerate(segments):
            boxes = found[first : last + 1]
            areas = np.concatenate([d.area for d in boxes])
            size_px = float(np.sqrt(areas.mean())) if len(areas) else 0.0
            count = float(np.mean([len(d) for d in boxes]))
            rows.append((video, number, kernel, count, size_px))
    return pd.DataFrame(rows, columns=TABLES["accuracy/kernel_features"])


def _heavy_vectors(
    source: str,
    max_frames: int | None,
    segments: Sequence[Sequence[int]],
    heavy: Sequence[str],
) -> tuple[dict[tuple[str, int], list[np.ndarray]], list[tuple], tuple[int, int]]:
    """Heavy vectors of each segment's sampled frames, their timings, frame size."""
    wanted = {
        index: number
        for number, (first, last) in enumerate(segments)
        for index in sample_indices(first, last)
    }
    vectors: dict[tuple[str, int], list[np.ndarray]] = {
        (name, number): [] for name in heavy for number in range(len(segments))
    }
    cost: list[tuple[Any, ...]] = []
    frame_wh = (0, 0)
    with detection_cache.open_frames(source, max_frames) as frames:
        for frame in frames:
            frame_wh = (frame.width, frame.height)
            if frame.index not in wanted:
                continue
            for name in heavy:
                start = perf_counter()
                vector = HEAVY_FEATURES[name](frame.image)
                cost.append((name, *frame_wh, (perf_counter() - start) * 1e3))
                vectors[name, wanted[frame.index]].append(vector)
    return vectors, cost, frame_wh
