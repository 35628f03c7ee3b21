"""AP50 on small hand-made sequences whose answers are worked out in each test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from approxrt.detections import Detections
from approxrt.evaluation import sequence_boxes
from approxrt.evaluation.ap import (
    FALSE_POSITIVE,
    IGNORED,
    TRUE_POSITIVE,
    average_precision,
    evaluate_ap,
    match_detections,
)

A = [0, 0, 10, 20]
B = [50, 50, 70, 90]
C = [100, 0, 120, 40]


def table(rows, confidence=None, class_id=None, ignore=None) -> Detections:
    """``rows`` of ``(frame, xyxy)``."""
    frames = [frame for frame, _ in rows]
    xyxy = np.array([box for _, box in rows], np.float64).reshape(-1, 4)
    return sequence_boxes(frames, xyxy, confidence, class_id, ignore=ignore)


def test_perfect_detections_score_one_in_both_variants():
    gt = table([(1, A), (1, B), (2, C)])
    det = table([(1, A), (1, B), (2, C)], confidence=[0.9, 0.8, 0.7])
    result = evaluate_ap(gt, det).per_class[0]
    assert result.ap50 == 1.0
    assert result.ap50_raw == 1.0
    assert result.num_true_positives == 3


def test_a_false_positive_ranked_first_lowers_ap_as_computed_by_hand():
    gt = table([(1, A), (1, B)])
    det = table([(1, C), (1, A), (1, B)], confidence=[0.9, 0.8, 0.7])
    # Ranks: FP, TP, TP -> precision 0, 1/2, 2/3 at recall 0, 1/2, 1.
    # Raw: mean precision at the two recall steps = (1/2 + 2/3) / 2 = 7/12.
    # Interpolated: both steps take the best precision at or below them, 2/3.
    result = evaluate_ap(gt, det).per_class[0]
    assert result.ap50_raw == pytest.approx(7 / 12)
    assert result.ap50 == pytest.approx(2 / 3)


def test_a_duplicate_detection_is_a_false_positive():
    gt = table([(1, A), (1, B)])
    det = table([(1, A), (1, A), (1, B)], confidence=[0.9, 0.8, 0.7])
    # TP, FP (A is already matched), TP -> precision 1, 1/2, 2/3.
    # Both variants: (1 + 2/3) / 2 = 5/6.
    status = match_detections(gt, det)
    assert status.tolist() == [TRUE_POSITIVE, FALSE_POSITIVE, TRUE_POSITIVE]
    result = evaluate_ap(gt, det).per_class[0]
    assert result.ap50 == pytest.approx(5 / 6)
    assert result.ap50_raw == pytest.approx(5 / 6)


def test_a_detection_whose_best_gt_is_taken_falls_back_to_the_next_unmatched_one():
    left, right = [0, 0, 10, 10], [2, 0, 12, 10]
    gt = table([(1, left), (1, right)])
    # First: IoU 0.74 with left, 0.90 with right -> takes right.
    # Second: IoU 0.69 with left, 0.96 with right (taken) -> takes left.
    det = table(
        [(1, [1.5, 0, 11.5, 10]), (1, [1.8, 0, 11.8, 10])], confidence=[0.9, 0.8]
    )
    assert match_detections(gt, det).tolist() == [TRUE_POSITIVE, TRUE_POSITIVE]
    assert evaluate_ap(gt, det).per_class[0].ap50 == 1.0


def test_a_detection_on_an_ignored_gt_is_neither_true_nor_false_positive():
    gt = table([(1, A), (1, B)], ignore=[False, True])
    det = table([(1, B), (1, A)], confidence=[0.95, 0.9])
    # Were the B detection a FP ranked first, AP would be 1/2; it is dropped.
    assert match_detections(gt, det).tolist() == [IGNORED, TRUE_POSITIVE]
    result = evaluate_ap(gt, det).per_class[0]
    assert (result.ap50, result.num_gt, result.num_detections) == (1.0, 1, 1)


def test_an_unmatched_scored_gt_wins_over_an_overlapping_ignored_one():
    gt = table([(1, A), (1, A)], ignore=[True, False])
    det = table([(1, A)], confidence=[0.9])
    assert match_detections(gt, det).tolist() == [TRUE_POSITIVE]


def test_boxes_only_match_within_their_frame_and_class():
    gt = table([(1, A), (2, B)], class_id=[0, 2])
    det = table([(2, A), (2, B)], confidence=[0.9, 0.8], class_id=[0, 0])
    assert match_detections(gt, det).tolist() == [FALSE_POSITIVE, FALSE_POSITIVE]


def test_a_class_without_detections_scores_zero_and_one_without_gt_is_left_out():
    gt = table([(1, A), (1, B)], class_id=[0, 2])
    det = table([(1, A), (1, C)], confidence=[0.9, 0.8], class_id=[0, 16])
    result = evaluate_ap(gt, det, classes=[0, 2, 16])
    assert result.per_class[0].ap50 == 1.0
    assert result.per_class[2].ap50 == 0.0
    assert math.isnan(result.per_class[16].ap50)
    assert result.mean_ap50 == pytest.approx(0.5)


def test_default_classes_are_those_with_scored_gt():
    gt = table([(1, A), (1, B)], class_id=[0, 2], ignore=[False, True])
    det = table([(1, C)], confidence=[0.9], class_id=[16])
    assert list(evaluate_ap(gt, det).per_class) == [0]


def test_no_detections_at_all_score_zero():
    gt = table([(1, A)])
    assert evaluate_ap(gt, sequence_boxes([], [])).per_class[0].ap50 == 0.0


@pytest.mark.parametrize(
    ("is_tp", "num_gt", "interpolated", "raw"),
    [
        # precision 1, 1/2, 1/3, 1/2, 3/5; the envelope lifts ranks 4 and 5 to 3/5.
        ([1, 0, 0, 1, 1], 3, (1 + 3 / 5 + 3 / 5) / 3, (1 + 1 / 2 + 3 / 5) / 3),
        # One of two gt boxes never found: recall stops at 1/2.
        ([1, 0], 2, 1 / 2, 1 / 2),
        ([], 4, 0.0, 0.0),
    ],
)
def test_average_precision_of_ranked_lists(is_tp, num_gt, interpolated, raw):
    ap, ap_raw = average_precision(np.array(is_tp, bool), num_gt)
    assert ap == pytest.approx(interpolated)
    assert ap_raw == pytest.approx(raw)


def test_average_precision_is_undefined_without_gt():
    assert all(math.isnan(v) for v in average_precision(np.array([True]), 0))
