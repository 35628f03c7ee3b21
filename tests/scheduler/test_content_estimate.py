"""The live content features the scheduler predicts accuracy from."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hand_profile import profile_models, space

from approxrt.branch import Branch
from approxrt.detections import Detections
from approxrt.frame import Frame
from approxrt.result import FrameResult
from approxrt.scheduler.content import ContentEstimate
from approxrt.scheduler.kernel_views import KernelViews
from approxrt.scheduler.latency_components import branch_kernel
from approxrt.scheduler.policy import AdaptivePolicy

BRANCH = Branch.parse("yolox_nano/s320/si4/kcf/ds1")


def _result(index: int, x: float, detected: bool, track_id: int = 7) -> FrameResult:
    boxes = Detections(
        xyxy=np.array([[x, 100, x + 40, 180]]),
        confidence=np.array([0.9]),
        class_id=np.array([0]),
        tracker_id=np.array([track_id]),
    )
    frame = Frame(np.zeros((360, 480, 3), np.uint8), index, index / 10)
    return FrameResult(frame, boxes, BRANCH, detected, {}, 1.0)


def test_speed_is_the_detector_boxes_motion_per_frame_not_the_trackers():
    """A person walking 2 px a frame, detected every 4th frame; the tracker's
    boxes in between stand still and jump back (a tracker losing it)."""
    content = ContentEstimate(min_confidence=0.3, frames=1.0)  # no averaging
    for index in range(0, 40):
        detected = index % 4 == 0
        x = 2.0 * index if detected else 2.0 * (index - index % 4)
        content.update(_result(index, x, detected))
    assert content.current.object_speed_px == pytest.approx(2.0)


def test_dropped_frames_are_not_motion_and_a_new_person_is_not_a_jump():
    content = ContentEstimate(min_confidence=0.3, frames=1.0)
    content.update(_result(0, 0.0, True))
    content.update(_result(6, 18.0, True))  # frames 1-5 dropped: 3 px a frame
    assert content.current.object_speed_px == pytest.approx(3.0)
    content.update(_result(7, 300.0, True, track_id=8))  # someone else
    assert content.current.object_speed_px == pytest.approx(3.0)
    assert list(content._detected) == [8]  # the one that left is forgotten


def test_speed_is_unknown_until_a_box_was_detected_twice():
    content = ContentEstimate(min_confidence=0.3, frames=1.0)
    content.update(_result(0, 100.0, detected=True))
    content.update(_result(1, 100.0, detected=False))
    assert content.current.known and np.isnan(content.current.object_speed_px)
    content.update(_result(4, 112.0, detected=True))
    assert content.current.object_speed_px == pytest.approx(3.0)


def _crowd(index: int, people: int) -> FrameResult:
    xs = np.arange(people, dtype=np.float64) * 50
    boxes = Detections(
        xyxy=np.stack([xs, xs * 0 + 100, xs + 40, xs * 0 + 180], axis=1),
        confidence=np.full(people, 0.9),
        class_id=np.zeros(people, np.int64),
        tracker_id=np.arange(people),
    )
    frame = Frame(np.zeros((360, 480, 3), np.uint8), index, index / 30)
    return FrameResult(frame, boxes, BRANCH, True, {}, 1.0)


def test_a_weaker_detector_seeing_nobody_keeps_the_recent_crowd():
    content = ContentEstimate(min_confidence=0.3, peak_frames=60)
    content.update(_crowd(0, 20))
    for index in range(1, 61):  # a detector that keeps no confident box
        content.update(_crowd(index, 0))
        assert content.current.objects == 20
    content.update(_crowd(61, 0))  # the crowd was last seen 61 frames ago
    assert content.current.objects < 1


def test_an_untrusted_detector_neither_sets_nor_ages_the_peak():
    """A detector `KernelRecall` has found blind here, run longer than the
    peak's window: the crowd last seen by a trusted one still counts."""
    content = ContentEstimate(min_confidence=0.3, peak_frames=60)
    content.update(_crowd(0, 20))
    for index in range(1, 200):
        content.update(_crowd(index, 0), trusted=False)
        assert content.current.objects == 20
    content.update(_crowd(200, 3))  # trusted again: the old peak ages out
    assert content.current.objects == 3


def test_the_accuracy_features_read_sizes_as_the_reference_kernel_sees_them():
    """Boxes 40x80 px (56.6 px) from a kernel whose boxes look 1.25x the
    reference's: the accuracy model reads 45.3 px, latency the boxes' own."""
    content = ContentEstimate(min_confidence=0.3, frames=4.0)
    content.update(_crowd(0, 5), size_ratio=1.25)
    content.update(_crowd(1, 5), size_ratio=1.25)
    side_px = np.sqrt(40 * 80)
    assert content.current.object_size_px == pytest.approx(side_px)
    assert content.current.reference_size_px == pytest.approx(side_px / 1.25)
    features = content.current.features((480, 360))
    assert features["object_size_px"] == pytest.approx(side_px / 1.25)
    content.update(_crowd(2, 5))  # the reference itself runs: its view counts
    expected_area = (3 * side_px**2 / 1.25**2 + side_px**2) / 4
    assert content.current.reference_size_px == pytest.approx(np.sqrt(expected_area))


def test_the_policy_reads_each_kernels_boxes_through_the_profiles_kernel_views():
    views = KernelViews.from_dict(
        {
            "kind": "KernelViews",
            "format_version": 1,
            "params": {"min_segments": 3, "ratio_bounds": [0.5, 2.0]},
            "size_ratio": {branch_kernel(BRANCH): 1.25},
        }
    )
    models = dataclasses.replace(profile_models(), kernel_views=views)
    policy = AdaptivePolicy(models, space(), fixed_margin=1.3)
    policy.observe(_crowd(0, 5))
    side_px = np.sqrt(40 * 80)
    assert policy.content.current.reference_size_px == pytest.approx(side_px / 1.25)
    assert policy.content.current.object_size_px == pytest.approx(side_px)
