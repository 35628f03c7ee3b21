"""`MultiBranchKernel`: runs any branch one frame at a time, with per-stage timings.

All detectors are loaded once and handed in; a branch only picks one of them and
passes its knobs, so switching branches never reloads weights. Trackers are cheap
objects, made anew when the branch's tracker or downsample changes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from time import perf_counter

import numpy as np

from approxrt.branch import Branch, DetectorKnobs
from approxrt.branches.detectors.base import Detector
from approxrt.branches.trackers.association import TrackIdAssigner
from approxrt.branches.trackers.base import Tracker
from approxrt.detections import Detections
from approxrt.frame import Frame

TrackerFactory = Callable[[str, int], Tracker]


class MultiBranchKernel:
    """Detect-then-track execution of branches over a stream.

    Args:
        detectors: loaded detectors by family name.
        make_tracker: builds a tracker from (kind, downsample).
        assigner: gives detections the track ids of the boxes they continue.
        tracker_min_confidence: only detections at least this confident seed the
            tracker; raising it tracks fewer, surer objects for less time.
        class_ids: keep only these classes (None keeps all); filtering before
            tracking also saves tracker time.
    """

    def __init__(
        self,
        detectors: Mapping[str, Detector],
        make_tracker: TrackerFactory,
        assigner: TrackIdAssigner,
        tracker_min_confidence: float = 0.3,
        class_ids: Collection[int] | None = None,
    ) -> None:
        self.detectors = dict(detectors)
        self.make_tracker = make_tracker
        self.assigner = assigner
        self.tracker_min_confidence = tracker_min_confidence
        self.class_ids = None if class_ids is None else np.asarray(sorted(class_ids))
        self.branch: Branch | None = None  # the branch of the running group of frames
        self._tracker: Tracker | None = None
        self._tracker_key: tuple[str, int] | None = None
        self._previous = Detections.empty()

    @property
    def weights(self) -> str:
        """``"pretrained"`` or ``"random"``: the running branch's detector weights."""
        return (
            self._detector(self.branch.detector).weights
            if self.branch
            else "pretrained"
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
        detector = self._detector(branch.detector)
        start = perf_counter()
        prepared = detector.preprocess(frame.image, branch.knobs)
        preprocessed = perf_counter()
        raw = detector.infer(prepared)
        inferred = perf_counter()
        detections = self._keep_classes(detector.postprocess(raw, prepared))
        postprocessed = perf_counter()
        return detections, {
            "preprocess": (preprocessed - start) * 1e3,
            "infer": (inferred - preprocessed) * 1e3,
            "postprocess": (postprocessed - inferred) * 1e3,
        }

    def seed(
        self, frame: Frame, branch: Branch, detections: Detections
    ) -> tuple[Detections, dict[str, float]]:
        """Make ``detections`` (``branch``'s on ``frame``) the start of a new group.

        Gives them the track ids of the boxes they continue (stage ``associate``)
        and re-seeds ``branch``'s tracker with the confident ones (stage ``track``).
        """
        self.branch = branch
        start = perf_counter()
        detections = self.assigner.assign(detections, self._previous)
        self._previous = detections
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
        if self._tracker is None:
            raise RuntimeError("track() before any detect(): nothing has been seeded")
        start = perf_counter()
        detections = self._tracker.update(None, frame)
        self._previous = detections
        return detections, {"track": (perf_counter() - start) * 1e3}

    def reset(self) -> None:
        """Forget tracks and start ids over, e.g. at the start of a new video."""
        self.branch = None
        self._tracker = None
        self._tracker_key = None
        self._previous = Detections.empty()
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
        trackers are seeded with what the first detector finds in it.
        """
        by_detector: dict[str, list[DetectorKnobs]] = {}
        for name, knobs in kernels:
            by_detector.setdefault(name, []).append(knobs)
        for name, knobs_list in by_detector.items():
            self._detector(name).warmup(knobs_list, image, runs=runs)
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
            found = self._detector(name).detect(image, knobs)
        if len(found):
            return found
        h, w = image.shape[:2]
        box = np.array([[w * 0.4, h * 0.3, w * 0.55, h * 0.7]], np.float32)
        return Detections(box, np.ones(1, np.float32), np.zeros(1, np.int64))

    def _detector(self, name: str) -> Detector:
        try:
            return self.detectors[name]
        except KeyError:
            raise ValueError(
                f"detector {name!r} is not loaded; loaded: {', '.join(self.detectors)}"
            ) from None

    def _tracker_for(self, branch: Branch) -> Tracker | None:
        if branch.tracker is None:
            self._tracker, self._tracker_key = None, None
            return None
        key = (branch.tracker, branch.downsample)
        if key != self._tracker_key:
            self._tracker, self._tracker_key = self.make_tracker(*key), key
        return self._tracker

    def _keep_classes(self, detections: Detections) -> Detections:
        if self.class_ids is None:
            return detections
        return detections[np.isin(detections.class_id, self.class_ids)]
