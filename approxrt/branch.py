"""`Branch`: one point of the approximation space, as a frozen value with a name.

A branch is (detector, its knobs, sampling interval, tracker, tracker downsample).
Its name ``<detector>/s<size>[/p<proposals>]/si<n>[/<tracker>[/ds<k>]]`` is what the
CLI, profiles, logs and plots use, and ``Branch.parse(str(b)) == b`` always holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(
    r"^(?P<detector>[a-z][a-z0-9_]*)"
    r"/s(?P<input_size>\d+)"
    r"(?:/p(?P<proposals>\d+))?"
    r"/si(?P<sampling_interval>\d+)"
    r"(?:/(?P<tracker>[a-z][a-z0-9_]*)(?:/ds(?P<downsample>\d+))?)?$"
)
_NAME_SHAPE = "<detector>/s<size>[/p<proposals>]/si<n>[/<tracker>[/ds<k>]]"


@dataclass(frozen=True)
class DetectorKnobs:
    """The detector's run-time knobs; switching them never reloads weights.

    Attributes:
        input_size: network input side in pixels (square side for one-stage
            detectors, shorter side for Faster R-CNN). Raising it finds smaller
            objects and costs roughly quadratically more time.
        proposals: RPN proposals kept for the second stage (two-stage detectors
            only, else None). Raising it recovers more objects in crowded frames.
    """

    input_size: int
    proposals: int | None = None

    def __str__(self) -> str:
        return f"s{self.input_size}" + (f"/p{self.proposals}" if self.proposals else "")


@dataclass(frozen=True)
class Branch:
    """One approximation branch.

    Attributes:
        detector: detector family name, e.g. ``yolox_nano``.
        input_size: see `DetectorKnobs`.
        proposals: see `DetectorKnobs`.
        sampling_interval: frames per group of frames (GoF); the detector runs on
            the first, the tracker on the other ``sampling_interval - 1``. Raising it
            saves detector time and loses accuracy as objects move and appear.
        tracker: tracker kind filling the non-detection frames, None when
            ``sampling_interval == 1``.
        downsample: the tracker sees the frame shrunk by this factor on each side.
            Raising it makes tracking cheaper and less precise.
    """

    detector: str
    input_size: int
    proposals: int | None = None
    sampling_interval: int = 1
    tracker: str | None = None
    downsample: int = 1

    def __post_init__(self) -> None:
        for name in ("input_size", "sampling_interval", "downsample"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"Branch.{name}: expected a positive int, got {value!r}"
                )
        if self.proposals is not None and (
            not isinstance(self.proposals, int) or self.proposals < 1
        ):
            raise ValueError(
                "Branch.proposals: expected a positive int or None, "
                f"got {self.proposals!r}"
            )
        if self.sampling_interval == 1 and self.tracker is not None:
            raise ValueError(
                f"Branch: tracker {self.tracker!r} given with sampling_interval 1; "
                "every frame is detected, so there is nothing to track"
            )
        if self.sampling_interval > 1 and self.tracker is None:
            raise ValueError(
                f"Branch: sampling_interval {self.sampling_interval} needs a tracker "
                "to fill frames 1..si-1 of each group of frames"
            )
        if self.tracker is None and self.downsample != 1:
            raise ValueError("Branch.downsample: only meaningful with a tracker")

    @property
    def knobs(self) -> DetectorKnobs:
        return DetectorKnobs(self.input_size, self.proposals)

    @property
    def kernel(self) -> tuple[str, DetectorKnobs]:
        """(detector, knobs): what switching cost is measured between."""
        return self.detector, self.knobs

    def __str__(self) -> str:
        name = f"{self.detector}/{self.knobs}/si{self.sampling_interval}"
        if self.tracker is not None:
            name += f"/{self.tracker}/ds{self.downsample}"
        return name

    @classmethod
    def parse(cls, name: str) -> Branch:
        """A branch from its name; ``ds`` defaults to 1 when a tracker is given."""
        match = _NAME.match(name.strip()) if isinstance(name, str) else None
        if match is None:
            raise ValueError(
                f"branch name {name!r} does not have the shape {_NAME_SHAPE}, "
                "e.g. yolox_nano/s416/si1 or yolox_nano/s320/si4/medianflow/ds2"
            )
        parts = match.groupdict()
        return cls(
            detector=parts["detector"],
            input_size=int(parts["input_size"]),
            proposals=int(parts["proposals"]) if parts["proposals"] else None,
            sampling_interval=int(parts["sampling_interval"]),
            tracker=parts["tracker"],
            downsample=int(parts["downsample"] or 1),
        )
