"""`TrackingRetention`: what tracking keeps of the scene, from detection frames."""

import math

import numpy as np
import pytest
from hand_profile import profile_models, space

from approxrt.detections import Detections
from approxrt.scheduler.content import Content
from approxrt.scheduler.live_accuracy import LiveAccuracy
from approxrt.scheduler.retention import TrackingRetention, kept_share

KEYS = ["kcf/ds1", "medianflow/ds2", "mosse/ds4"]


def boxes(count: int, shift_px: float = 0.0, class_id: int = 0) -> Detections:
    """``count`` 40 px boxes in a row, moved right by ``shift_px``."""
    x = np.arange(count, dtype=np.float32) * 100 + shift_px
    xyxy = np.stack([x, np.zeros(count), x + 40, np.full(count, 40)], axis=1)
    return Detections(
        xyxy.astype(np.float32),
        np.full(count, 0.9, np.float32),
        np.full(count, class_id),
        np.arange(count),
    )


def test_the_share_counts_detections_still_covered_one_to_one():
    assert kept_share(boxes(10), boxes(10, shift_px=3), 0.5) == 1.0
    assert kept_share(boxes(4), boxes(10), 0.5) == 0.4
    # Boxes drifted off their objects (IoU 0.11) hold nothing.
    assert kept_share(boxes(10, shift_px=32), boxes(10), 0.5) == 0.0
    # One tracked box cannot cover two detections.
    two_on_one = Detections.merge([boxes(1), boxes(1, shift_px=2)])
    assert kept_share(boxes(1), two_on_one, 0.5) == 0.5
    # Nor can a box of another class.
    assert kept_share(boxes(5, class_id=2), boxes(5), 0.5) == 0.0


def test_a_group_that_lost_boxes_sets_its_trackers_alpha_and_caps_every_length():
    retention = TrackingRetention(KEYS)
    assert retention.alphas(0) is None  # nothing measured: decisions skip it
    share = retention.update("kcf/ds1", 4, boxes(5), boxes(10), frame_index=8)
    assert share == 0.5
    alpha = retention.alphas(8)
    assert alpha[0] == pytest.approx(math.log(2) / math.log(4))  # 4 ** -a = 0.5
    # Never measured: the scene's mean alpha (here kcf's alone).
    assert alpha[1] == alpha[2] == alpha[0]
    frames = np.array([2.0, 4.0, 16.0])
    kept = retention.kept_ap_share(alpha[[0, 0, 0]], np.log(frames))
    assert kept == pytest.approx([1.1 * 2**-0.5, 1.1 * 0.5, 1.1 * 0.25])


def test_a_tracker_that_holds_everything_costs_nothing():
    retention = TrackingRetention(KEYS)
    retention.update("medianflow/ds2", 8, boxes(12, shift_px=2), boxes(12), 16)
    alpha = retention.alphas(16)
    assert alpha[1] == 0.0
    assert retention.kept_ap_share(alpha, np.log([8.0, 8.0, 8.0])).min() == 1.0


def test_few_boxes_one_frame_groups_and_unknown_trackers_are_no_evidence():
    retention = TrackingRetention(KEYS, min_boxes=4)
    assert retention.update("kcf/ds1", 4, boxes(0), boxes(3), 4) is None
    assert retention.update("kcf/ds1", 1, boxes(0), boxes(10), 5) is None
    assert retention.update("csrt/ds1", 4, boxes(0), boxes(10), 6) is None
    assert retention.alphas(6) is None


def test_alphas_are_smoothed_and_fade_back_so_tracking_is_tried_again():
    retention = TrackingRetention(KEYS, weight=0.5, half_life_frames=100)
    retention.update("kcf/ds1", 2, boxes(5), boxes(10), 0)  # alpha 1
    retention.update("kcf/ds1", 2, boxes(10), boxes(10), 2)  # alpha 0
    faded = 0.5 ** (2 / 100)  # alpha 1 two frames on, before the second group
    assert retention.alphas(2)[0] == pytest.approx(faded / 2)
    assert retention.alphas(102)[0] == pytest.approx(faded / 4)
    assert retention.alphas(2000)[0] < 1e-5
    # A group that lost every box is read as `min_share`, not an infinite alpha.
    retention.update("mosse/ds4", 2, boxes(0), boxes(10), 2000)
    assert retention.alphas(2000)[2] == pytest.approx(math.log(20) / math.log(2))


def test_the_cap_leaves_untracked_branches_and_scores_at_or_below_zero_alone():
    branches = space()
    live = LiveAccuracy(profile_models(), branches)
    live.retention.update("kcf/ds1", 4, boxes(5), boxes(10), frame_index=0)
    scores = np.linspace(-0.2, 0.9, len(branches))
    scores[[b.sampling_interval == 1 for b in branches].index(True)] = 0.0
    capped = live._cap_tracking(scores.copy(), 0)
    untracked = np.array([b.tracker is None for b in branches])
    assert np.isfinite(capped).all()
    assert (capped[untracked] == scores[untracked]).all()
    assert (capped <= scores).all()
    # A tracked branch is held to its kernel's every-frame score times the share.
    parent = {
        b.input_size: s for b, s in zip(branches, scores, strict=True) if not b.tracker
    }
    si4 = [i for i, b in enumerate(branches) if b.sampling_interval == 4]
    for i in si4:
        held = max(parent[branches[i].input_size], 0.0) * 1.1 * 0.5
        assert capped[i] == pytest.approx(min(scores[i], held))
    assert live.predict(Content(), (480, 360), 0).shape == (len(branches),)
    # The decision reports the share its branch was held to (1: not capped).
    assert live.tracking_kept(si4[0]) == pytest.approx(1.1 * 0.5)
    assert live.tracking_kept(int(np.flatnonzero(untracked)[0])) == 1.0
