"""Person AP50 of one detector setting over a whole labelled video held in memory
(the GPU benchmark's accuracy check: each route, each size, same frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from approxrt.branch import DetectorKnobs
from approxrt.evaluation.ap import evaluate_ap
from approxrt.evaluation.boxes import sequence_boxes
from approxrt.evaluation.mot_io import read_mot_gt

PERSON = 0


def pets_ap50(
    detector, frames: list[np.ndarray], knobs: DetectorKnobs, gt_path: Path
) -> float:
    """Person AP at IoU 0.5 of ``detector`` run on every frame (frame i is the
    gt's frame i + 1), scored as ``approxrt eval`` scores a ``--classes person``
    run."""
    numbers, boxes, scores = [], [], []
    for index, frame in enumerate(
        tqdm(frames, desc=f"AP {detector.name}", leave=False)
    ):
        found = detector.detect(frame, knobs)
        found = found[found.class_id == PERSON]
        numbers.append(np.full(len(found), index + 1))
        boxes.append(found.xyxy)
        scores.append(found.confidence)
    results = sequence_boxes(
        np.concatenate(numbers),
        np.concatenate(boxes),
        confidence=np.concatenate(scores),
    )
    return evaluate_ap(read_mot_gt(gt_path), results, [PERSON]).per_class[PERSON].ap50
