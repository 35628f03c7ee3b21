import numpy as np
import pytest
from conftest import make_detections

from approxrt.detections import Detections, box_iou


def test_columns_take_the_documented_dtypes_and_untracked_ids():
    d = make_detections([[0, 0, 10, 10], [5, 5, 20, 30]])
    assert d.xyxy.dtype == np.float32 and d.xyxy.shape == (2, 4)
    assert d.confidence.dtype == np.float32
    assert d.class_id.dtype == np.int64
    assert d.tracker_id.tolist() == [-1, -1]


def test_a_column_of_the_wrong_length_names_the_field():
    with pytest.raises(ValueError, match=r"Detections.confidence: expected length 2"):
        Detections(np.zeros((2, 4)), np.zeros(3), np.zeros(2))


def test_boxes_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"Detections.xyxy: expected shape \(n, 4\)"):
        Detections(np.zeros((2, 3)), np.zeros(2), np.zeros(2))


def test_mask_selection_returns_a_new_object_with_every_column():
    d = make_detections(
        [[0, 0, 10, 10], [5, 5, 20, 30], [1, 1, 2, 2]],
        confidence=[0.1, 0.5, 0.9],
        tracker_id=[7, 8, 9],
    )
    d.data["visibility"] = np.array([1.0, 0.5, 0.2])
    kept = d[d.confidence > 0.3]
    assert kept.tracker_id.tolist() == [8, 9]
    assert kept.data["visibility"].tolist() == [0.5, 0.2]
    assert len(d) == 3


def test_merge_concatenates_and_empty_has_no_boxes():
    a = make_detections([[0, 0, 1, 1]])
    b = make_detections([[2, 2, 3, 3], [4, 4, 5, 5]])
    assert len(Detections.merge([a, Detections.empty(), b])) == 3
    assert len(Detections.merge([])) == 0
    assert len(Detections.empty()) == 0


def test_clipped_keeps_boxes_inside_the_frame():
    d = make_detections([[-5, -5, 50, 700]]).clipped(width=40, height=30)
    assert d.xyxy.tolist() == [[0, 0, 40, 30]]


def test_box_iou_of_known_boxes():
    iou = box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert iou[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0])


def test_stack_numbers_each_box_with_its_frame_for_scoring_a_sequence():
    first = make_detections([[0, 0, 10, 10], [5, 5, 20, 30]], tracker_id=[3, 4])
    third = make_detections([[1, 2, 4, 8]])
    third.data["visibility"] = np.ones(1)  # other data columns are not kept
    sequence = Detections.stack([(1, first), (2, Detections.empty()), (3, third)])
    assert sequence.frame.tolist() == [1, 1, 3]
    assert sequence.tracker_id.tolist() == [3, 4, -1]
    assert list(sequence.data) == ["frame"]
    assert sequence[sequence.frame == 3].xywh.tolist() == [[1, 2, 3, 6]]
    nothing = Detections.stack([(1, Detections.empty())])
    assert len(nothing) == 0 and nothing.frame.dtype == np.int64


def test_frame_numbers_are_refused_for_boxes_of_one_frame():
    with pytest.raises(ValueError, match="carry no frame numbers"):
        _ = make_detections([[0, 0, 1, 1]]).frame
