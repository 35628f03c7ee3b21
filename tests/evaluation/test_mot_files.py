"""MOTChallenge text files: the real PETS gt, results round trips, bad lines."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_detections

from approxrt.classes import COCO_CLASSES
from approxrt.evaluation import ignored, sequence_from_xywh
from approxrt.evaluation.mot_io import (
    format_mot_lines,
    read_mot_gt,
    read_mot_results,
    write_mot_results,
)


def test_pets_gt_reads_with_its_documented_counts(pets_gt):
    gt = read_mot_gt(pets_gt)
    # ../shared/data/README.md: 4,650 boxes, 19 identities, 174 flag-0 rows, 795 frames.
    assert len(gt) == 4650
    assert len(np.unique(gt.tracker_id)) == 19
    assert int(ignored(gt).sum()) == 174
    assert (gt.frame.min(), gt.frame.max()) == (1, 795)
    assert (gt.class_id == COCO_CLASSES.index("person")).all()


def test_gt_boxes_convert_from_xywh_to_xyxy(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("3,7,10.5,20,30,40.25,1,-1,-1,-1\n4,7,0,0,5,5,0,-1,-1,-1\n")
    gt = read_mot_gt(path)
    assert gt.frame.tolist() == [3, 4]
    assert gt.xyxy[0].tolist() == [10.5, 20.0, 40.5, 60.25]
    assert ignored(gt).tolist() == [False, True]


def test_results_round_trip_through_a_file(tmp_path):
    rng = np.random.default_rng(0)
    xywh = np.round(rng.uniform(1, 300, (12, 4)), 2)
    table = sequence_from_xywh(
        np.repeat([1, 2, 5], 4),
        xywh,
        confidence=np.round(rng.random(12), 4),
        tracker_id=np.arange(12) - 1,
    )
    write_mot_results(tmp_path / "results.txt", table)
    back = read_mot_results(tmp_path / "results.txt")
    assert back.frame.tolist() == table.frame.tolist()
    assert back.tracker_id.tolist() == table.tracker_id.tolist()
    # Detections keep float32: about 3e-5 px at these coordinates, far below
    # the files' 0.01 px.
    np.testing.assert_allclose(back.xywh, xywh, atol=1e-4)
    np.testing.assert_allclose(back.confidence, table.confidence, atol=1e-7)


def test_result_lines_use_two_decimals_for_boxes_and_four_for_scores():
    detections = make_detections(
        [[1, 2, 11.256, 32]], confidence=np.array([0.5]), tracker_id=np.array([4])
    )
    line = format_mot_lines(7, detections)
    assert line == "7,4,1.00,2.00,10.26,30.00,0.5000,-1,-1,-1\n"


def test_mot16_classes_map_to_coco_and_distractors_are_ignored(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text(
        "1,1,0,0,10,10,1,1,0.9\n"  # pedestrian, scored
        "1,2,0,0,10,10,0,1,0.9\n"  # pedestrian, not considered
        "1,3,0,0,10,10,1,7,1.0\n"  # static person: always ignored
        "1,4,0,0,10,10,0,3,1.0\n"  # car, not considered
        "1,5,0,0,10,10,1,9,0.2\n"
    )  # occluder: dropped
    gt = read_mot_gt(path, gt_format="mot17")
    assert gt.tracker_id.tolist() == [1, 2, 3, 4]
    assert [COCO_CLASSES[c] for c in gt.class_id] == ["person"] * 3 + ["car"]
    assert ignored(gt).tolist() == [False, True, True, True]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("1,1,0,0,10", "at least 7"),
        ("1,1,0,zero,10,10,1", "non-numeric"),
        ("0,1,0,0,10,10,1", "1-based"),
        ("2.5,1,0,0,10,10,1", "integer"),
        ("1,1,0,0,-10,10,1", "negative"),
        ("1,1,0,0,nan,10,1", "non-finite"),
    ],
)
def test_a_bad_line_raises_naming_file_line_and_problem(tmp_path, line, problem):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,0,0,10,10,1\n\n" + line + "\n")
    with pytest.raises(ValueError, match=problem) as error:
        read_mot_gt(path)
    assert f"{path}:3:" in str(error.value)


def test_an_unknown_mot16_class_is_an_error(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,0,0,10,10,1,42,1\n")
    with pytest.raises(ValueError, match=r"gt.txt:1: unknown MOT class 42"):
        read_mot_gt(path, gt_format="mot16")


def test_unknown_gt_format_and_missing_file_are_errors(tmp_path):
    with pytest.raises(ValueError, match="gt_format"):
        read_mot_gt(tmp_path / "gt.txt", gt_format="kitti")
    with pytest.raises(ValueError, match="no such file"):
        read_mot_gt(tmp_path / "gt.txt")
