"""GPU benchmark part `frcnn_detector` (see gpu_benchmark.py): Faster R-CNN's whole
detection frame with its frame-to-FPN part in CUDA graphs (`frcnn_graph`) against
the same detector run eagerly, per family and input size.

Random weights (the GPU machine cannot download torchvision's). Agreement is
checked with a 0.001 score threshold, so that untrained heads keep many boxes to
compare; the timing uses the default post-processing, as a deployed detector does.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors.base import PostprocessConfig
from approxrt.branches.detectors.gpu_timing import median_ms
from approxrt.branches.detectors.torchvision_frcnn import (
    FrcnnMobileNetV3,
    FrcnnResNet50,
)

SIZES = (224, 320, 448, 576)
PROPOSALS = 100
TIMED_CALLS = 150
AGREEMENT_FRAMES = 20
_LOW = PostprocessConfig(score_threshold=0.001)


def _pair(family, config: PostprocessConfig):
    """The family graphed and eager over the same random weights."""
    graphed = family("random", config, device="cuda")
    eager = family("random", config, device="cuda", graphs=False)
    eager.model.load_state_dict(graphed.model.state_dict())
    return graphed, eager


def _agreement(graphed, eager, frames, knobs: DetectorKnobs) -> dict:
    """Per frame: same box count, and the largest box and score differences."""
    mismatches, boxes, box_diff, score_diff = 0, 0, 0.0, 0.0
    for image in frames:
        found, expected = graphed.detect(image, knobs), eager.detect(image, knobs)
        if len(found) != len(expected):
            mismatches += 1
            continue
        boxes += len(found)
        box_diff = max(
            box_diff, float(np.abs(found.xyxy - expected.xyxy).max(initial=0))
        )
        score_diff = max(
            score_diff,
            float(np.abs(found.confidence - expected.confidence).max(initial=0)),
        )
    return {
        "frames": len(frames),
        "count_mismatches": mismatches,
        "boxes_compared": boxes,
        "max_abs_box_diff_px": box_diff,
        "max_abs_score_diff": score_diff,
    }


def _frame_ms(detector, frames, knobs: DetectorKnobs) -> float:
    """Median whole detection frame (host frame in, host detections out)."""
    cycle = itertools.cycle(frames)
    return median_ms(lambda: detector.detect(next(cycle), knobs), TIMED_CALLS, 10)


def _first_call_ms(detector, image, knobs: DetectorKnobs) -> float:
    start = time.perf_counter()
    detector.detect(image, knobs)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3


def _graphed_pieces_ms(detector, image, knobs: DetectorKnobs) -> dict[str, float]:
    """Medians of the graphed frame's pieces on one frame: what the graph leaves.

    The box head's MLP and predictor are what padding the proposals to the knob's
    count would make static (RoI pooling still sorts boxes into levels).
    """
    prepared = detector.preprocess(image, knobs)
    stem, images, model = prepared.extra["stem"], prepared.inputs, detector.model
    heads, sizes = model.roi_heads, prepared.inputs.image_sizes
    with torch.inference_mode():
        raw = detector.infer(prepared)
        features = stem.features
        proposals = raw["proposals"]
        pooled = heads.box_roi_pool(features, proposals, sizes)
        pieces = {
            "copy in (pinned)": lambda: stem.load(image),
            "graph replay": stem.run,
            "rpn": lambda: model.rpn(images, features),
            "roi pool": lambda: heads.box_roi_pool(features, proposals, sizes),
            "box mlp + predictor": lambda: heads.box_predictor(heads.box_head(pooled)),
            "postprocess (NMS, copy out)": lambda: detector.postprocess(raw, prepared),
        }
        return {name: median_ms(call, 100, 10) for name, call in pieces.items()}


def frcnn_detector(frames: list[np.ndarray]) -> list[dict]:
    """Per family and size: graphed vs eager frame time and their agreement."""
    rows = []
    for family in (FrcnnMobileNetV3, FrcnnResNet50):
        graphed, eager = _pair(family, PostprocessConfig())
        low_graphed, low_eager = _pair(family, _LOW)
        for size in SIZES:
            knobs = DetectorKnobs(size, PROPOSALS)
            row = {
                "detector": family.name,
                "size": size,
                "proposals": PROPOSALS,
                "first_graphed_call_ms (capture)": _first_call_ms(
                    graphed, frames[0], knobs
                ),
                "eager_frame_ms": _frame_ms(eager, frames, knobs),
                "graphed_frame_ms": _frame_ms(graphed, frames, knobs),
                "detections_per_frame": float(
                    np.mean([len(graphed.detect(f, knobs)) for f in frames[:20]])
                ),
                "agreement_score_0.001": _agreement(
                    low_graphed, low_eager, frames[:AGREEMENT_FRAMES], knobs
                ),
            }
            row["speedup"] = row["eager_frame_ms"] / row["graphed_frame_ms"]
            row["graphed_pieces_ms"] = _graphed_pieces_ms(graphed, frames[0], knobs)
            rows.append(row)
            print("frcnn_detector", row)
    return rows
