"""`DetectorBatcher`: one batched detector call for frames that streams ask at once.

Each daemon stream runs in its own thread and calls ``detect(frame, knobs)`` as
if it were alone. Requests for one kernel (the same knobs and frame shape) queue
together; the first caller leads: it waits up to ``wait_ms`` for the other
streams that used this kernel in the last second (never when it is the only
one), takes up to ``max_frames`` queued frames and runs them in one
`detect_batch_timed` call, and every caller gets its own frame's detections.
While a batch runs, the next callers queue, so a busy GPU batches even with no
wait; that is the default, as a wait costs its length at camera rates, where
the other streams' frames seldom come (gpu.md measures both). A batch is padded
to a power of two (1, 2, 4, 8...) so that the graph route needs one CUDA graph
per padded size, all captured at warm-up, rather than one per count.

Failures never hang a stream: a bad frame or knob is refused to its caller alone
before it queues; an error in a batched call is raised in every caller of that
batch; a caller that waits past ``timeout_s`` gets a `TimeoutError`.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors.base import Detector
from approxrt.branches.detectors.postprocess import check_image
from approxrt.detections import Detections

# A stream that has not asked for a kernel for this long is no longer waited
# for: a second covers a detection every 20-30 frames at camera rates.
ACTIVE_WINDOW_S = 1.0

Key = tuple[DetectorKnobs, tuple[int, ...]]


@dataclass(frozen=True)
class BatchSettings:
    """How concurrent streams' frames are batched (`default.yaml`'s ``batch_*``).

    Attributes:
        max_frames: most frames in one call; raising it serves more streams per
            call at a longer call.
        wait_ms: longest a leading frame waits for the other active streams'
            frames; raising it makes fuller batches on a saturated GPU and adds
            up to this much latency when the others' frames do not come.
        timeout_s: longest a caller waits for its detections before a
            `TimeoutError` (a stuck device must not hang a stream).
    """

    max_frames: int = 8
    wait_ms: float = 0.0
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_frames < 1:
            raise ValueError(f"max_frames: expected >= 1, got {self.max_frames}")
        if self.wait_ms < 0 or self.timeout_s <= 0:
            raise ValueError(
                f"wait_ms >= 0 and timeout_s > 0 expected, got {self.wait_ms} "
                f"and {self.timeout_s}"
            )


@dataclass(eq=False)
class _Request:
    image: np.ndarray
    deadline_s: float
    detections: Detections | None = None
    stage_ms: dict[str, float] = field(default_factory=dict)
    error: BaseException | None = None
    done: bool = False

    def finish(self, detections=None, stage_ms=None, error=None) -> None:
        if self.done:  # it timed out meanwhile: its caller has gone
            return
        self.detections, self.error, self.done = detections, error, True
        self.stage_ms = dict(stage_ms or {})

    def outcome(self) -> tuple[Detections, dict[str, float]]:
        if self.error is not None:
            raise self.error
        return self.detections, self.stage_ms


class DetectorBatcher:
    """Batches concurrent ``detect`` calls on one batchable detector.

    Args:
        detector: a detector whose ``batchable`` is true.
        run_lock: held around every call of the detector, shared with the model
            pool's other uses of it (warm-up).
        settings: batch size, wait and timeout.
    """

    def __init__(
        self,
        detector: Detector,
        run_lock: threading.Lock,
        settings: BatchSettings | None = None,
    ) -> None:
        if not detector.batchable:
            raise ValueError(f"detector {detector.name!r} cannot run batches")
        self.detector = detector
        self.run_lock = run_lock
        self.settings = settings or BatchSettings()
        self.batch_sizes = _powers_of_two_up_to(self.settings.max_frames)
        self.calls = 0  # batched calls run
        self.frames = 0  # frames they held (padding not counted)
        self._cond = threading.Condition()
        self._queues: dict[Key, deque[_Request]] = {}
        self._leading: set[Key] = set()
        self._callers: dict[Key, dict[int, float]] = {}

    def detect(
        self, image: np.ndarray, knobs: DetectorKnobs
    ) -> tuple[Detections, dict[str, float]]:
        """``image``'s detections and the stages of the call that found them (ms).

        Raises:
            ValueError: a bad frame or knobs (this caller only).
            TimeoutError: no result within ``timeout_s``.
            Exception: whatever the batched call raised.
        """
        self.detector.check_knobs(knobs)
        check_image(image)
        key = (knobs, image.shape)
        request = _Request(image, perf_counter() + self.settings.timeout_s)
        with self._cond:
            self._queues.setdefault(key, deque()).append(request)
            self._callers.setdefault(key, {})[threading.get_ident()] = perf_counter()
            self._cond.notify_all()  # a waiting leader may now have a full batch
            leads = self._await_turn(key, request)
        if leads:
            self._lead(key, request)
        return request.outcome()

    def queued_frames(self) -> int:
        """Frames waiting for a batched call now, over every kernel."""
        with self._cond:
            return sum(len(queue) for queue in self._queues.values())

    def warmup(self, knobs: DetectorKnobs, image: np.ndarray, runs: int = 1) -> None:
        """Run every padded batch size on copies of ``image``: each size's graph
        is built here, not in a measured frame."""
        with self.run_lock:
            for size in self.batch_sizes[1:]:
                for _ in range(runs):
                    self.detector.detect_batch_timed([image] * size, knobs)

    def _await_turn(self, key: Key, request: _Request) -> bool:
        """Under the condition: True when this caller must lead, False once its
        request is finished (by a leader, or by its own timeout)."""
        while not request.done:
            if key not in self._leading:
                self._leading.add(key)
                return True
            remaining_s = request.deadline_s - perf_counter()
            if remaining_s <= 0:
                self._give_up(key, request)
            else:
                self._cond.wait(remaining_s)
        return False

    def _lead(self, key: Key, request: _Request) -> None:
        """Run batches of ``key`` until this caller's frame is done; then hand
        the lead to a waiting caller, if any."""
        try:
            while not request.done:
                self._run_one_batch(key, request)
        finally:
            with self._cond:
                self._leading.discard(key)
                self._cond.notify_all()

    def _run_one_batch(self, key: Key, leader: _Request) -> None:
        self._gather(key, leader)
        if not self.run_lock.acquire(
            timeout=max(leader.deadline_s - perf_counter(), 0)
        ):
            with self._cond:
                self._give_up(key, leader)
            return
        try:
            with self._cond:
                queue = self._queues[key]
                batch = [
                    queue.popleft()
                    for _ in range(min(len(queue), self.settings.max_frames))
                ]
            results = self._call(batch, key[0])
        finally:
            self.run_lock.release()
        with self._cond:
            for request, (detections, stage_ms, error) in zip(
                batch, results, strict=True
            ):
                request.finish(detections, stage_ms, error)
            self._cond.notify_all()

    def _gather(self, key: Key, leader: _Request) -> None:
        """Wait up to ``wait_ms`` until every stream active on ``key`` has queued
        a frame (no wait for a stream alone on its kernel)."""
        with self._cond:
            expected = min(self._active_callers(key), self.settings.max_frames)
            until_s = min(
                perf_counter() + self.settings.wait_ms / 1e3, leader.deadline_s
            )
            queue = self._queues[key]
            while len(queue) < expected and (left_s := until_s - perf_counter()) > 0:
                self._cond.wait(left_s)

    def _call(self, batch: list[_Request], knobs: DetectorKnobs) -> list[tuple]:
        """One padded batched call; each request's (detections, stage_ms, error)."""
        size = next(s for s in self.batch_sizes if s >= len(batch))
        images = [r.image for r in batch]
        images += [images[-1]] * (size - len(images))
        try:
            found, stage_ms = self.detector.detect_batch_timed(images, knobs)
        except Exception as error:  # every caller of this batch gets it, none hangs
            return [(None, None, error)] * len(batch)
        self.calls += 1
        self.frames += len(batch)
        return [(detections, stage_ms, None) for detections in found[: len(batch)]]

    def _active_callers(self, key: Key) -> int:
        now_s = perf_counter()
        callers = self._callers[key]
        for ident in [
            i for i, seen_s in callers.items() if now_s - seen_s > ACTIVE_WINDOW_S
        ]:
            del callers[ident]
        return len(callers)

    def _give_up(self, key: Key, request: _Request) -> None:
        """Under the condition: finish ``request`` with a `TimeoutError`."""
        queue = self._queues[key]
        if request in queue:
            queue.remove(request)
        request.finish(
            error=TimeoutError(
                f"{self.detector.name}: no detections within "
                f"{self.settings.timeout_s:g} s (batch_timeout_s)"
            )
        )


def _powers_of_two_up_to(max_frames: int) -> list[int]:
    sizes = [1]
    while sizes[-1] * 2 <= max_frames:
        sizes.append(sizes[-1] * 2)
    if sizes[-1] != max_frames:
        sizes.append(max_frames)
    return sizes
