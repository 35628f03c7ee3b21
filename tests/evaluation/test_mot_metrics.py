"""MOT metrics through motmetrics: perfect tracks, id switches, ignored gt."""

from __future__ import annotations

import numpy as np
import pytest

from approxrt.evaluation.mot_io import BoxTable, read_mot_gt
from approxrt.evaluation.mot_metrics import mot_scores

FRAMES = 250  # the flag-0 rows lie in frames 147-250


@pytest.fixture(scope="module")
def gt(pets_gt) -> BoxTable:
    table = read_mot_gt(pets_gt)
    return table[table.frame <= FRAMES]


def test_gt_as_results_scores_perfectly(gt):
    scores = mot_scores(gt, gt[~gt.ignore])
    assert scores.mota == 1.0
    assert scores.idf1 == 1.0
    assert scores.motp == pytest.approx(1.0)
    assert (scores.id_switches, scores.false_positives, scores.misses) == (0, 0, 0)
    assert scores.num_objects == int((~gt.ignore).sum())


def test_an_identity_switch_lowers_mota_and_idf1(gt):
    results = gt[~gt.ignore]
    # The longest track takes a new id halfway through.
    longest = np.bincount(results.track_id).argmax()
    frames = results.frame[results.track_id == longest]
    halfway = (frames.min() + frames.max()) // 2
    track_id = results.track_id.copy()
    track_id[(results.track_id == longest) & (results.frame > halfway)] = 999
    switched = BoxTable(results.frame, results.xyxy, track_id=track_id)
    scores = mot_scores(gt, switched)
    assert scores.id_switches == 1
    assert scores.mota == pytest.approx(1 - 1 / scores.num_objects)
    assert scores.idf1 < 1.0


def test_results_on_ignored_gt_are_dropped_not_counted_as_false_positives(gt):
    assert gt.ignore.any()
    scores = mot_scores(gt, gt)  # includes boxes on the flag-0 rows
    assert scores.false_positives == 0
    assert scores.mota == 1.0


def test_shifted_boxes_lower_motp_and_missing_boxes_count_as_misses(gt):
    results = gt[~gt.ignore]
    shifted = BoxTable(
        results.frame, results.xyxy + np.array([2, 0, 2, 0]), track_id=results.track_id
    )
    assert mot_scores(gt, shifted).motp < 1.0
    half = results[results.frame % 2 == 0]
    scores = mot_scores(gt, half)
    assert scores.misses == len(results) - len(half)
    assert scores.false_positives == 0


def test_untracked_results_get_distinct_identities(gt):
    results = gt[~gt.ignore]
    untracked = BoxTable(results.frame, results.xyxy)  # every id -1
    scores = mot_scores(gt, untracked)
    assert scores.false_positives == 0 and scores.misses == 0
    # Each frame's boxes are new identities: every continuing track switches.
    assert scores.id_switches > 0
    assert scores.idf1 < 0.1
