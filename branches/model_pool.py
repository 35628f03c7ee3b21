"""`ModelPool`: the detectors of a process, loaded and warmed once, shared by streams.

Every stream's kernel holds the same pool, so adding a stream never loads weights
twice. Streams run in threads of their own: a detector that is not thread-safe
(Faster R-CNN writes its knobs into the model) is called under a lock of its own,
so two streams on one such detector take turns; thread-safe ones (ONNX Runtime
sessions) run concurrently. With ``batching`` set, a detector that can run
batches (the torch route on CUDA) is called through a `DetectorBatcher`: the
frames streams ask for at once go through one batched call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from time import perf_counter

import numpy as np

from approxrt.branch import DetectorKnobs
from approxrt.branches.batching import BatchSettings, DetectorBatcher
from approxrt.branches.detectors.base import Detector
from approxrt.detections import Detections

DetectorLoader = Callable[[str], Detector]


class ModelPool:
    """Detectors by family name, each loaded once and callable from any thread.

    Args:
        detectors: detectors already loaded, by family name.
        load: loads a family by name; `require` calls it for the ones missing.
            Without it, only ``detectors`` are available.
        batching: batch concurrent streams' frames on detectors that can run
            batches; None calls every detector one frame at a time.
    """

    def __init__(
        self,
        detectors: Mapping[str, Detector] | None = None,
        load: DetectorLoader | None = None,
        batching: BatchSettings | None = None,
    ) -> None:
        self._load = load
        self.batching = batching
        self._detectors: dict[str, Detector] = {}
        self._locks: dict[str, contextlib.AbstractContextManager] = {}
        self._batchers: dict[str, DetectorBatcher] = {}
        self._warmed: set[tuple[str, DetectorKnobs, tuple[int, ...]]] = set()
        self._loading: dict[str, threading.Lock] = {}
        # Guards the dictionaries above while streams are added concurrently.
        self._guard = threading.RLock()
        for name, detector in (detectors or {}).items():
            self._add(name, detector)

    @property
    def detectors(self) -> dict[str, Detector]:
        """The loaded detectors by family name (a copy)."""
        with self._guard:
            return dict(self._detectors)

    def require(self, names: Iterable[str]) -> None:
        """Load every family in ``names`` not loaded yet.

        Raises:
            ValueError: a family is missing and the pool has no loader.
        """
        for name in names:
            with self._guard:
                if name in self._detectors:
                    continue
                if self._load is None:
                    raise ValueError(
                        f"detector {name!r} is not loaded and this pool cannot load"
                    )
                loading = self._loading.setdefault(name, threading.Lock())
            with loading:  # one load per family, even when two streams ask at once
                if name in self.detectors:
                    continue
                # Loading takes seconds: outside the guard, running streams go on.
                detector = self._load(name)
                with self._guard:
                    self._add(name, detector)

    def get(self, name: str) -> Detector:
        """The loaded detector ``name``; a clear error names the loaded ones."""
        with self._guard:
            detector = self._detectors.get(name)
        if detector is None:
            raise ValueError(
                f"detector {name!r} is not loaded; loaded: "
                f"{', '.join(self._detectors) or 'none'}"
            )
        return detector

    def detect(
        self, name: str, image: np.ndarray, knobs: DetectorKnobs
    ) -> tuple[Detections, dict[str, float]]:
        """Run detector ``name`` at ``knobs`` on ``image``, each stage timed in ms.

        Time spent waiting for another stream's turn on the detector, or for a
        batch to fill, is not in the stages (the caller's wall clock still sees
        it); a batched frame's stages are those of the call that held it.
        """
        detector = self.get(name)
        batcher = self.batcher(name)
        if batcher is not None:
            return batcher.detect(image, knobs)
        with self._locks[name]:
            start = perf_counter()
            prepared = detector.preprocess(image, knobs)
            preprocessed = perf_counter()
            raw = detector.infer(prepared)
            inferred = perf_counter()
            detections = detector.postprocess(raw, prepared)
            postprocessed = perf_counter()
        return detections, {
            "preprocess": (preprocessed - start) * 1e3,
            "infer": (inferred - preprocessed) * 1e3,
            "postprocess": (postprocessed - inferred) * 1e3,
        }

    def batcher(self, name: str) -> DetectorBatcher | None:
        """The batcher detector ``name`` is called through, or None."""
        with self._guard:
            return self._batchers.get(name)

    def warmup(
        self,
        kernels: Collection[tuple[str, DetectorKnobs]],
        image: np.ndarray,
        runs: int = 3,
    ) -> None:
        """Run each (detector, knobs) ``runs`` times on ``image``, once per process.

        A setting already warmed on an image of the same shape is skipped: a new
        stream of a known size costs no warm-up, a new size (a new input shape)
        does.
        """
        for name, knobs in dict.fromkeys(kernels):
            key = (name, knobs, tuple(image.shape))
            with self._guard:
                if key in self._warmed:
                    continue
            detector = self.get(name)
            with self._locks[name]:
                detector.warmup([knobs], image, runs=runs)
            batcher = self.batcher(name)
            if batcher is not None:
                batcher.warmup(knobs, image)
            with self._guard:
                self._warmed.add(key)

    def _add(self, name: str, detector: Detector) -> None:
        self._detectors[name] = detector
        batched = self.batching is not None and getattr(detector, "batchable", False)
        if getattr(detector, "thread_safe", False) and not batched:
            self._locks[name] = contextlib.nullcontext()
            return
        lock = threading.Lock()
        self._locks[name] = lock
        if batched:
            self._batchers[name] = DetectorBatcher(detector, lock, self.batching)
