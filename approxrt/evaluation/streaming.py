"""Streaming AP50 (Li, Wang and Ramanan, "Towards Streaming Perception", ECCV 2020).

The world does not wait for the detector. Ground-truth frame ``i`` is due at

    t_i = (i - first - eta_frames) / fps

on the stream clock (seconds since the stream's first frame ``first`` arrived;
by default the first frame with an output), and the prediction scored for it is
the newest output finished by then: the output with the latest
``finish_s <= t_i``. Before
any output has finished, frame ``i`` gets an empty prediction (its objects are
missed). The pairs are then scored exactly as offline AP50
(`approxrt.evaluation.ap.evaluate_ap`: same matching, classes and ignore rule).

``eta_frames = 0`` is the paper's strict default: an output always finishes
after its own frame arrived, so the best a runtime can do is be scored on the
previous frame's output. ``eta_frames = -1`` gives each frame until the next one
arrives: a runtime that finishes every frame before the next arrival then scores
its offline AP50 exactly.

Which finish times: a realtime replay (``approxrt run --realtime``) is scored
on the times it measured. A run as fast as possible reads frames ahead of their
capture time (or behind it), so with ``queued=True`` its outputs are first
re-timed as if each frame had arrived at its capture time into a camera queue
that keeps every frame: the output of frame ``j`` took ``finish - arrival`` to
compute and starts when frame ``j`` is captured or the previous output is done,
whichever is later (`queued_finish_times`). A run that keeps up then scores as
its realtime replay would, and one too slow for the frame rate falls further
behind with every frame, as a queue that drops nothing does. Either way the
output of frame ``j`` is never used for an earlier frame.

    times = read_timing("runs/pets/timing.csv")
    result = streaming_ap50(gt, results, times, fps=10.0)   # a realtime run
    print(result.mean_ap50, result.mean_lag_frames)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from approxrt.detections import FRAME, Detections
from approxrt.evaluation.ap import ClassAP, evaluate_ap
from approxrt.evaluation.timing import OutputTimes


@dataclass(frozen=True)
class StreamingAP:
    """Streaming AP50 of one run, with how late its outputs were.

    Attributes:
        per_class: `ClassAP` by contiguous class id (as `evaluate_ap` gives).
        mean_ap50: mean interpolated AP50 over classes with ground truth.
        mean_ap50_raw: mean non-interpolated AP50 over the same classes.
        fps: the frame rate frames were due at.
        eta_frames: the paper's grace, in frames (see the module docstring).
        queued: whether the finish times were re-timed as a camera queue that
            keeps every frame (a run as fast as possible), not as measured.
        frames_scored: frames from the stream's first to the last output's.
        frames_without_output: frames due before any output had finished.
        frames_in_time: frames scored on the output of that very frame.
        mean_lag_frames: mean of (frame - frame of the output used) over the
            frames that had an output; 0 when every frame got its own.
    """

    per_class: dict[int, ClassAP]
    mean_ap50: float
    mean_ap50_raw: float
    fps: float
    eta_frames: float
    queued: bool
    frames_scored: int
    frames_without_output: int
    frames_in_time: int
    mean_lag_frames: float


def streaming_ap50(
    gt: Detections,
    results: Detections,
    times: OutputTimes,
    fps: float,
    classes: Iterable[int] | None = None,
    eta_frames: float = 0.0,
    queued: bool = False,
    first_frame: int | None = None,
    iou_threshold: float = 0.5,
) -> StreamingAP:
    """Streaming AP50 of ``results`` against ``gt`` (see the module docstring).

    Args:
        gt: ground truth, 1-based frame numbers; frames before the stream's
            first or after the run's last output are not scored.
        results: every box the run output, on the frame it was computed on.
        times: when each output (one per frame the run processed, boxes or
            none) was ready; from ``timing.csv`` or
            `OutputTimes.from_frame_results`.
        fps: the source's frame rate: frame ``first + k`` is due ``k / fps``
            seconds after the first frame arrived.
        classes: class ids to score; default every class with scored gt.
        eta_frames: grace in frames, >= -1 (0: the paper's default; -1: each
            frame until the next arrives).
        queued: ``True`` for a run that read frames as fast as it could and
            processed every one (not a realtime replay): its finish times are
            re-timed by `queued_finish_times` first.
        first_frame: the frame number that arrived at 0 on the stream clock
            (a realtime source's ``first_index + 1``); default the first
            output's frame, which is the same unless that frame was dropped
            or failed.
        iou_threshold: minimum IoU for a match.

    Raises:
        ValueError: no outputs, a bad ``fps`` or ``eta_frames``, outputs whose
            finish times go backwards as frame numbers rise (a runtime finishes
            frames in order), or ``queued`` without arrival times.
    """
    if queued:
        times = queued_finish_times(times, fps, first_frame)
    frames, used = outputs_in_force(times, fps, eta_frames, first_frame)
    in_range = (gt.frame >= frames[0]) & (gt.frame <= frames[-1])
    ap = evaluate_ap(
        gt[in_range], _relabelled(results, frames, used), classes, iou_threshold
    )
    had_output = used > 0
    lag = frames[had_output] - used[had_output]
    return StreamingAP(
        per_class=ap.per_class,
        mean_ap50=ap.mean_ap50,
        mean_ap50_raw=ap.mean_ap50_raw,
        fps=float(fps),
        eta_frames=float(eta_frames),
        queued=queued,
        frames_scored=len(frames),
        frames_without_output=int(np.count_nonzero(~had_output)),
        frames_in_time=int(np.count_nonzero(used == frames)),
        mean_lag_frames=float(lag.mean()) if len(lag) else math.nan,
    )


def outputs_in_force(
    times: OutputTimes,
    fps: float,
    eta_frames: float = 0.0,
    first_frame: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Which output is the newest when each frame is due.

    Returns:
        ``(frames, used)``, both ``(k,) int64``: every frame number from the
        stream's first (``first_frame``, default the first output's) to the
        last output's, and for each the frame number of the output scored for
        it (0 when none had finished).
    """
    _check_stream(fps, eta_frames)
    frame, finish_s = _in_frame_order(times)
    first = _first_frame(frame, first_frame)
    frames = np.arange(first, frame[-1] + 1, dtype=np.int64)
    due_s = (frames - first - eta_frames) / fps
    finished = np.searchsorted(finish_s, due_s, side="right")
    # Outputs finish in frame order, so those finished by the due time and
    # computed on this frame or earlier are both prefixes; the shorter wins.
    computed = np.searchsorted(frame, frames, side="right")
    count = np.minimum(finished, computed)
    used = np.where(count > 0, frame[np.maximum(count - 1, 0)], 0)
    return frames, used


def queued_finish_times(
    times: OutputTimes, fps: float, first_frame: int | None = None
) -> OutputTimes:
    """Finish times as if frames had arrived at their capture times, none dropped.

    Frame ``j`` is captured at ``t_j = (j - first) / fps`` (``first``:
    ``first_frame``, default the first output's) and its output took
    ``p_j = finish_s - arrival_s`` (as measured); in a queue that keeps every
    frame it finishes at ``f_j = max(t_j, f_previous) + p_j``.

    Raises:
        ValueError: an output without an arrival time, or a bad ``fps``.
    """
    _check_stream(fps, 0.0)
    if len(times) == 0:
        raise ValueError("times: the run has no outputs to score")
    order = np.argsort(times.frame, kind="stable")
    frame, finish_s, arrival_s = (
        times.frame[order],
        times.finish_s[order],
        times.arrival_s[order],
    )
    if not np.isfinite(arrival_s).all():
        missing = int(frame[~np.isfinite(arrival_s)][0])
        raise ValueError(
            f"times: frame {missing} has no arrival time, needed to re-time a run "
            "that waited for every frame"
        )
    capture_s = (frame - _first_frame(frame, first_frame)) / fps
    compute_s = finish_s - arrival_s
    # f_k = max over m <= k of (t_m + p_m + ... + p_k), as a running maximum.
    done_s = np.cumsum(compute_s)
    queued = done_s + np.maximum.accumulate(capture_s - (done_s - compute_s))
    return OutputTimes(frame, queued, capture_s)


def _first_frame(frame: np.ndarray, first_frame: int | None) -> int:
    """The stream's first frame number; ``frame`` is sorted and not empty."""
    if first_frame is None:
        return int(frame[0])
    if first_frame > frame[0]:
        raise ValueError(
            f"first_frame: {first_frame} comes after the first output (frame "
            f"{int(frame[0])}); the stream cannot start after its outputs"
        )
    return int(first_frame)


def _check_stream(fps: float, eta_frames: float) -> None:
    if not (
        isinstance(fps, int | float | np.number) and math.isfinite(fps) and fps > 0
    ):
        raise ValueError(f"fps: expected a positive number, got {fps!r}")
    if not (math.isfinite(eta_frames) and eta_frames >= -1):
        raise ValueError(f"eta_frames: expected a number >= -1, got {eta_frames!r}")


def _in_frame_order(times: OutputTimes) -> tuple[np.ndarray, np.ndarray]:
    if len(times) == 0:
        raise ValueError("times: the run has no outputs to score")
    order = np.argsort(times.frame, kind="stable")
    frame, finish_s = times.frame[order], times.finish_s[order]
    repeated = frame[1:][np.diff(frame) == 0]
    if len(repeated):
        raise ValueError(
            f"times: frame {int(repeated[0])} has more than one output; "
            "expected one per frame processed"
        )
    backwards = np.flatnonzero(np.diff(finish_s) < 0)
    if len(backwards):
        i = int(backwards[0])
        raise ValueError(
            f"times: frame {int(frame[i + 1])} finished at {finish_s[i + 1]:.6f} s, "
            f"before frame {int(frame[i])} ({finish_s[i]:.6f} s); finish times must "
            "not go backwards as frames go forwards"
        )
    return frame, finish_s


def _relabelled(
    results: Detections, frames: np.ndarray, used: np.ndarray
) -> Detections:
    """The boxes of output ``used[k]``, relabelled as frame ``frames[k]``."""
    order = np.argsort(results.frame, kind="stable")
    sorted_frame = results.frame[order]
    start = np.searchsorted(sorted_frame, used, side="left")
    count = np.searchsorted(sorted_frame, used, side="right") - start
    first_of_run = np.repeat(np.cumsum(count) - count, count)
    rows = order[np.repeat(start, count) + np.arange(count.sum()) - first_of_run]
    picked = results[rows]
    return Detections(
        picked.xyxy,
        picked.confidence,
        picked.class_id,
        picked.tracker_id,
        {FRAME: np.repeat(frames, count)},
    )
