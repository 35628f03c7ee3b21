"""The unit the latency profiler is built from: a `Cell` measured at one `Visit`.

A visit is one contention level, set once; every cell planned for it is then
measured back to back, and each cell's rows get the level's columns. Cells are
planned up front (so the progress bar knows its total) and do their work only
when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np

from approxrt.branch import Branch, DetectorKnobs
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.contention import ContentionLevels
from approxrt.detections import Detections
from approxrt.frame import Frame

# One sample: column name -> value, the contention columns still missing.
Row = dict[str, Any]

# Kernel stages of `FrameResult.timings_ms`; the loop's overhead is the rest.
KERNEL_STAGES = ("preprocess", "infer", "postprocess", "associate", "track")
DETECTOR_STAGES = ("preprocess", "infer", "postprocess")


@dataclass(frozen=True)
class Visit:
    """One contention level, visited once.

    Attributes:
        levels: what the generator is asked for.
        fitted: on the fitted grid; False for a held-out level, where only the
            detector cells, the loop overhead and the branch validation run.
        full: gets the full tracker grid and every switching pair (the idle
            level); other fitted levels get the sparse subsets.
        validate: whole branches run end to end here (`latency/branches`).
    """

    levels: ContentionLevels
    fitted: bool
    full: bool
    validate: bool


@dataclass(frozen=True)
class Cell:
    """One unit of measurement: ``measure()`` returns rows of ``table``.

    ``guess_ms`` is a rough idle-device guess of its time, so the progress bar's
    time left weighs a crowded tracker cell above a detector one.
    """

    table: str
    label: str
    measure: Callable[[], list[Row]]
    guess_ms: float


def guess_detector_ms(knobs: DetectorKnobs) -> float:
    """About what one detector call costs on a 2-core CPU (8 ms at 416, ~side^2)."""
    return 8.0 * (knobs.input_size / 416) ** 2


def guess_tracker_ms(objects: float, size_px: float, downsample: int) -> float:
    """About what one tracker call costs: per object, ~its patch's area."""
    return 0.5 + objects * (0.3 + (size_px / downsample) ** 2 / 4000)


def kernel_columns(detector: str, knobs: DetectorKnobs, prefix: str = "") -> Row:
    """The schema's kernel columns; proposals is 0 for one-stage detectors."""
    return {
        f"{prefix}detector": detector,
        f"{prefix}input_size": knobs.input_size,
        f"{prefix}proposals": knobs.proposals or 0,
    }


def kernel_branch(detector: str, knobs: DetectorKnobs) -> Branch:
    """The every-frame branch of a kernel: what `run_detector` needs to pick it."""
    return Branch(detector, knobs.input_size, knobs.proposals)


def run_detector_ms(
    kernel: MultiBranchKernel, frame: Frame, branch: Branch
) -> dict[str, float]:
    """Stage ms of one detector call, with ``total`` (the three stages together)."""
    _, stage_ms = kernel.run_detector(frame, branch)
    timings = {stage: stage_ms[stage] for stage in DETECTOR_STAGES}
    return {**timings, "total": sum(timings.values())}


def timed(call: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """What ``call(*args)`` returns, and its wall ms."""
    start = perf_counter()
    result = call(*args)
    return result, (perf_counter() - start) * 1e3


def timed_ms(call: Callable[..., Any], *args: Any) -> float:
    """Wall ms of ``call(*args)``."""
    return timed(call, *args)[1]


def object_size_px(boxes: Detections) -> float:
    """Square root of the mean box area, in the boxes' own pixels (0 for none)."""
    return float(np.sqrt(boxes.area.mean())) if len(boxes) else 0.0
