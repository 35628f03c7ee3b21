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
    assert feedback.factor("kcf/ds4") < 1.15  # seen first at detection's 1.2


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
