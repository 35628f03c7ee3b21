"""`StreamWorker`: one stream of the daemon, from its `FrameFeed` to its sinks.

Decoding runs on the feed's thread; inference on the worker's own thread, which
first makes the stream's plan (its policy and candidate branches: at once for a
fixed branch; an adaptive stream may first calibrate, shown as ``preparing``),
then runs `approxrt.loop.run_loop` over the feed's frames with the stream's
kernel (the shared model pool plus this stream's tracker state) and hands every result
to the stream's sinks and the metrics. A failing frame is counted and skipped; a
failing sink write is counted too and never stops the stream. `stop` drains:
the feed stops reading, the frames already queued are processed, then the sinks
are flushed and closed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from approxrt.branch import Branch
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.decision import BranchPolicy, Decision, DecisionContext
from approxrt.frame import Frame
from approxrt.loop import FixedBranch, run_loop
from approxrt.result import FrameResult
from approxrt.serve.frames import FrameFeed
from approxrt.serve.metrics import DaemonMetrics
from approxrt.serve.spec import StreamSpec
from approxrt.sinks import MultiSink

log = logging.getLogger(__name__)

KernelFactory = Callable[[np.ndarray, list[Branch]], MultiBranchKernel]
# Makes a stream's policy and the branches its kernel is warmed for.
Plan = Callable[[], tuple[BranchPolicy, list[Branch]]]
# Latency points kept for the status page: a few minutes at camera rates.
HISTORY_POINTS = 3000


@dataclass
class StreamCounts:
    processed: int = 0
    frame_errors: int = 0
    sink_errors: int = 0
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY_POINTS))


class StreamWorker:
    """Runs one stream; see the module docstring.

    Args:
        spec: the stream's entry.
        feed: its frame feed (not started yet).
        make_kernel: builds the stream's kernel for a first frame and branches.
        sinks: where its results go.
        metrics: the daemon's metrics.
        plan: makes the policy and branches, on the worker's thread.
    """

    def __init__(
        self,
        spec: StreamSpec,
        feed: FrameFeed,
        make_kernel: KernelFactory,
        sinks: MultiSink,
        metrics: DaemonMetrics,
        plan: Plan,
    ) -> None:
        self.spec = spec
        self.feed = feed
        self.make_kernel = make_kernel
        self.sinks = sinks
        self.metrics = metrics
        self.plan = plan
        # A fixed branch, or an adaptive stream's scheduler (None until planned).
        self.policy: BranchPolicy | None = None
        self.preparing = True
        self.sla_ms = spec.sla_ms
        self.paused = threading.Event()
        self.counts = StreamCounts()
        self.latest: FrameResult | None = None
        self.error: str | None = None
        self._reported_drops = 0
        self._thread = threading.Thread(
            target=self._run, name=f"infer {spec.id}", daemon=True
        )

    @property
    def branch(self) -> Branch | None:
        """The fixed branch, or the one the scheduler chose last (None before)."""
        if isinstance(self.policy, FixedBranch):
            return self.policy.branch
        if self.policy is None and self.spec.branch is not None:  # not planned yet
            return self.spec.fixed_branch
        return self.latest.branch if self.latest else None

    @property
    def state(self) -> str:
        if self.error:
            return "failed"
        if not self._thread.is_alive():
            return "finished" if self._thread.ident else "starting"
        if self.preparing:
            return "preparing"
        if self.paused.is_set():
            return "paused"
        return "running" if self.feed.connected else "connecting"

    def start(self) -> None:
        self.feed.start()
        self._thread.start()

    def set_branch(self, branch: Branch) -> None:
        """Run ``branch`` from the next group of frames on (an adaptive stream
        becomes a fixed one)."""
        if isinstance(self.policy, FixedBranch):
            self.policy.branch = branch
        else:
            self.policy = FixedBranch(branch)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop reading, process what is queued, flush and close the sinks."""
        self.paused.clear()
        self.feed.stop()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("stream %s: still busy after %.0f s", self.spec.id, timeout_s)

    def _run(self) -> None:
        try:
            branches = self._make_plan()
            frames = self.feed.frames(self.paused)
            first = next(frames, None)
            if first is not None:
                self._process(first, frames, branches)
        except Exception as error:  # a stream that cannot run says why, others go on
            self.error = f"{type(error).__name__}: {error}"
            log.exception("stream %s failed", self.spec.id)
        finally:
            self._close_sinks()

    def _make_plan(self) -> list[Branch]:
        policy, branches = self.plan()
        if self.policy is None:  # `set_branch` while planning wins
            self.policy = policy
        self.preparing = False
        return branches

    def _process(self, first: Frame, frames, branches: list[Branch]) -> None:
        kernel = self.make_kernel(first.image, branches)
        results = run_loop(
            _chain(first, frames),
            kernel,
            _CurrentPolicy(self),
            sla_ms=lambda: self.sla_ms,
            on_error=self._frame_failed,
        )
        for result in results:
            self._deliver(result)

    def _deliver(self, result: FrameResult) -> None:
        try:
            self.sinks.write(result)
        except Exception as error:  # a full disk must not stop the stream
            self.counts.sink_errors += 1
            log.warning("stream %s: a sink failed: %s", self.spec.id, error)
        self.latest = result
        self.counts.processed += 1
        self.counts.history.append(
            (time.time(), round(result.latency_ms, 3), result.detected)
        )
        self.metrics.observe(self.spec.id, result)
        self.update_gauges()

    def update_gauges(self) -> None:
        drops = self.feed.dropped
        self.metrics.add_drops(self.spec.id, drops - self._reported_drops)
        self._reported_drops = drops
        self.metrics.queue_depth.labels(self.spec.id).set(self.feed.depth)

    def _frame_failed(self, frame: Frame, error: Exception) -> None:
        self.counts.frame_errors += 1
        self.metrics.frame_errors.labels(self.spec.id).inc()
        log.warning("stream %s: skipped frame %d: %s", self.spec.id, frame.index, error)

    def _close_sinks(self) -> None:
        try:
            self.sinks.close()
        except Exception as error:
            log.warning("stream %s: closing its sinks failed: %s", self.spec.id, error)


def _chain(first: Frame, frames):
    yield first
    yield from frames


class _CurrentPolicy:
    """Whatever policy the worker holds now, so `set_branch` can swap an
    adaptive stream's scheduler for a fixed branch under a running loop."""

    def __init__(self, worker: StreamWorker) -> None:
        self.worker = worker

    def decide(self, context: DecisionContext) -> Decision:
        return self.worker.policy.decide(context)

    def observe(self, result: FrameResult) -> None:
        self.worker.policy.observe(result)
