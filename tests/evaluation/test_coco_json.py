"""COCO json conversion and COCO scores from the independent scorer."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from approxrt.classes import COCO_CATEGORY_IDS, COCO_CLASSES
from approxrt.evaluation import ignored, sequence_boxes
from approxrt.evaluation.coco import (
    coco_scores,
    read_coco_gt,
    read_coco_results,
    to_coco_gt,
    to_coco_results,
    write_coco_results,
)
from approxrt.evaluation.mot_io import read_mot_gt

DOG = COCO_CLASSES.index("dog")


def test_results_use_frame_numbers_as_image_ids_and_coco_category_ids():
    table = sequence_boxes(
        [3, 4], [[10, 20, 40, 60], [0, 0, 5, 5]], [0.91234, 0.5], [0, DOG]
    )
    assert to_coco_results(table) == [
        {
            "image_id": 3,
            "category_id": 1,
            "bbox": [10.0, 20.0, 30.0, 40.0],
            "score": 0.9123,
        },
        {
            "image_id": 4,
            "category_id": COCO_CATEGORY_IDS[DOG],
            "bbox": [0.0, 0.0, 5.0, 5.0],
            "score": 0.5,
        },
    ]


def test_ignored_gt_becomes_crowd_and_every_frame_is_an_image(pets_gt):
    gt = read_mot_gt(pets_gt)
    coco = to_coco_gt(gt, frame_numbers=[800])
    ids = [image["id"] for image in coco["images"]]
    assert ids == [*range(1, 796), 800]
    crowd = [a["iscrowd"] == 1 and a["ignore"] == 1 for a in coco["annotations"]]
    assert sum(crowd) == int(ignored(gt).sum())
    assert len(coco["annotations"]) == len(gt)


def test_coco_files_round_trip(tmp_path, pets_gt):
    gt = read_mot_gt(pets_gt)
    (tmp_path / "gt.json").write_text(json.dumps(to_coco_gt(gt)))
    back = read_coco_gt(tmp_path / "gt.json")
    assert ignored(back).tolist() == ignored(gt).tolist()
    assert back.tracker_id.tolist() == gt.tracker_id.tolist()
    np.testing.assert_allclose(back.xyxy, gt.xyxy, atol=0.011)

    results = sequence_boxes(gt.frame, gt.xyxy, np.linspace(0, 1, len(gt)))
    write_coco_results(tmp_path / "results.json", results)
    again = read_coco_results(tmp_path / "results.json")
    assert again.frame.tolist() == gt.frame.tolist()
    np.testing.assert_allclose(again.confidence, results.confidence, atol=1e-4)


def test_coco_scores_are_perfect_for_gt_and_zero_for_nothing(pets_gt):
    gt = read_mot_gt(pets_gt)
    gt = gt[gt.frame <= 50]
    perfect = coco_scores(gt, gt[~ignored(gt)])
    assert (perfect.map, perfect.ap50, perfect.ap75) == pytest.approx((1, 1, 1))
    assert perfect.per_class_ap50 == pytest.approx({0: 1.0})
    nothing = coco_scores(gt, sequence_boxes([], []))
    assert (nothing.map, nothing.ap50) == (0.0, 0.0)


def test_coco_scores_only_count_the_requested_classes(pets_gt):
    gt = read_mot_gt(pets_gt)
    gt = gt[gt.frame <= 50]
    dogs = sequence_boxes(gt.frame, gt.xyxy, class_id=np.full(len(gt), DOG))
    scores = coco_scores(gt, dogs, classes=[DOG])
    assert math.isnan(scores.ap50)  # no dog in the ground truth
    assert coco_scores(gt, dogs).ap50 == 0.0  # persons missed, dogs not scored


def test_reading_malformed_coco_files_names_the_problem(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_coco_results(tmp_path / "bad.json")
    (tmp_path / "dict.json").write_text("{}")
    with pytest.raises(ValueError, match="expected a JSON list"):
        read_coco_results(tmp_path / "dict.json")
    (tmp_path / "cat.json").write_text(
        '[{"image_id": 1, "category_id": 12, "bbox": [0, 0, 1, 1], "score": 1}]'
    )
    with pytest.raises(ValueError, match="not COCO ids"):
        read_coco_results(tmp_path / "cat.json")
    (tmp_path / "nobox.json").write_text('[{"image_id": 1, "category_id": 1}]')
    with pytest.raises(ValueError, match="lacks 'bbox'"):
        read_coco_results(tmp_path / "nobox.json")


def test_pycocotools_takes_over_with_the_same_numbers_without_faster_coco_eval(
    pets_gt, monkeypatch
):
    gt = read_mot_gt(pets_gt)
    gt = gt[gt.frame <= 50]
    rng = np.random.default_rng(0)
    det = sequence_boxes(
        gt.frame, gt.xyxy + rng.normal(0, 3, gt.xyxy.shape), rng.random(len(gt))
    )
    fast = coco_scores(gt, det)
    monkeypatch.setitem(sys.modules, "faster_coco_eval", None)  # import fails
    slow = coco_scores(gt, det)
    assert (fast.scorer, slow.scorer) == ("faster-coco-eval", "pycocotools")
    assert (slow.map, slow.ap50, slow.ap75) == pytest.approx(
        (fast.map, fast.ap50, fast.ap75), abs=1e-9
    )
