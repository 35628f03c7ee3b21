"""Streaming AP50 on a synthetic scene with exact ground truth and known delays.

The "detector" is the scene's own ground truth, jittered and salted with false
positives (so offline AP50 is well below 1), and its outputs finish at chosen
times on the stream clock: what latency costs is then exact and repeatable.
"""

from __future__ import annotations

import numpy as np
import pytest

from approxrt.detections import Detections
from approxrt.evaluation import evaluate_ap, ignored, sequence_boxes
from approxrt.evaluation.streaming import (
    outputs_in_force,
    queued_finish_times,
    streaming_ap50,
)
from approxrt.evaluation.timing import OutputTimes
from approxrt.sources import SyntheticScene

FPS = 10.0
PERIOD_S = 1 / FPS
FRAMES = 60


@pytest.fixture(scope="module")
def gt() -> Detections:
    scene = SyntheticScene.from_spec(
        f"synthetic:objects=5,size=40-70,speed=6-10,frames={FRAMES},seed=3,"
        "width=320,height=240"
    )
    return Detections.stack((i + 1, scene.ground_truth(i)) for i in range(FRAMES))


@pytest.fixture(scope="module")
def results(gt) -> Detections:
    """Boxes near the truth, plus confident false positives: offline AP50 < 1."""
    rng = np.random.default_rng(0)
    jittered = gt.xyxy + rng.normal(0, 2.0, gt.xyxy.shape)
    false_xy = rng.uniform(0, 250, (FRAMES, 2))
    false = np.concatenate([false_xy, false_xy + 30], axis=1)
    return sequence_boxes(
        np.concatenate([gt.frame, np.arange(1, FRAMES + 1)]),
        np.concatenate([jittered, false]),
        np.concatenate([rng.uniform(0.3, 1.0, len(gt)), rng.uniform(0.5, 1.0, FRAMES)]),
    )


def times_with(finish_s: np.ndarray, frames: np.ndarray | None = None) -> OutputTimes:
    frames = np.arange(1, FRAMES + 1) if frames is None else frames
    return OutputTimes(frames, finish_s, (frames - 1) * PERIOD_S)


def arrivals() -> np.ndarray:
    return np.arange(FRAMES) * PERIOD_S


def test_every_output_ready_before_the_next_frame_scores_the_offline_ap50(gt, results):
    offline = evaluate_ap(gt, results).mean_ap50
    assert 0.3 < offline < 0.95
    times = times_with(arrivals() + 0.6 * PERIOD_S)
    streaming = streaming_ap50(gt, results, times, FPS, eta_frames=-1)
    assert streaming.mean_ap50 == offline
    assert streaming.frames_in_time == streaming.frames_scored == FRAMES
    assert streaming.mean_lag_frames == 0


def test_streaming_ap50_falls_as_latency_rises_past_the_frame_period(gt, results):
    offline = evaluate_ap(gt, results).mean_ap50
    scores, lags = [], []
    for delay_periods in (0.5, 1.5, 2.5, 4.5):
        times = times_with(arrivals() + delay_periods * PERIOD_S)
        streaming = streaming_ap50(gt, results, times, FPS, eta_frames=-1)
        scores.append(streaming.mean_ap50)
        lags.append(streaming.mean_lag_frames)
    assert scores[0] == offline
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4
    # Ready 1.5 periods after arrival: the previous frame's output is the newest.
    assert lags[1] == 1 and lags[3] == 4


def test_the_papers_strict_default_scores_each_frame_on_the_previous_output(
    gt, results
):
    times = times_with(arrivals() + 0.6 * PERIOD_S)
    strict = streaming_ap50(gt, results, times, FPS)
    frames, used = outputs_in_force(times, FPS)
    assert frames.tolist() == list(range(1, FRAMES + 1))
    assert used.tolist() == [0, *range(1, FRAMES)]
    assert strict.frames_without_output == 1 and strict.frames_in_time == 0
    assert strict.mean_ap50 < evaluate_ap(gt, results).mean_ap50


def test_a_run_ahead_of_the_frame_rate_never_uses_a_later_frames_output(gt, results):
    ahead = times_with(np.arange(1, FRAMES + 1) * 0.001)  # 1 ms per frame
    streaming = streaming_ap50(gt, results, ahead, FPS, eta_frames=-1)
    assert streaming.frames_in_time == FRAMES
    assert streaming.mean_ap50 == evaluate_ap(gt, results).mean_ap50


def test_a_run_that_waits_for_every_frame_falls_further_behind_when_too_slow(
    gt, results
):
    slow = times_with(np.arange(1, FRAMES + 1) * 1.5 * PERIOD_S)
    frames, used = outputs_in_force(slow, FPS, eta_frames=-1)
    lag = frames - used
    assert lag[-1] > lag[FRAMES // 2] > lag[5] >= 0
    streaming = streaming_ap50(gt, results, slow, FPS, eta_frames=-1)
    assert streaming.mean_ap50 < evaluate_ap(gt, results).mean_ap50


def test_an_output_without_boxes_replaces_the_previous_boxes(gt, results):
    odd = results[results.frame % 2 == 1]
    finish_s = arrivals() + 0.5 * PERIOD_S
    every = times_with(finish_s)  # even frames were processed and found nothing
    odd_only = times_with(finish_s[::2], np.arange(1, FRAMES + 1, 2))
    with_empty = streaming_ap50(gt, odd, every, FPS, eta_frames=-1)
    held_over = streaming_ap50(gt, odd, odd_only, FPS, eta_frames=-1)
    assert with_empty.mean_ap50 < held_over.mean_ap50
    assert with_empty.per_class[0].num_true_positives < (
        held_over.per_class[0].num_true_positives
    )


def test_frames_outside_the_runs_outputs_are_not_scored(gt, results):
    frames = np.arange(11, 31)
    arrival_s = (frames - 11) * PERIOD_S
    times = OutputTimes(frames, arrival_s + 0.5 * PERIOD_S, arrival_s)
    streaming = streaming_ap50(gt, results, times, FPS, eta_frames=-1)
    in_range = (gt.frame >= 11) & (gt.frame <= 30)
    assert streaming.per_class[0].num_gt == int((in_range & ~ignored(gt)).sum())
    assert streaming.frames_scored == 20


def test_a_run_that_kept_ahead_scores_as_its_realtime_replay_once_queued(gt, results):
    compute_s = np.full(FRAMES, 0.015)
    arrival_s = np.arange(FRAMES) * 0.02  # read 5x faster than the frame rate
    ahead = OutputTimes(np.arange(1, FRAMES + 1), arrival_s + compute_s, arrival_s)
    realtime = times_with(arrivals() + compute_s)
    for eta in (0, -1):
        queued = streaming_ap50(gt, results, ahead, FPS, eta_frames=eta, queued=True)
        measured = streaming_ap50(gt, results, realtime, FPS, eta_frames=eta)
        assert queued.mean_ap50 == measured.mean_ap50 and queued.queued


def test_a_queue_that_keeps_every_frame_carries_its_delay_forward():
    compute_s = np.where(np.arange(FRAMES) < 30, 0.01, 0.25)  # fast, then slow
    arrival_s = np.concatenate([[0.0], np.cumsum(compute_s)[:-1]])  # back to back
    run = OutputTimes(np.arange(1, FRAMES + 1), arrival_s + compute_s, arrival_s)
    queued = queued_finish_times(run, FPS)
    expected, done_s = [], 0.0
    for k in range(FRAMES):
        done_s = max(k * PERIOD_S, done_s) + compute_s[k]
        expected.append(done_s)
    np.testing.assert_allclose(queued.finish_s, expected)
    # Read ahead of the frame rate, the run had a head start a camera never gives.
    assert queued.finish_s[-1] > run.finish_s[-1] + 2.5
    with pytest.raises(ValueError, match="frame 2 has no arrival time"):
        queued_finish_times(OutputTimes([1, 2], [0.1, 0.2], [0.0, np.nan]), FPS)


def test_frames_before_the_first_output_count_from_the_streams_first_frame(gt, results):
    # Frames 1 and 2 arrived (and were dropped); frame 3's output came first.
    frames = np.arange(3, FRAMES + 1)
    arrival_s = (frames - 1) * PERIOD_S
    times = OutputTimes(frames, arrival_s + 0.5 * PERIOD_S, arrival_s)
    from_first = streaming_ap50(gt, results, times, FPS, eta_frames=-1, first_frame=1)
    assert from_first.frames_scored == FRAMES
    assert from_first.frames_without_output == 2
    assert from_first.frames_in_time == FRAMES - 2
    assert from_first.mean_lag_frames == 0
    # Timed from frame 3 instead, every frame would seem two frames late.
    from_output = streaming_ap50(gt, results, times, FPS, eta_frames=-1)
    assert from_output.frames_scored == FRAMES - 2
    assert from_output.mean_lag_frames == 2
    with pytest.raises(ValueError, match="first_frame: 4 comes after"):
        streaming_ap50(gt, results, times, FPS, first_frame=4)


@pytest.mark.parametrize(
    ("frames", "finish_s", "fps", "eta", "message"),
    [
        ([1, 2, 2], [0.1, 0.2, 0.3], FPS, 0, "frame 2 has more than one output"),
        ([1, 2, 3], [0.1, 0.3, 0.2], FPS, 0, "frame 3 finished at 0.200000 s"),
        ([], [], FPS, 0, "no outputs"),
        ([1, 2], [0.1, 0.2], 0.0, 0, "fps: expected a positive number"),
        ([1, 2], [0.1, 0.2], FPS, -2, "eta_frames: expected a number >= -1"),
    ],
)
def test_bad_timing_is_refused_with_the_reason(
    gt, results, frames, finish_s, fps, eta, message
):
    times = OutputTimes(frames, finish_s, np.full(len(frames), np.nan))
    with pytest.raises(ValueError, match=message):
        streaming_ap50(gt, results, times, fps, eta_frames=eta)


def test_outputs_need_a_finish_time():
    with pytest.raises(ValueError, match="finite finish time"):
        OutputTimes([1, 2], [0.1, np.nan], [0.0, 0.1])
