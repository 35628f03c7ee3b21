"""Our AP50 against an independent scorer (faster-coco-eval) on the real PETS gt.

Why 1/101 is the right tolerance: both scorers integrate the same monotone
(interpolated) precision/recall step curve p(r); ours sums it exactly, COCO
averages it at the 101 recall points 0, 0.01, ..., 1. For a non-increasing p
the right Riemann sum R over [0.01, 1] and the left one L over [0, 0.99] bracket
the exact area A, and COCO = (p(0) + 100 R) / 101, which gives
COCO - A <= (p(0) - R) / 101 <= 1/101 and A - COCO <= R/101 + p(0)/10100 <= 0.0100.
So any difference beyond 0.0100 is a matching bug, not interpolation.
Against ignored gt COCO measures intersection over the detection's area, we
measure IoU; the ignored-gt test keeps its false boxes clear of ignored boxes so
that the rules agree and the same bound applies.
"""

from __future__ import annotations

import numpy as np
import pytest

from approxrt.detections import Detections
from approxrt.evaluation import ignored, sequence_boxes, sequence_from_xywh
from approxrt.evaluation.ap import FALSE_POSITIVE, evaluate_ap, match_detections
from approxrt.evaluation.coco import coco_scores
from approxrt.evaluation.mot_io import read_mot_gt

INTERPOLATION_BOUND = 1 / 101 + 1 / 10100
FRAMES = 300


def jittered_detections(
    gt: Detections, sigma_px: float, seed: int, avoid: Detections | None = None
) -> Detections:
    """gt boxes moved by Gaussian noise, plus random false boxes (none touching
    a box of ``avoid``); scores loosely follow box quality, as a real detector's do."""
    rng = np.random.default_rng(seed)
    xywh = gt.xywh + rng.normal(0, sigma_px, (len(gt), 4))
    xywh[:, 2:] = np.abs(xywh[:, 2:]) + 1
    error = np.abs(xywh - gt.xywh).sum(1)
    score = np.clip(1 - error / (8 * sigma_px) + rng.normal(0, 0.2, len(gt)), 0.01, 1)
    num_false = len(gt) // 5
    false_xywh = np.column_stack(
        [
            rng.uniform(0, 440, num_false),
            rng.uniform(0, 300, num_false),
            rng.uniform(10, 40, (num_false, 2)),
        ]
    )
    false = sequence_from_xywh(
        rng.choice(gt.frame, num_false),
        false_xywh,
        confidence=rng.uniform(0, 0.6, num_false),
    )
    if avoid is not None:
        false = false[~touches(false, avoid)]
    return sequence_from_xywh(
        np.concatenate([gt.frame, false.frame]),
        np.concatenate([xywh, false.xywh]),
        confidence=np.concatenate([score, false.confidence]),
    )


def touches(boxes: Detections, others: Detections) -> np.ndarray:
    """``(n,) bool``: the box overlaps some box of ``others`` in its frame."""
    same_frame = boxes.frame[:, None] == others.frame[None, :]
    overlap_x = (boxes.xyxy[:, None, 0] < others.xyxy[None, :, 2]) & (
        others.xyxy[None, :, 0] < boxes.xyxy[:, None, 2]
    )
    overlap_y = (boxes.xyxy[:, None, 1] < others.xyxy[None, :, 3]) & (
        others.xyxy[None, :, 1] < boxes.xyxy[:, None, 3]
    )
    return (same_frame & overlap_x & overlap_y).any(1)


@pytest.fixture(scope="module")
def pets_head(pets_gt) -> Detections:
    gt = read_mot_gt(pets_gt)
    return gt[gt.frame <= FRAMES]


@pytest.mark.parametrize(("sigma_px", "seed"), [(1.5, 0), (4.0, 1), (8.0, 2)])
def test_ap50_agrees_with_faster_coco_eval_within_the_interpolation_bound(
    pets_head, sigma_px, seed
):
    gt = pets_head[~ignored(pets_head)]
    det = jittered_detections(gt, sigma_px, seed)
    ours = evaluate_ap(gt, det).per_class[0]
    coco = coco_scores(gt, det)
    assert coco.scorer in {"faster-coco-eval", "pycocotools"}
    assert abs(ours.ap50 - coco.ap50) <= INTERPOLATION_BOUND
    assert abs(ours.ap50 - coco.per_class_ap50[0]) <= INTERPOLATION_BOUND
    assert ours.ap50_raw <= ours.ap50


def test_both_scorers_drop_confident_detections_of_ignored_gt_alike(pets_head):
    not_scored = pets_head[ignored(pets_head)]
    assert len(not_scored) > 100
    det = jittered_detections(pets_head[~ignored(pets_head)], 1.5, 3, avoid=not_scored)
    # Exact copies of the ignored boxes, ranked first: false positives that
    # would cost about a third of the AP if they were counted.
    on_ignored = sequence_boxes(
        not_scored.frame, not_scored.xyxy, np.full(len(not_scored), 0.99)
    )
    det = sequence_boxes(
        np.concatenate([det.frame, on_ignored.frame]),
        np.concatenate([det.xyxy, on_ignored.xyxy]),
        np.concatenate([det.confidence, on_ignored.confidence]),
    )
    status = match_detections(pets_head, det)
    assert (status[-len(not_scored) :] != FALSE_POSITIVE).all()
    ours = evaluate_ap(pets_head, det).per_class[0]
    coco = coco_scores(pets_head, det)
    assert abs(ours.ap50 - coco.ap50) <= INTERPOLATION_BOUND


def test_gt_as_detections_scores_one_in_both_scorers(pets_head):
    det = pets_head[~ignored(pets_head)]
    assert evaluate_ap(pets_head, det).per_class[0].ap50 == 1.0
    assert coco_scores(pets_head, det).ap50 == pytest.approx(1.0)
