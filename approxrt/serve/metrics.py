"""`DaemonMetrics`: the daemon's Prometheus metrics (prometheus-client).

Per stream (label ``stream``): frames processed and dropped, SLA misses and
reconnects as monotonic counters (a dead camera shows as a counter that stops);
per-stage and whole-frame latency histograms; the current branch as an info-style
gauge (1 on the running branch's label); queue depth; sensed contention. Per
process: the memory the model pool's detectors took when loaded, and RSS.
Each daemon has a registry of its own, so several can live in one process.
"""

from __future__ import annotations

import psutil
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from approxrt.result import STAGES, FrameResult

# Milliseconds, from a tracker's fraction of a millisecond to a stalled second.
LATENCY_BUCKETS_MS = (0.5, 1, 2, 5, 10, 20, 33, 50, 100, 200, 500, 1000, 5000)


class DaemonMetrics:
    """The metrics and the helpers that keep them; `text` renders them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames = Counter(
            "approxrt_frames_processed", "Frames processed", ["stream"], registry=r
        )
        self.dropped = Counter(
            "approxrt_frames_dropped",
            "Frames decoded but never processed (newest-frame queue overflow)",
            ["stream"],
            registry=r,
        )
        self.sla_misses = Counter(
            "approxrt_sla_misses", "Frames over their SLA", ["stream"], registry=r
        )
        self.reconnects = Counter(
            "approxrt_reconnects", "Source reopen attempts", ["stream"], registry=r
        )
        self.frame_errors = Counter(
            "approxrt_frame_errors",
            "Frames that failed and were skipped",
            ["stream"],
            registry=r,
        )
        self.latency = Histogram(
            "approxrt_frame_latency_ms",
            "Whole-frame latency, decode excluded (ms)",
            ["stream"],
            buckets=LATENCY_BUCKETS_MS,
            registry=r,
        )
        self.stage = Histogram(
            "approxrt_stage_latency_ms",
            "Latency of each stage (ms)",
            ["stream", "stage"],
            buckets=LATENCY_BUCKETS_MS,
            registry=r,
        )
        self.branch = Gauge(
            "approxrt_stream_branch",
            "1 on the branch the stream runs now",
            ["stream", "branch"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "approxrt_queue_depth",
            "Frames waiting for inference",
            ["stream"],
            registry=r,
        )
        self.contention = Gauge(
            "approxrt_sensed_contention",
            "Sensed contention level",
            ["stream", "resource"],
            registry=r,
        )
        self.pool_bytes = Gauge(
            "approxrt_model_pool_bytes",
            "Resident memory the model pool's detectors took when loaded",
            registry=r,
        )
        self.rss_bytes = Gauge(
            "approxrt_process_rss_bytes", "Resident memory of the daemon", registry=r
        )
        self.rss_bytes.set_function(lambda: psutil.Process().memory_info().rss)
        self._branches: dict[str, str] = {}

    def observe(self, stream: str, result: FrameResult) -> None:
        """One processed frame of ``stream``."""
        self.frames.labels(stream).inc()
        self.latency.labels(stream).observe(result.latency_ms)
        for stage in STAGES:
            self.stage.labels(stream, stage).observe(result.timings_ms.get(stage, 0.0))
        if result.sla_hit is False:
            self.sla_misses.labels(stream).inc()
        for resource, level in (result.contention or {}).items():
            self.contention.labels(stream, resource).set(level)
        self.set_branch(stream, str(result.branch))

    def set_branch(self, stream: str, branch: str) -> None:
        previous = self._branches.get(stream)
        if previous == branch:
            return
        if previous is not None:
            self.branch.remove(stream, previous)
        self.branch.labels(stream, branch).set(1)
        self._branches[stream] = branch

    def add_drops(self, stream: str, count: int) -> None:
        if count > 0:
            self.dropped.labels(stream).inc(count)

    def forget(self, stream: str) -> None:
        """Remove a deleted stream's series."""
        for metric in (
            self.frames,
            self.dropped,
            self.sla_misses,
            self.reconnects,
            self.frame_errors,
            self.latency,
            self.queue_depth,
        ):
            try:
                metric.remove(stream)
            except KeyError:
                continue
        branch = self._branches.pop(stream, None)
        if branch is not None:
            self.branch.remove(stream, branch)
        for stage in STAGES:
            try:
                self.stage.remove(stream, stage)
            except KeyError:
                continue

    def text(self) -> bytes:
        return generate_latest(self.registry)
