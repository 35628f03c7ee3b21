"""`LatencyFeedback`: how live latencies move the correction factors."""

from __future__ import annotations

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
