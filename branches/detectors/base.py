"""The detector contract: three timed stages over one set of weights.

A detector is loaded and warmed once; `DetectorKnobs` (input size, proposals) are
arguments of every call, so switching them never reloads weights.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from approxrt.branch import DetectorKnobs
from approxrt.detections import Detections


@dataclass
class Prepared:
    """What `Detector.preprocess` hands to `infer` and `postprocess`.

    Attributes:
        inputs: the network input (numpy array or torch tensor).
        knobs: the knobs it was prepared for.
        image_hw: ``(height, width)`` of the original frame.
        scale: network pixels per frame pixel.
        extra: anything else a detector needs to map outputs back.
    """

    inputs: Any
    knobs: DetectorKnobs
    image_hw: tuple[int, int]
    scale: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PostprocessConfig:
    """Shared post-processing settings.

    Attributes:
        score_threshold: boxes scoring below this are dropped; lower keeps more
            low-confidence boxes (higher recall for AP, more tracker seeds).
        nms_iou_threshold: a box overlapping a higher-scored box of its class by
            more than this IoU is suppressed; raising it keeps more overlapping boxes.
        max_detections: boxes kept per frame after NMS.
    """

    score_threshold: float = 0.05
    nms_iou_threshold: float = 0.45
    max_detections: int = 100


class Detector(ABC):
    """One set of detector weights, run at any of its knob settings.

    Subclasses set the class attributes and implement the three stages. `infer`
    returns only when the result is ready (it synchronises a GPU), so timing each
    stage from the outside is honest.
    """

    name: ClassVar[str]
    two_stage: ClassVar[bool] = False
    # Input sizes must be multiples of this and inside [min, max].
    size_step: ClassVar[int] = 32
    min_input_size: ClassVar[int] = 128
    max_input_size: ClassVar[int] = 1280
    default_input_size: ClassVar[int] = 416
    # Whether several threads may run this detector at once; the model pool puts
    # a lock around detectors that say no (e.g. knobs stored on the model).
    thread_safe: ClassVar[bool] = False
    # Whether `detect_batch_timed` runs several frames in one call; the model pool
    # batches concurrent streams' frames only for detectors that say yes.
    batchable: bool = False

    # "pretrained" or "random"; random weights are for latency work only.
    weights: str = "pretrained"

    @classmethod
    def knob_problem(cls, knobs: DetectorKnobs) -> str | None:
        """Why ``knobs`` are invalid for this family, or None when they are fine."""
        size = knobs.input_size
        if size % cls.size_step or not cls.min_input_size <= size <= cls.max_input_size:
            return (
                f"{cls.name} input_size {size}: must be a multiple of {cls.size_step} "
                f"in [{cls.min_input_size}, {cls.max_input_size}]"
            )
        if knobs.proposals is not None and not cls.two_stage:
            return f"{cls.name} is a one-stage detector: it has no proposals knob"
        if knobs.proposals is None and cls.two_stage:
            return f"{cls.name} is a two-stage detector: give a proposals knob (/p<n>)"
        return None

    def check_knobs(self, knobs: DetectorKnobs) -> None:
        problem = self.knob_problem(knobs)
        if problem:
            raise ValueError(problem)

    @abstractmethod
    def preprocess(self, image: np.ndarray, knobs: DetectorKnobs) -> Prepared:
        """Turn a ``(h, w, 3) uint8`` BGR frame into the network input."""

    @abstractmethod
    def infer(self, prepared: Prepared) -> Any:
        """Run the network; returns raw outputs."""

    @abstractmethod
    def postprocess(self, raw: Any, prepared: Prepared) -> Detections:
        """Decode, threshold and NMS raw outputs into frame-pixel `Detections`."""

    def detect(self, image: np.ndarray, knobs: DetectorKnobs) -> Detections:
        """All three stages, untimed."""
        prepared = self.preprocess(image, knobs)
        return self.postprocess(self.infer(prepared), prepared)

    def warmup(
        self, knobs_list: list[DetectorKnobs], image: np.ndarray, runs: int = 3
    ) -> None:
        """Run each knob setting ``runs`` times: first-call costs stay out of stats.

        ``image`` should be a real frame of the stream: on noise a detector finds
        nothing, and its first real NMS would then be paid in a measured frame.
        """
        for knobs in knobs_list:
            self.check_knobs(knobs)
            for _ in range(runs):
                self.detect(image, knobs)
