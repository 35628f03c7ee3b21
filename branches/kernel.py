"""`MultiBranchKernel`: runs any branch one frame at a time, with per-stage timings.

A kernel is a `ModelPool` (the process's detectors, loaded once, shared by every
stream) plus one stream's `StreamState` (its tracker, track ids, previous
detections and running branch). A branch only picks a pooled detector and passes
its knobs, so switching branches never reloads weights, and a second stream's
kernel shares the first one's pool. Trackers are cheap objects, made anew when
the branch's tracker or downsample changes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np

from approxrt.branch import Branch, DetectorKnobs
from approxrt.branches.detectors.base import Detector
from approxrt.branches.model_pool import ModelPool
from approxrt.branches.trackers.association import TrackIdAssigner
from approxrt.branches.trackers.base import Tracker
from approxrt.detections import Detections
from approxrt.frame import Frame

TrackerFactory = Callable[[str, int], Tracker]


@dataclass
class StreamState:
    """What one stream carries between frames; nothing in it is shared."""

    branch: Branch | None = None  # the branch of the running group of frames
    tracker: Tracker | None = None
    tracker_key: tuple[str, int] | None = None
    previous: Detections = field(default_factory=Detections.empty)


class MultiBranchKernel:
    """Detect-then-track execution of branches over one stream.

    Args:
        detectors: the shared `ModelPool`, or loaded detectors by family name
            (wrapped in a pool of their own).
        make_tracker: builds a tracker from (kind, downsample).
        assigner: gives detections the track ids of the boxes they continue.
        tracker_min_confidence: only detections at least this confident seed the
            tracker; raising it tracks fewer, surer objects for less time.
        class_ids: keep only these classes (None keeps all); filtering before
            tracking also saves tracker time.
    """

    def __init__(
        self,
        detectors: ModelPool | Mapping[str, Detector],
        make_tracker: TrackerFactory,
        assigner: TrackIdAssigner,
        tracker_min_confidence: float = 0.3,
        class_ids: Collection[int] | None = None,
    ) -> None:
        self.pool = (
            detectors if isinstance(detectors, ModelPool) else ModelPool(detectors)
        )
        self.make_tracker = make_tracker
        self.assigner = assigner
        self.tracker_min_confidence = tracker_min_confidence
        self.class_ids = None if class_ids is None else np.asarray(sorted(class_ids))
        self.state = StreamState()

    @property
    def detectors(self) -> dict[str, Detector]:
        """The pool's loaded detectors by family name."""
        return self.pool.detectors

    @property
    def branch(self) -> Branch | None:
        """The branch of the running group of frames (None before the first)."""
        return self.state.branch

    @property
    def weights(self) -> str:
        """``"pretrained"`` or ``"random"``: the running branch's detector weights."""
        return (
            self.pool.get(self.branch.detector).weights if self.branch else "pretrained"
        )

    def detect(
        self, frame: Frame, branch: Branch
    ) -> tuple[Detections, dict[str, float]]:
        """Run ``branch``'s detector on ``frame``, then `seed` from what it found."""
        found, detector_ms = self.run_detector(frame, branch)
        detections, seed_ms = self.seed(frame, branch, found)
        return detections, {**detector_ms, **seed_ms}

    def run_detector(
        self, frame: Frame, branch: Branch
    ) -> tuple[Detections, dict[str, float]]:
        """``branch``'s detector on ``frame``, classes filtered; no stream state moves.

        Kept apart from `seed` so that cached detections (the profiler's accuracy
        replay) go through the very same association and seeding as live ones.
        """
        found, stage_ms = self.pool.detect(branch.detector, frame.image, branch.knobs)
        start = perf_counter()
        detections = self._keep_classes(found)
        stage_ms["postprocess"] += (perf_counter() - start) * 1e3
        return detections, stage_ms

    def seed(
        self, frame: Frame, branch: Branch, detections: Detections
    ) -> tuple[Detections, dict[str, float]]:
        """Make ``detections`` (``branch``'s on ``frame``) the start of a new group.

        Gives them the track ids of the boxes they continue (stage ``associate``)
        and re-seeds ``branch``'s tracker with the confident ones (stage ``track``).
        """
        self.state.branch = branch
        start = perf_counter()
        detections = self.assigner.assign(detections, self.state.previous)
        self.state.previous = detections
        associated = perf_counter()
        tracker = self._tracker_for(branch)
        if tracker is None:  # every frame detected: no tracker time to count
            return detections, {"associate": (associated - start) * 1e3, "track": 0.0}
        tracker.update(
            detections[detections.confidence >= self.tracker_min_confidence], frame
        )
        return detections, {
            "associate": (associated - start) * 1e3,
            "track": (perf_counter() - associated) * 1e3,
        }

    def track(self, frame: Frame) -> tuple[Detections, dict[str, float]]:
        """Move the last seeded boxes into ``frame``."""
        if self.state.tracker is None:
            raise RuntimeError("track() before any detect(): nothing has been seeded")
        start = perf_counter()
        detections = self.state.tracker.update(None, frame)
        self.state.previous = detections
        return detections, {"track": (perf_counter() - start) * 1e3}

    def reset(self) -> None:
        """Forget tracks and start ids over, e.g. at the start of a new video."""
        self.state = StreamState()
        self.assigner.reset()

    def warmup(
        self,
        kernels: Collection[tuple[str, DetectorKnobs]],
        image: np.ndarray,
        trackers: Collection[tuple[str, int]] = (),
        runs: int = 3,
    ) -> None:
        """Run every (detector, knobs) and tracker ``runs`` times before measuring.

        ``image`` is best a real frame of the stream (see `Detector.warmup`); the
        trackers are seeded with what the first detector finds in it. A detector
        setting the pool already warmed at this image shape is not run again.
        """
        self.pool.warmup(kernels, image, runs=runs)
        seeds = self._warmup_seeds(kernels, image)
        for kind, downsample in trackers:
            tracker = self.make_tracker(kind, downsample)
            for index in range(max(runs, 1) + 1):
                tracker.update(seeds if index == 0 else None, Frame(image, index, 0.0))

    def _warmup_seeds(
        self, kernels: Collection[tuple[str, DetectorKnobs]], image: np.ndarray
    ) -> Detections:
        found = Detections.empty()
        for name, knobs in list(kernels)[:1]:
            found = self.pool.detect(name, image, knobs)[0]
        if len(found):
            return found
        h, w = image.shape[:2]
        box = np.array([[w * 0.4, h * 0.3, w * 0.55, h * 0.7]], np.float32)
        return Detections(box, np.ones(1, np.float32), np.zeros(1, np.int64))

    def _tracker_for(self, branch: Branch) -> Tracker | None:
        state = self.state
        if branch.tracker is None:
            state.tracker, state.tracker_key = None, None
            return None
        key = (branch.tracker, branch.downsample)
        if key != state.tracker_key:
            state.tracker, state.tracker_key = self.make_tracker(*key), key
        return state.tracker

    def _keep_classes(self, detections: Detections) -> Detections:
        if self.class_ids is None:
            return detections
        return detections[np.isin(detections.class_id, self.class_ids)]
