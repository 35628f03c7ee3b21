"""`LatencyFeedback`: how live latencies move the correction factors."""

from __future__ import annotations

import numpy as np
import pytest

from approxrt.scheduler.feedback import DETECT, LatencyFeedback


def test_a_kind_slow_every_time_jumps_at_its_second_reading():
    """A crowd's detection frames (seeding dozens of trackers) 3x their
    prediction, the tracking frames between them as predicted."""
    feedback = LatencyFeedback(jump=1.25, relax=0.2)
    for _ in range(2):
        feedback.observe_frame(DETECT, measured_ms=30.0, predicted_ms=10.0)
        for _ in range(3):
            feedback.observe_frame("kcf/ds4", measured_ms=1.0, predicted_ms=1.0)
    assert feedback.factor(DETECT) == pytest.approx(3.0)
    assert feedback.factor("kcf/ds4") == pytest.approx(1.0)  # the profile's


def test_one_slow_frame_is_smoothed_in_and_two_in_a_row_are_a_new_load():
    feedback = LatencyFeedback(jump=1.25, relax=0.2)
    feedback.observe_frame(DETECT, measured_ms=20.0, predicted_ms=10.0)
    assert feedback.factor(DETECT) == pytest.approx(1.2)  # 0.8 * 1 + 0.2 * 2
    feedback.observe_frame(DETECT, measured_ms=10.0, predicted_ms=10.0)
    feedback.observe_frame(DETECT, measured_ms=20.0, predicted_ms=10.0)
    after_quiet = 0.8 * (0.8 * 1.2 + 0.2 * 1.0) + 0.2 * 2
    assert feedback.factor(DETECT) == pytest.approx(after_quiet)
    # Contention: every frame slow, whatever its kind.
    feedback.observe_frame("kcf/ds1", measured_ms=6.0, predicted_ms=2.0)
    feedback.observe_frame(DETECT, measured_ms=30.0, predicted_ms=10.0)
    assert feedback.factor(DETECT) == pytest.approx(3.0)


def test_each_group_length_is_held_to_its_own_errors():
    feedback = LatencyFeedback(margin_quantile=0.9, margin_min_groups=8)
    for i in range(40):  # single frames: every fifth 1.8x its prediction
        feedback.observe_group(18.0 if i % 5 == 0 else 10.0, 10.0, frames=1)
    for _ in range(8):  # groups of eight: as predicted, within 2 %
        feedback.observe_group(10.2, 10.0, frames=8)
    single, eight, four = feedback.margins(np.array([1, 8, 4]))
    assert single == pytest.approx(1.8)
    assert eight == pytest.approx(1.02)
    # Groups of four were never seen: all groups' margin.
    assert four == feedback.margin and four > 1.5


def test_one_outlier_among_few_groups_does_not_set_the_margin_but_two_do():
    """Short of 100 groups a 0.99 quantile would be the largest ratio seen."""
    feedback = LatencyFeedback(margin_quantile=0.99, margin_min_groups=8)
    for i in range(19):
        feedback.observe_group(10.0 + 0.1 * i, 10.0, frames=1)
    feedback.observe_group(22.0, 10.0, frames=1)  # one first frame at 2.2x
    (single,) = feedback.margins(np.array([1]))
    assert single == pytest.approx(1.18 + 0.05 * (2.2 - 1.18))
    feedback.observe_group(22.0, 10.0, frames=1)
    (single,) = feedback.margins(np.array([1]))
    assert single == 2.0  # the bound


def test_groups_caught_by_a_step_of_load_leave_the_margin_once_detection_jumps():
    """The groups of a step widen the margin until the detection factor has
    taken the step up; then they are no error of the predictions made after."""
    feedback = LatencyFeedback(margin_quantile=0.99, margin_min_groups=8)

    def group(measured_ms: float, kind: str = DETECT) -> None:
        planned_ms = 10.0 * feedback.factor(kind)
        feedback.observe_frame(kind, measured_ms, 10.0)
        feedback.observe_group(measured_ms, planned_ms, frames=1)

    for i in range(20):
        group(10.0 + 0.05 * (i % 3))
    quiet = feedback.margin
    group(30.0)  # the load triples: one frame alone moves the factor a little
    group(30.0)  # confirmed: the factor jumps to 3, the step's groups leave
    assert feedback.factor(DETECT) == pytest.approx(3.0)
    assert quiet < 1.02 and feedback.margin == pytest.approx(quiet, abs=1e-3)
    for i in range(10):
        group(30.0 + 0.15 * (i % 3))
    assert feedback.margin < 1.02
    # A tracker's step alone leaves its groups in: the detector may lag still.
    for _ in range(20):
        group(10.0, "kcf/ds2")  # its tracking frames are as the profile says
    group(30.0, "kcf/ds2")
    group(30.0, "kcf/ds2")
    assert feedback.factor("kcf/ds2") == pytest.approx(3.0)
    assert feedback.margin > 1.5


def test_a_tracker_factor_learns_from_its_own_frames_and_relaxes_when_unread():
    """Two busy cores: detection 2.5x, KCF 3x. A tracker never read is
    planned as profiled; one preempted tracking frame after a high detection
    frame is no jump; KCF unread for `stale_frames` relaxes back to 1."""
    feedback = LatencyFeedback(jump=1.25, relax=0.2, stale_frames=30)
    feedback.observe_frame(DETECT, measured_ms=25.0, predicted_ms=10.0)
    feedback.observe_frame(DETECT, measured_ms=25.0, predicted_ms=10.0)
    assert feedback.factor(DETECT) == pytest.approx(2.5)
    assert feedback.factor("kcf/ds4") == feedback.factor("seed:kcf/ds4") == 1.0
    feedback.observe_frame("kcf/ds4", measured_ms=5.0, predicted_ms=1.0)
    assert feedback.factor("kcf/ds4") == pytest.approx(0.8 + 0.2 * 5.0)
    feedback.observe_frame("kcf/ds4", measured_ms=3.0, predicted_ms=1.0)
    # Confirmed by its own reading before: the lower of the two.
    assert feedback.factor("kcf/ds4") == pytest.approx(3.0)
    for _ in range(30):  # unread, not stale yet: it stays
        feedback.observe_frame(DETECT, measured_ms=10.0, predicted_ms=10.0)
    assert feedback.factor("kcf/ds4") == pytest.approx(3.0)
    for _ in range(60):
        feedback.observe_frame(DETECT, measured_ms=10.0, predicted_ms=10.0)
    assert 1.0 < feedback.factor("kcf/ds4") < 1.1  # 60 frames at 5% a frame
