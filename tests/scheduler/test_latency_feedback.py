"""`LatencyFeedback`: how live latencies move the correction factors."""

from __future__ import annotations

import numpy as np
import pytest

from approxrt.scheduler.feedback import DETECT, LatencyFeedback


def test_one_slow_frame_is_smoothed_in_and_two_in_a_row_are_a_new_load():
    feedback = LatencyFeedback(jump=1.25, relax=0.2)
    feedback.observe_frame(DETECT, measured_ms=20.0, predicted_ms=10.0)
    assert feedback.factor(DETECT) == pytest.approx(1.2)  # 0.8 * 1 + 0.2 * 2
    feedback.observe_frame("kcf/ds1", measured_ms=2.0, predicted_ms=2.0)
    feedback.observe_frame(DETECT, measured_ms=20.0, predicted_ms=10.0)
    assert feedback.factor(DETECT) == pytest.approx(0.8 * 1.2 + 0.2 * 2)
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
