"""`evaluate` on output folders: which files it reads, what it reports, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from approxrt.classes import COCO_CLASSES
from approxrt.detections import Detections
from approxrt.evaluation import (
    evaluate,
    ignored,
    read_mot_gt,
    sequence_boxes,
    to_coco_gt,
    write_coco_results,
    write_mot_results,
)

FRAMES = 250
CAR = COCO_CLASSES.index("car")


@pytest.fixture(scope="module")
def sequence(pets_gt, tmp_path_factory):
    """A MOT sequence folder holding the first frames of the PETS gt."""
    folder = tmp_path_factory.mktemp("seq")
    (folder / "gt").mkdir()
    lines = pets_gt.read_text().splitlines()
    head = [line for line in lines if int(line.split(",")[0]) <= FRAMES]
    (folder / "gt" / "gt.txt").write_text("\n".join(head) + "\n")
    return folder


@pytest.fixture(scope="module")
def gt(sequence) -> Detections:
    return read_mot_gt(sequence / "gt" / "gt.txt")


def test_gt_as_results_scores_perfectly_everywhere(sequence, gt, tmp_path):
    write_mot_results(tmp_path / "results.txt", gt[~ignored(gt)])
    report = evaluate(sequence, tmp_path)
    assert list(report.per_class) == ["person"]
    assert report.mean_ap50 == report.mean_ap50_raw == 1.0
    assert report.coco.ap50 == pytest.approx(1.0)
    assert (report.mot.mota, report.mot.idf1) == (1.0, 1.0)
    assert report.ap_source.endswith("results.txt")
    assert report.num_frames == FRAMES


def test_the_coco_json_is_preferred_for_ap_and_results_txt_feeds_mot(
    gt, sequence, tmp_path
):
    scored = gt[~ignored(gt)]
    write_mot_results(tmp_path / "results.txt", scored)
    # The COCO file adds confident cars on every person: not scored (no car gt).
    cars = sequence_boxes(scored.frame, scored.xyxy, class_id=np.full(len(scored), CAR))
    both = sequence_boxes(
        np.concatenate([scored.frame, cars.frame]),
        np.concatenate([scored.xyxy, cars.xyxy]),
        np.concatenate([scored.confidence * 0.5, cars.confidence]),
        np.concatenate([scored.class_id, cars.class_id]),
    )
    write_coco_results(tmp_path / "results.coco.json", both)
    report = evaluate(sequence / "gt" / "gt.txt", tmp_path)
    assert report.ap_source.endswith("results.coco.json")
    assert report.per_class["person"].num_detections == len(scored)
    assert report.mean_ap50 == 1.0
    assert report.mot.mota == 1.0


def test_a_coco_gt_json_is_accepted_and_mot_metrics_need_track_ids(gt, tmp_path):
    coco_gt = to_coco_gt(gt)
    for annotation in coco_gt["annotations"]:
        del annotation["track_id"]
    (tmp_path / "gt.json").write_text(json.dumps(coco_gt))
    results = tmp_path / "run"
    results.mkdir()
    write_coco_results(results / "results.coco.json", gt[~ignored(gt)])
    report = evaluate(tmp_path / "gt.json", results)
    assert report.mean_ap50 == 1.0
    assert report.mot is None


def test_report_serialises_to_json_and_formats_as_a_table(sequence, gt, tmp_path):
    half = gt[(~ignored(gt)) & (gt.frame % 2 == 0)]
    write_mot_results(tmp_path / "results.txt", half)
    report = evaluate(sequence, tmp_path, classes="person,car")
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["per_class"]["car"]["ap50"] is None  # no car gt: NaN -> null
    assert data["per_class"]["person"]["ap50"] == pytest.approx(
        len(half) / np.count_nonzero(~ignored(gt))
    )
    assert data["mot"]["misses"] == np.count_nonzero(~ignored(gt)) - len(half)
    table = report.format()
    for word in ("person", "AP50", "COCO", "MOTA", "IDF1"):
        assert word in table


def test_missing_inputs_raise_clear_errors(sequence, tmp_path):
    with pytest.raises(ValueError, match=r"holds neither results\.txt nor"):
        evaluate(sequence, tmp_path)
    with pytest.raises(ValueError, match="is not a folder"):
        evaluate(sequence, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="does not exist"):
        evaluate(tmp_path / "gt.txt", tmp_path)
    with pytest.raises(ValueError, match=r"holds neither gt/gt\.txt nor gt\.txt"):
        evaluate(tmp_path, tmp_path)
    with pytest.raises(ValueError, match="unknown COCO class 'persn'"):
        evaluate(sequence, tmp_path, classes="persn")
