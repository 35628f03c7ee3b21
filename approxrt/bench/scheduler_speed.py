"""`approxrt bench scheduler`: how long one decision takes over many branches.

The candidates are every profiled kernel and (tracker, downsample) the profile
holds, at many sampling intervals (the latency model composes any interval; the
accuracy table's knob regression covers the ones it never saw), so the count
can exceed what the profile measured. Each decision is timed end to end as the
loop does it: content and contention read, every branch's latency and accuracy
predicted, the choice made.
"""

from __future__ import annotations

from time import perf_counter

import numpy as np

from approxrt.branch import Branch
from approxrt.decision import DecisionContext
from approxrt.detections import Detections
from approxrt.frame import Frame
from approxrt.result import STAGES, FrameResult
from approxrt.scheduler.feedback import LatencyFeedback
from approxrt.scheduler.policy import AdaptivePolicy
from approxrt.scheduler.profile_models import ProfileModels
from approxrt.scheduler.sensor import ContentionSensor

SAMPLING = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 100)


def wide_space(models: ProfileModels, sampling=SAMPLING) -> list[Branch]:
    """Every profiled kernel x tracker x ``sampling`` interval."""
    profiled = [Branch.parse(name) for name in models.accuracy_table.branches_]
    kernels = sorted({(b.detector, b.input_size, b.proposals) for b in profiled})
    trackers = sorted({(b.tracker, b.downsample) for b in profiled if b.tracker})
    space = [Branch(*k) for k in kernels]
    space += [
        Branch(*kernel, si, tracker, ds)
        for kernel in kernels
        for si in sampling
        if si > 1
        for tracker, ds in trackers
    ]
    return space


def time_decisions(
    models: ProfileModels,
    branches: list[Branch],
    decisions: int = 5000,
    frame_wh: tuple[int, int] = (480, 360),
) -> dict[str, float]:
    """Mean, P50 and P99 microseconds per decision, after a warm-up."""
    policy = AdaptivePolicy(
        models, branches, sensor=ContentionSensor(), feedback=LatencyFeedback()
    )
    image = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (*frame_wh[::-1], 3))
    for result in _warm_stream(branches, image):
        policy.observe(result)
    context = DecisionContext(Frame(image, 8, 0.0), 20.0, branches[0], [])
    for _ in range(200):
        policy.decide(context)
    micros = np.empty(decisions)
    for i in range(decisions):
        start = perf_counter()
        policy.decide(context)
        micros[i] = (perf_counter() - start) * 1e6
    return {
        "branches": len(branches),
        "decisions": decisions,
        "mean_us": float(micros.mean()),
        "p50_us": float(np.percentile(micros, 50)),
        "p99_us": float(np.percentile(micros, 99)),
    }


def _warm_stream(branches: list[Branch], image: np.ndarray) -> list[FrameResult]:
    """Content and feedback as a running stream has them: a tracked group that
    lost half its boxes (so every decision pays for the tracking cap), then
    detection frames."""
    tracked = next((b for b in branches if b.tracker), branches[0])
    six = Detections(
        np.array([[60 * i, 10, 60 * i + 40, 90] for i in range(6)], np.float32),
        np.full(6, 0.9, np.float32),
        np.zeros(6, np.int64),
        np.arange(1, 7),
    )
    frames = [(tracked, True, six)] + [(tracked, False, six[:3])] * 3
    frames += [(tracked, True, six)] + [(branches[0], True, six)] * 3
    return [
        FrameResult(
            Frame(image, i, 0.0),
            boxes,
            branch,
            detected,
            dict.fromkeys(STAGES, 0.0),
            5.0,
        )
        for i, (branch, detected, boxes) in enumerate(frames)
    ]
