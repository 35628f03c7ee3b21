"""`DeviceShare`: the adaptive streams of one device planned together.

Without it, each stream of the daemon sees its siblings only as latency it
cannot explain: its correction factor grows, it falls back to a cheaper branch,
its siblings then have room, and every stream learns the others' load late and
separately. With it, every stream's decision hands the share what it predicted
for each of its branches (latency expected and with its margin, accuracy) with
its SLA and its source's frame rate, and gets back an **allotment**: the SLA
divided by the slowdown its siblings' planned load causes, and a latency
ceiling where the joint plan gave some of its time to a sibling.

The joint plan (`plan_streams`) maximises the summed accuracy subject to every
stream's SLA under a simple model of sharing:

- stream ``j`` keeps the device busy a share ``u_j = min(1, fps_j * T_j)`` of
  the time, ``T_j`` being its expected ms per frame beside its siblings (not
  the margin its own SLA check adds; frames arriving faster than it finishes
  them are dropped, so a stream is never more than always busy);
- a frame of stream ``i`` waits for the siblings' frames under way when it
  starts: ``T_i = E_i + overlap * sum_{j != i} u_j * E_j``, ``E`` being each
  stream's expected ms alone. Streams of one detector take turns on it (the
  model pool's lock), so a frame arriving while a sibling's runs waits half of
  it on average: ``overlap`` = 0.5. ``T`` and ``u`` are solved together by
  fixed-point iteration, and a stream's planned latency with its margin is
  scaled by its slowdown ``T_i / E_i``.

It starts every stream at its most accurate branch that fits alone (its
fastest where none does: such a stream does not hold its siblings back), then,
while some stream misses its SLA, takes the one step down some stream's accuracy-
latency frontier that removes the most SLA excess per AP50 lost. What the model
misses is still caught by each stream's latency feedback, which compares the
measured latency with the prediction times the planned slowdown (so siblings
are not counted twice).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from time import monotonic

import numpy as np

MAX_SLOWDOWN_ITERATIONS = 50


@dataclass(frozen=True)
class StreamDemand:
    """One stream's prediction at its latest decision.

    Attributes:
        planned_ms: per branch, the predicted mean ms per frame alone that must
            fit the SLA (with the stream's margin and switching headroom).
        expected_ms: the same without the margin (what loads the device).
        accuracy: per branch, predicted AP50.
        sla_ms: its SLA (None: no target; it still loads the device).
        fps: its source's frame rate; None when unknown (taken as always busy).
    """

    planned_ms: np.ndarray
    expected_ms: np.ndarray
    accuracy: np.ndarray
    sla_ms: float | None
    fps: float | None


@dataclass(frozen=True)
class Allotment:
    """What the joint plan leaves one stream.

    Attributes:
        sla_ms: its SLA over the slowdown its siblings cause (in solo ms).
        ceiling_ms: the most solo ms the plan gives it (inf when unbounded).
        slowdown: planned factor between its solo and shared latency.
        index: the branch the plan chose for it.
    """

    sla_ms: float | None
    ceiling_ms: float
    slowdown: float
    index: int


class DeviceShare:
    """The daemon's streams on one device; thread-safe (streams decide on
    their own threads).

    Args:
        overlap: share of a sibling's frame a frame waits for when it starts
            while that one runs (see the module docstring).
        replan_s: the plan is made again at most this often (a plan of four
            streams takes a few ms; decisions come several times a second per
            stream). Allotments are in ms, so a stream's newer predictions
            are judged against the latest plan in between.
    """

    def __init__(self, overlap: float = 0.5, replan_s: float = 0.25) -> None:
        self.overlap = overlap
        self.replan_s = replan_s
        self._demands: dict[str, StreamDemand] = {}
        self._plan: dict[str, Allotment] = {}
        self._planned_at = -np.inf
        self._lock = threading.Lock()

    def allot(self, stream_id: str, demand: StreamDemand) -> Allotment:
        """Record ``stream_id``'s latest demand; its part of the (fresh) plan."""
        with self._lock:
            self._demands[stream_id] = demand
            now = monotonic()
            if stream_id not in self._plan or now - self._planned_at >= self.replan_s:
                self._plan = plan_streams(self._demands, self.overlap)
                self._planned_at = now
            return self._plan[stream_id]

    def leave(self, stream_id: str) -> None:
        with self._lock:
            self._demands.pop(stream_id, None)
            self._plan.pop(stream_id, None)
            self._planned_at = -np.inf  # its time is free at once

    @property
    def streams(self) -> list[str]:
        with self._lock:
            return sorted(self._demands)


def plan_streams(
    demands: dict[str, StreamDemand], overlap: float = 0.5
) -> dict[str, Allotment]:
    """The joint plan of the module docstring, one `Allotment` per stream."""
    ids = sorted(demands)
    problem = _Problem([demands[i] for i in ids], overlap)
    position = problem.best_alone()
    while True:
        excess = problem.excess(position[None])[0]
        if excess == 0.0:
            break
        step = problem.best_step_down(position, excess)
        if step is None:
            break
        position[step] -= 1
    problem.climb(position)
    ms = problem.ms(position[None])
    slowdown = problem.slowdowns(position[None])[0]
    plan = {}
    for k, stream_id in enumerate(ids):
        sla = demands[stream_id].sla_ms
        top = position[k] == problem.sizes[k] - 1
        plan[stream_id] = Allotment(
            sla_ms=None if sla is None else sla / slowdown[k],
            ceiling_ms=float("inf") if top else float(ms[0, k]),
            slowdown=float(slowdown[k]),
            index=int(problem.frontiers[k][position[k]]),
        )
    return plan


class _Problem:
    """The streams' frontiers as padded ``(stream, position)`` arrays, so that
    many candidate plans (rows of positions) are scored at once."""

    def __init__(self, demands: list[StreamDemand], overlap: float) -> None:
        self.frontiers = [_frontier(d) for d in demands]
        self.sizes = np.array([len(f) for f in self.frontiers])
        width = int(self.sizes.max())
        shape = (len(demands), width)
        self.frontier_ms = np.full(shape, np.inf)  # with margin: the SLA check
        self.frontier_expected = np.full(shape, np.inf)  # without: the load
        self.frontier_ap = np.full(shape, -np.inf)
        for k, (demand, frontier) in enumerate(
            zip(demands, self.frontiers, strict=True)
        ):
            self.frontier_ms[k, : len(frontier)] = demand.planned_ms[frontier]
            self.frontier_expected[k, : len(frontier)] = demand.expected_ms[frontier]
            self.frontier_ap[k, : len(frontier)] = demand.accuracy[frontier]
        self.fps = np.array([d.fps or np.inf for d in demands])
        self.plain_sla = np.array(
            [np.inf if d.sla_ms is None else d.sla_ms for d in demands]
        )
        # A stream whose fastest branch alone misses its SLA runs that branch,
        # and its SLA counts for none: its siblings are not slowed for it.
        self.pinned = np.array([d.planned_ms.min() for d in demands]) > self.plain_sla
        self.sla = np.where(self.pinned, np.inf, self.plain_sla)
        self.overlap = overlap
        self._rows = np.arange(len(demands))

    def best_alone(self) -> np.ndarray:
        """Each stream's most accurate position that fits alone (else 0)."""
        fits = self.frontier_ms <= self.plain_sla[:, None]
        return np.where(fits.any(1), fits.sum(1) - 1, 0)

    def ms(self, positions: np.ndarray) -> np.ndarray:
        return self.frontier_ms[self._rows, positions]

    def accuracy(self, positions: np.ndarray) -> np.ndarray:
        return self.frontier_ap[self._rows, positions].sum(1)

    def slowdowns(self, positions: np.ndarray) -> np.ndarray:
        """Per plan and stream, ``T / E`` (the module docstring's fixed point)."""
        alone = self.frontier_expected[self._rows, positions]
        shared = alone
        for _ in range(MAX_SLOWDOWN_ITERATIONS):
            busy = np.minimum(1.0, self.fps * shared / 1e3)
            busy = np.where(np.isnan(busy), 1.0, busy)  # unknown fps x 0 ms
            waits = busy * alone
            updated = alone + self.overlap * (waits.sum(1, keepdims=True) - waits)
            if np.abs(updated - shared).max() < 1e-6:
                break
            shared = updated
        return updated / np.maximum(alone, 1e-9)

    def excess(self, positions: np.ndarray) -> np.ndarray:
        """Per plan, the summed relative SLA excess of its streams."""
        ms = self.ms(positions)
        shared = ms * self.slowdowns(positions)
        return np.sum(np.maximum(0.0, shared - self.sla) / self.sla, axis=1)

    def best_step_down(self, position: np.ndarray, excess: float) -> int | None:
        """The stream whose one step down removes the most excess per AP50 lost."""
        movable = np.flatnonzero(position > 0)
        if not len(movable):
            return None
        lower = np.repeat(position[None], len(movable), 0)
        lower[np.arange(len(movable)), movable] -= 1
        removed = excess - self.excess(lower)
        lost = self.accuracy(position[None])[0] - self.accuracy(lower)
        score = np.where(removed > 0, removed / (lost + 1e-6), 0.0)
        best = int(np.argmax(score))
        return int(movable[best]) if score[best] > 0 else None

    def climb(self, position: np.ndarray) -> None:
        """Take back steps that still fit, the most AP50 first: one stream one
        step up, or one up while a sibling goes one down (a step down taken
        early can leave room the later ones did not need)."""
        excess = self.excess(position[None])[0]
        while True:
            moves = self._neighbours(position)
            if not len(moves):
                return
            allowed = self.excess(moves) <= excess + 1e-12
            gain = np.where(allowed, self.accuracy(moves), -np.inf) - self.accuracy(
                position[None]
            )
            best = int(np.argmax(gain))
            if gain[best] <= 1e-9:
                return
            position[:] = moves[best]

    def _neighbours(self, position: np.ndarray) -> np.ndarray:
        n = len(position)
        up = np.repeat(position[None], n, 0) + np.eye(n, dtype=position.dtype)
        up = up[(position + 1 < self.sizes) & ~self.pinned]
        swaps = [
            row - np.eye(n, dtype=position.dtype)[j]
            for row in up
            for j in range(n)
            if row[j] > 0 and row[j] == position[j]
        ]
        return np.concatenate([up, np.array(swaps).reshape(-1, n)]).astype(int)


def _frontier(demand: StreamDemand) -> np.ndarray:
    """Branch indices by rising latency, each more accurate than all cheaper."""
    order = np.lexsort((-demand.accuracy, demand.planned_ms))
    best_so_far = np.maximum.accumulate(demand.accuracy[order])
    keep = np.r_[True, demand.accuracy[order][1:] > best_so_far[:-1]]
    kept = order[keep & np.isfinite(demand.planned_ms[order])]
    return kept if len(kept) else order[:1]


class SourceRate:
    """A source's frame rate from its frames' indices and capture times (frames
    dropped on the way still count: the rate is what the camera sends)."""

    def __init__(self, window: int = 32) -> None:
        self._seen: deque[tuple[int, float]] = deque(maxlen=window)

    def update(self, frame) -> None:
        self._seen.append((frame.index, frame.timestamp_s))

    @property
    def fps(self) -> float | None:
        if len(self._seen) < 2:
            return None
        (first, t0), (last, t1) = self._seen[0], self._seen[-1]
        return (last - first) / (t1 - t0) if t1 > t0 and last > first else None
