"""Track ids across groups of frames, on real PETS09-S2L1 frames and ground truth."""

from __future__ import annotations

from contextlib import nullcontext as does_not_raise

import cv2
import numpy as np
import pytest
from conftest import make_detections

from approxrt.branches.trackers.association import TrackIdAssigner
from approxrt.branches.trackers.registry import make_tracker
from approxrt.detections import Detections
from approxrt.frame import Frame

SAMPLING_INTERVAL = 8
# GoFs starting at these frames (1-based) see persons 9, 11, 12, 13, 15 and 19
# walking apart: every tracker kind keeps each of them on its truth box.
STEADY_GOF_STARTS = (74, 82, 90)
# Persons 9, 15 and 19 are there from frame 1; 11 enters at frame 17, 12 at 22.
ENTRY_GOF_STARTS = (14, 22)


@pytest.fixture(scope="module")
def pets_frames(pets_video) -> list[np.ndarray]:
    """Frames 1..100; ``frames[f - 1]`` is GT frame f."""
    capture = cv2.VideoCapture(str(pets_video))
    frames = [capture.read()[1] for _ in range(100)]
    capture.release()
    assert all(frame is not None for frame in frames)
    return frames


@pytest.fixture(scope="module")
def detections_of(pets_gt):
    """``detections_of(f)``: GT boxes of frame f as untracked detections in a
    shuffled order, and the GT id of each row (to check against)."""
    rows = np.loadtxt(pets_gt, delimiter=",", ndmin=2)
    rng = np.random.default_rng(0)

    def detections(frame_number: int) -> tuple[Detections, np.ndarray]:
        of_frame = rows[rows[:, 0] == frame_number]
        of_frame = of_frame[rng.permutation(len(of_frame))]
        xyxy = of_frame[:, 2:6].copy()
        xyxy[:, 2:] += xyxy[:, :2]
        return make_detections(xyxy), of_frame[:, 1].astype(np.int64)

    return detections


def run_gofs(frames, detections_of, kind: str, starts: tuple[int, ...]):
    """Detect (GT) + associate at each GoF start, track in between.

    Returns, per GoF, ``{gt_id: assigned track id}`` at its detection frame.
    """
    assigner = TrackIdAssigner(minimum_iou_threshold=0.3)
    tracker = make_tracker(kind, downsample=2)
    previous = Detections.empty()
    ids_per_gof = []
    for start in starts:
        detections, gt_ids = detections_of(start)
        assigned = assigner.assign(detections, previous)
        ids_per_gof.append(
            dict(zip(gt_ids.tolist(), assigned.tracker_id.tolist(), strict=True))
        )
        previous = tracker.update(assigned, Frame(frames[start - 1], start - 1, 0.0))
        for number in range(start + 1, start + SAMPLING_INTERVAL):
            previous = tracker.update(None, Frame(frames[number - 1], number - 1, 0.0))
    return ids_per_gof


@pytest.mark.parametrize("kind", ["kcf", "medianflow", "flow"])
def test_the_same_person_keeps_the_same_id_across_gofs(
    kind, pets_frames, detections_of
):
    gofs = run_gofs(pets_frames, detections_of, kind, STEADY_GOF_STARTS)
    assert gofs[0] == gofs[1] == gofs[2]
    assert sorted(gofs[0]) == [9, 11, 12, 13, 15, 19]
    assert len(set(gofs[0].values())) == 6


def test_a_person_who_enters_gets_a_new_id(pets_frames, detections_of):
    first, second = run_gofs(pets_frames, detections_of, "medianflow", ENTRY_GOF_STARTS)
    assert 11 not in first and 12 not in first
    new_ids = {second[11], second[12]}
    assert len(new_ids) == 2
    assert new_ids.isdisjoint(first.values())


def test_different_classes_never_match():
    previous = make_detections([[10, 10, 50, 90]], class_id=[0], tracker_id=[7])
    same_box_other_class = make_detections([[10, 10, 50, 90]], class_id=[2])
    assigned = TrackIdAssigner().assign(same_box_other_class, previous)
    assert assigned.tracker_id[0] != 7
    same_class = make_detections([[10, 10, 50, 90]], class_id=[0])
    assert TrackIdAssigner().assign(same_class, previous).tracker_id[0] == 7


def test_two_assigners_count_ids_independently():
    three = make_detections([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]])
    first, second = TrackIdAssigner(), TrackIdAssigner()
    a = first.assign(three, Detections.empty()).tracker_id
    b = second.assign(three, Detections.empty()).tracker_id
    np.testing.assert_array_equal(a, b)
    again = first.assign(three, Detections.empty()).tracker_id
    assert set(again).isdisjoint(a)


@pytest.mark.parametrize(
    ("shift_px", "keeps_id"),
    # Boxes 40 px wide: a 10 px shift gives IoU 0.6, a 25 px shift 0.23.
    [(10, True), (25, False)],
)
def test_a_match_needs_the_minimum_iou(shift_px, keeps_id):
    previous = make_detections([[100, 100, 140, 200]], tracker_id=[5])
    moved = make_detections([[100 + shift_px, 100, 140 + shift_px, 200]])
    assigned = TrackIdAssigner(minimum_iou_threshold=0.3).assign(moved, previous)
    assert (assigned.tracker_id[0] == 5) == keeps_id


def test_each_previous_id_goes_to_at_most_one_detection_the_best_overlapping():
    previous = make_detections([[100, 100, 140, 200]], tracker_id=[5])
    two = make_detections([[110, 100, 150, 200], [102, 100, 142, 200]])
    assigned = TrackIdAssigner().assign(two, previous)
    assert assigned.tracker_id[1] == 5
    assert assigned.tracker_id[0] not in (5, -1)


def test_fresh_ids_never_reuse_an_id_still_in_use():
    previous = make_detections(
        [[0, 0, 10, 10], [100, 100, 110, 110]], tracker_id=[1, 42]
    )
    far_away = make_detections([[300, 300, 320, 340], [200, 0, 220, 40]])
    assigned = TrackIdAssigner().assign(far_away, previous)
    assert set(assigned.tracker_id.tolist()).isdisjoint({1, 42, -1})


def test_untracked_previous_boxes_lend_no_id():
    previous = make_detections([[100, 100, 140, 200]])
    assigned = TrackIdAssigner().assign(
        make_detections([[100, 100, 140, 200]]), previous
    )
    assert assigned.tracker_id[0] >= 1


def test_empty_detections_stay_empty():
    assigned = TrackIdAssigner().assign(
        Detections.empty(), make_detections([[0, 0, 5, 5]], tracker_id=[3])
    )
    assert len(assigned) == 0


@pytest.mark.parametrize(
    ("kwargs", "expectation"),
    [
        ({}, does_not_raise()),
        ({"minimum_iou_threshold": 1.0}, does_not_raise()),
        ({"minimum_iou_threshold": 0.0}, pytest.raises(ValueError, match="minimum")),
        ({"minimum_iou_threshold": 1.5}, pytest.raises(ValueError, match="minimum")),
        ({"first_id": -1}, pytest.raises(ValueError, match="first_id")),
    ],
)
def test_the_assigner_validates_its_arguments(kwargs, expectation):
    with expectation:
        TrackIdAssigner(**kwargs)


def test_a_weak_duplicate_never_takes_the_id_of_a_confident_detection():
    previous = make_detections([[100, 100, 140, 200]], tracker_id=[5])
    detections = make_detections(
        [[104, 104, 144, 204], [100, 101, 140, 201]], confidence=[0.9, 0.1]
    )
    assigned = TrackIdAssigner(high_confidence_threshold=0.3).assign(
        detections, previous
    )
    assert assigned.tracker_id[0] == 5
    assert assigned.tracker_id[1] not in (5, -1)
