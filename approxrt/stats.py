"""Latency statistics of a run, per ARCHITECTURE.md's evaluation protocol.

`RunStats` keeps numbers only (never frames), so it can follow a stream of any length.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from approxrt.result import STAGES, FrameResult

_MODEL_STAGES = ("preprocess", "infer", "postprocess")
_KERNEL_STAGES = (*_MODEL_STAGES, "associate", "track")


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


class RunStats:
    """Accumulates `FrameResult` numbers and summarises them."""

    def __init__(self) -> None:
        self._latency_ms: list[float] = []
        self._frame_indices: list[int] = []
        self._stages_ms: list[list[float]] = []
        self._detected: list[bool] = []
        self._branches: Counter[str] = Counter()
        self._sla_ms: float | None = None
        self._weights = "pretrained"

    def add(self, result: FrameResult) -> None:
        self._latency_ms.append(result.latency_ms)
        self._frame_indices.append(result.frame.index)
        self._stages_ms.append([result.timings_ms.get(s, 0.0) for s in STAGES])
        self._detected.append(result.detected)
        self._branches[str(result.branch)] += 1
        self._sla_ms = result.sla_ms
        if result.weights != "pretrained":
            self._weights = result.weights

    def __len__(self) -> int:
        return len(self._latency_ms)

    def summary(self) -> RunSummary:
        if not self._latency_ms:
            raise ValueError("RunStats.summary: no frames were recorded")
        latency = np.asarray(self._latency_ms)
        stages = np.asarray(self._stages_ms)
        detected = np.asarray(self._detected)
        gof_means = _gof_means(latency, detected)
        stage_mean = dict(
            zip(STAGES, stages.mean(axis=0).round(4).tolist(), strict=True)
        )
        model_columns = [STAGES.index(s) for s in _MODEL_STAGES]
        kernel_columns = [STAGES.index(s) for s in _KERNEL_STAGES]
        kernel_ms = stages[:, kernel_columns].sum(axis=1)
        return RunSummary(
            frames=len(latency),
            detection_frames=int(detected.sum()),
            first_frame_index=min(self._frame_indices),
            last_frame_index=max(self._frame_indices),
            latency_ms=_percentiles(latency),
            gof_mean_latency_p95_ms=float(np.percentile(gof_means, 95)),
            stage_mean_ms=stage_mean,
            detector_ms_per_detection=_mean(
                stages[detected][:, model_columns].sum(axis=1)
            ),
            associate_ms_per_detection=_mean(
                stages[detected, STAGES.index("associate")]
            ),
            tracker_ms_per_tracking_frame=_mean(
                stages[~detected, STAGES.index("track")]
            ),
            overhead_ms=float(np.mean(latency - kernel_ms)),
            sla_ms=self._sla_ms,
            frame_sla_violation_rate=_violations(latency, self._sla_ms),
            gof_sla_violation_rate=_violations(gof_means, self._sla_ms),
            branches=dict(self._branches),
            weights=self._weights,
        )


def _gof_means(latency: np.ndarray, detected: np.ndarray) -> np.ndarray:
    starts = np.flatnonzero(detected)
    if len(starts) == 0 or starts[0] != 0:
        starts = np.concatenate([[0], starts])
    return np.add.reduceat(latency, starts) / np.diff(np.append(starts, len(latency)))


def _percentiles(values: np.ndarray) -> dict[str, float]:
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "mean": float(values.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(values.max()),
    }


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0


def _violations(values: np.ndarray, sla_ms: float | None) -> float | None:
    return None if sla_ms is None else float(np.mean(values > sla_ms))
