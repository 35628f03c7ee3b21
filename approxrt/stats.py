"""Latency statistics of a run, per ARCHITECTURE.md's evaluation protocol.

`RunStats` keeps numbers only (never frames) in bounded memory, so it can follow a
daemon's stream for months: means and rates are running sums; percentiles are
exact over the first `EXACT_QUANTILE_VALUES` values of a run (every benchmark and
test run) and from then on come from a DDSketch, whose quantiles are within
`SKETCH_RELATIVE_ACCURACY` of the true ones.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from ddsketch import DDSketch

from approxrt.result import STAGES, FrameResult

_MODEL_STAGES = ("preprocess", "infer", "postprocess")
_KERNEL_STAGES = (*_MODEL_STAGES, "associate", "track")
_MODEL_COLUMNS = [STAGES.index(s) for s in _MODEL_STAGES]
_KERNEL_COLUMNS = [STAGES.index(s) for s in _KERNEL_STAGES]

# 10,000 values are 80 kB per quantity, and a 10-fps stream's first 17 minutes.
EXACT_QUANTILE_VALUES = 10_000
SKETCH_RELATIVE_ACCURACY = 0.005


def judged_groups(
    detected: Sequence[bool], planned_frames: Callable[[int], int]
) -> list[tuple[int, int]]:
    """``(first, end)`` of each group of frames held to the SLA: from one
    detection frame to the next (frames before the first are no group).

    The last group counts only when whole, ``planned_frames(first)`` long (its
    branch's sampling interval). One the stream's end cut short holds its
    detection frame and few of the tracking frames planned to share its cost:
    a group of 20 planned at 3 ms a frame reads 15 ms when the stream ends
    after its first frame. A camera stream has no end; a file's would charge
    every run that ends on a tracker one group over. A run shorter than its
    one group keeps it.
    """
    starts = [i for i, d in enumerate(detected) if d] + [len(detected)]
    groups = list(itertools.pairwise(starts))
    if len(groups) > 1:
        first, end = groups[-1]
        if end - first < planned_frames(first):
            groups.pop()
    return groups


@dataclass
class RunSummary:
    """Latency of a run; ``*_ms`` values are milliseconds, rates are fractions.

    ``latency_ms`` is the loop's wall time per frame with decode excluded;
    ``associate_ms_per_detection`` is track-id association on detection frames;
    ``overhead_ms`` is what the loop spends beyond the kernel's stages (detector,
    association, tracker), scheduling included.
    ``first_frame_index``/``last_frame_index`` (0-based) say which frames were
    processed, so a run cut short is scored on the frames it saw.
    """

    frames: int
    detection_frames: int
    first_frame_index: int
    last_frame_index: int
    latency_ms: dict[str, float]
    gof_mean_latency_p95_ms: float
    stage_mean_ms: dict[str, float]
    detector_ms_per_detection: float
    associate_ms_per_detection: float
    tracker_ms_per_tracking_frame: float
    overhead_ms: float
    sla_ms: float | None
    frame_sla_violation_rate: float | None
    gof_sla_violation_rate: float | None
    branches: dict[str, int]
    weights: str

    def to_dict(self) -> dict:
        return asdict(self)


class StreamingQuantiles:
    """Percentiles of a stream of positive numbers in bounded memory.

    Exact (numpy's) while at most ``exact_values`` (default
    `EXACT_QUANTILE_VALUES`) were added; past that, every value goes to a
    DDSketch (relative accuracy ``relative_accuracy``).
    """

    def __init__(
        self,
        exact_values: int | None = None,
        relative_accuracy: float = SKETCH_RELATIVE_ACCURACY,
    ) -> None:
        self._exact = np.empty(exact_values or EXACT_QUANTILE_VALUES)
        self._relative_accuracy = relative_accuracy
        self._sketch: DDSketch | None = None
        self.count = 0
        self.total = 0.0
        self.max = -np.inf

    def add(self, value: float) -> None:
        if self._sketch is None and self.count == len(self._exact):
            self._sketch = DDSketch(relative_accuracy=self._relative_accuracy)
            for kept in self._exact:
                self._sketch.add(float(kept))
        if self._sketch is None:
            self._exact[self.count] = value
        else:
            self._sketch.add(value)
        self.count += 1
        self.total += value
        self.max = max(self.max, value)

    def percentiles(
        self, qs: list[float], extra: tuple[float, ...] = ()
    ) -> list[float]:
        """The ``qs`` (0-100) percentiles of every value added, plus ``extra``
        values counted this once (e.g. a group of frames still open)."""
        if self._sketch is None:
            values = np.concatenate([self._exact[: self.count], extra])
            return [float(v) for v in np.percentile(values, qs)]
        sketch = DDSketch(relative_accuracy=self._relative_accuracy)
        sketch.merge(self._sketch)
        for value in extra:
            sketch.add(value)
        return [float(sketch.get_quantile_value(q / 100)) for q in qs]


class RunStats:
    """Accumulates `FrameResult` numbers and summarises them, in bounded memory.

    A frame over the SLA is judged against the SLA in force for it; a group of
    frames against the SLA of its first frame.
    """

    def __init__(self) -> None:
        self._latency = StreamingQuantiles()
        self._gof_means = StreamingQuantiles()
        self._stage_sum_ms = np.zeros(len(STAGES))
        self._kernel_sum_ms = 0.0
        self._detector_sum_ms = 0.0
        self._associate_sum_ms = 0.0
        self._track_sum_ms = 0.0  # on tracking frames only
        self._detected = 0
        self._first_index: int | None = None
        self._last_index: int | None = None
        self._frames_over_sla = 0
        self._gofs_over_sla = 0
        self._gof_sum_ms = 0.0
        self._gof_frames = 0
        self._gof_sla_ms: float | None = None
        self._gof_planned_frames = 1
        self._branches: Counter[str] = Counter()
        self._sla_ms: float | None = None
        self._weights = "pretrained"

    def add(self, result: FrameResult) -> None:
        stages = np.array([result.timings_ms.get(s, 0.0) for s in STAGES])
        if result.detected or self._gof_frames == 0:
            self._close_gof()
            self._gof_sla_ms = result.sla_ms
            self._gof_planned_frames = result.branch.sampling_interval
        self._gof_sum_ms += result.latency_ms
        self._gof_frames += 1
        self._latency.add(result.latency_ms)
        self._stage_sum_ms += stages
        self._kernel_sum_ms += float(stages[_KERNEL_COLUMNS].sum())
        if result.detected:
            self._detected += 1
            self._detector_sum_ms += float(stages[_MODEL_COLUMNS].sum())
            self._associate_sum_ms += float(stages[STAGES.index("associate")])
        else:
            self._track_sum_ms += float(stages[STAGES.index("track")])
        index = result.frame.index
        if self._first_index is None:
            self._first_index = self._last_index = index
        self._first_index = min(index, self._first_index)
        self._last_index = max(index, self._last_index)
        if result.sla_ms is not None and result.latency_ms > result.sla_ms:
            self._frames_over_sla += 1
        self._branches[str(result.branch)] += 1
        self._sla_ms = result.sla_ms
        if result.weights != "pretrained":
            self._weights = result.weights

    def __len__(self) -> int:
        return self._latency.count

    def summary(self) -> RunSummary:
        if not len(self):
            raise ValueError("RunStats.summary: no frames were recorded")
        frames = len(self)
        open_gof = (
            (self._gof_sum_ms / self._gof_frames,) if self._open_gof_whole() else ()
        )
        tracking_frames = frames - self._detected
        return RunSummary(
            frames=frames,
            detection_frames=self._detected,
            first_frame_index=self._first_index,
            last_frame_index=self._last_index,
            latency_ms=_percentiles(self._latency),
            gof_mean_latency_p95_ms=self._gof_means.percentiles([95], open_gof)[0],
            stage_mean_ms=dict(
                zip(
                    STAGES, (self._stage_sum_ms / frames).round(4).tolist(), strict=True
                )
            ),
            detector_ms_per_detection=_ratio(self._detector_sum_ms, self._detected),
            associate_ms_per_detection=_ratio(self._associate_sum_ms, self._detected),
            tracker_ms_per_tracking_frame=_ratio(self._track_sum_ms, tracking_frames),
            overhead_ms=(self._latency.total - self._kernel_sum_ms) / frames,
            sla_ms=self._sla_ms,
            frame_sla_violation_rate=self._rate(self._frames_over_sla, frames),
            gof_sla_violation_rate=self._rate(
                self._gofs_over_sla + (self._open_gof_over_sla() if open_gof else 0),
                self._gof_means.count + len(open_gof),
            ),
            branches=dict(self._branches),
            weights=self._weights,
        )

    def _close_gof(self) -> None:
        if self._gof_frames:
            self._gof_means.add(self._gof_sum_ms / self._gof_frames)
            self._gofs_over_sla += self._open_gof_over_sla()
        self._gof_sum_ms, self._gof_frames = 0.0, 0

    def _open_gof_whole(self) -> bool:
        """The group in progress counts once whole (as `judged_groups`), or
        when it is the run's only one."""
        if not self._gof_frames:
            return False
        return self._gof_frames >= self._gof_planned_frames or not self._gof_means.count

    def _open_gof_over_sla(self) -> int:
        sla_ms = self._gof_sla_ms
        over = sla_ms is not None and self._gof_sum_ms > sla_ms * self._gof_frames
        return int(self._gof_frames > 0 and over)

    def _rate(self, count: int, total: int) -> float | None:
        return None if self._sla_ms is None else count / total


def _percentiles(values: StreamingQuantiles) -> dict[str, float]:
    p50, p95, p99 = values.percentiles([50, 95, 99])
    return {
        "mean": values.total / values.count,
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "max": float(values.max),
    }


def _ratio(total: float, count: int) -> float:
    return total / count if count else 0.0
