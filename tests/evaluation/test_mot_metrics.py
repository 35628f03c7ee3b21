"""MOT metrics through motmetrics: perfect tracks, id switches, ignored gt."""

from __future__ import annotations

import numpy as np
import pytest

from approxrt.detections import Detections
from approxrt.evaluation import ignored, sequence_boxes
from approxrt.evaluation.mot_io import read_mot_gt
from approxrt.evaluation.mot_metrics import mot_scores

FRAMES = 250  # the flag-0 rows lie in frames 147-250


@pytest.fixture(scope="module")
def gt(pets_gt) -> Detections:
    table = read_mot_gt(pets_gt)
    return table[table.frame <= FRAMES]


def test_gt_as_results_scores_perfectly(gt):
    scores = mot_scores(gt, gt[~ignored(gt)])
    assert scores.mota == 1.0
    assert scores.idf1 == 1.0
    assert scores.motp == pytest.approx(1.0)
    assert (scores.id_switches, scores.false_positives, scores.misses) == (0, 0, 0)
    assert scores.num_objects == int((~ignored(gt)).sum())


def test_an_identity_switch_lowers_mota_and_idf1(gt):
    results = gt[~ignored(gt)]
    # The longest track takes a new id halfway through.
    longest = np.bincount(results.tracker_id).argmax()
    frames = results.frame[results.tracker_id == longest]
    halfway = (frames.min() + frames.max()) // 2
    track_id = results.tracker_id.copy()
    track_id[(results.tracker_id == longest) & (results.frame > halfway)] = 999
    switched = sequence_boxes(results.frame, results.xyxy, tracker_id=track_id)
    scores = mot_scores(gt, switched)
    assert scores.id_switches == 1
    assert scores.mota == pytest.approx(1 - 1 / scores.num_objects)
    assert scores.idf1 < 1.0


def test_results_on_ignored_gt_are_dropped_not_counted_as_false_positives(gt):
    assert ignored(gt).any()
    scores = mot_scores(gt, gt)  # includes boxes on the flag-0 rows
    assert scores.false_positives == 0
    assert scores.mota == 1.0


def test_shifted_boxes_lower_motp_and_missing_boxes_count_as_misses(gt):
    results = gt[~ignored(gt)]
    shifted = sequence_boxes(
        results.frame,
        results.xyxy + np.array([2, 0, 2, 0]),
        tracker_id=results.tracker_id,
    )
    assert mot_scores(gt, shifted).motp < 1.0
    half = results[results.frame % 2 == 0]
    scores = mot_scores(gt, half)
    assert scores.misses == len(results) - len(half)
    assert scores.false_positives == 0


def test_untracked_results_get_distinct_identities(gt):
    results = gt[~ignored(gt)]
    untracked = sequence_boxes(results.frame, results.xyxy)  # every id -1
    scores = mot_scores(gt, untracked)
    assert scores.false_positives == 0 and scores.misses == 0
    # Each frame's boxes are new identities: every continuing track switches.
    assert scores.id_switches > 0
    assert scores.idf1 < 0.1
