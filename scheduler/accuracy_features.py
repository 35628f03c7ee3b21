"""Numbers the accuracy models read: a branch's knobs and a segment's content.

`KnobEncoder` turns knobs into a row of numbers whose products with content
features carry the physics of accuracy: log sampling interval times a tracker
(a weak tracker loses more per extra tracked frame), log input size (small
inputs miss small objects), log downsample on tracked branches.

`ContentEncoder` turns content features into a standardised vector: light ones
(``objects``, ``object_size_px``, ``object_speed_px`` and the frame) as
log object count, log object size relative to the frame, and speed relative
to the object's own size (what a tracker loses per frame); each heavy feature
(``hog_0..``, ``color_hist_0..``) reduced to its first principal components on
the training segments, because a few dozen segments cannot fit hundreds of
weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from approxrt.branch import Branch
from approxrt.scheduler.model_io import ModelReader

# Sizes below this (px) are treated as this: keeps relative speed finite.
_MIN_SIZE_PX = 4.0

LIGHT_NAMES = ("log_objects", "log_relative_size", "relative_speed", "log_frame_mpx")


@dataclass(frozen=True)
class KnobEncoder:
    """Knobs to ``(n, columns)`` float64; detectors and trackers as seen in fitting.

    A detector or tracker not seen in fitting gets all-zero one-hot columns: it
    is predicted as the average one.
    """

    detectors: tuple[str, ...]
    trackers: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [
            "intercept",
            *(f"detector={d}" for d in self.detectors),
            "log2_input_size",
            "log2_proposals",
            "log2_sampling_interval",
            "log2_downsample",
            *(f"tracker={t}_x_log2_sampling_interval" for t in self.trackers),
        ]

    def encode(
        self,
        detector: Sequence[str],
        input_size: Sequence[float],
        proposals: Sequence[float],
        sampling_interval: Sequence[float],
        tracker: Sequence[str | None],
        downsample: Sequence[float],
    ) -> np.ndarray:
        """One row per branch; ``proposals`` 0/None and ``tracker`` ""/None allowed."""
        n = len(detector)
        log_si = np.log2(np.asarray(sampling_interval, np.float64))
        # Tables write "" (pandas may read None or NaN) for an untracked branch.
        tracked = np.array([isinstance(t, str) and t != "" for t in tracker])
        proposals = np.array(
            [p if p is not None and np.isfinite(p) and p > 0 else 1 for p in proposals],
            np.float64,
        )
        parts = [
            np.ones((n, 1)),
            _one_hot(detector, self.detectors),
            np.log2(np.asarray(input_size, np.float64) / 320)[:, None],
            np.log2(proposals)[:, None],
            log_si[:, None],
            (np.log2(np.asarray(downsample, np.float64)) * tracked)[:, None],
            _one_hot(tracker, self.trackers) * log_si[:, None],
        ]
        return np.hstack(parts)

    def encode_branches(self, branches: Sequence[Branch]) -> np.ndarray:
        return self.encode(
            [b.detector for b in branches],
            [b.input_size for b in branches],
            [b.proposals or 0 for b in branches],
            [b.sampling_interval for b in branches],
            [b.tracker for b in branches],
            [b.downsample for b in branches],
        )

    def encode_rows(self, rows: Any) -> np.ndarray:
        """Rows of a table with the knob columns of ``accuracy/segments``."""
        return self.encode(
            list(rows["detector"]),
            rows["input_size"].to_numpy(),
            rows["proposals"].to_numpy(),
            rows["sampling_interval"].to_numpy(),
            list(rows["tracker"]),
            rows["downsample"].to_numpy(),
        )

    def to_dict(self) -> dict:
        return {"detectors": list(self.detectors), "trackers": list(self.trackers)}

    @classmethod
    def from_reader(cls, reader: ModelReader, key: str) -> KnobEncoder:
        return cls(
            tuple(reader.strings(f"{key}.detectors")),
            tuple(reader.strings(f"{key}.trackers")),
        )


def _one_hot(values: Sequence[str | None], vocabulary: tuple[str, ...]) -> np.ndarray:
    position = {v: i for i, v in enumerate(vocabulary)}
    out = np.zeros((len(values), len(vocabulary)))
    for row, value in enumerate(values):
        if value in position:
            out[row, position[value]] = 1.0
    return out


_LIGHT_INPUTS = ("objects", "object_size_px", "object_speed_px", "frame_w", "frame_h")


def light_features(features: Mapping[str, Any]) -> np.ndarray:
    """``(n, 4)`` light content numbers (`LIGHT_NAMES`) of scalars or columns."""
    for name in _LIGHT_INPUTS:
        if name not in features:
            raise ValueError(f"features: missing {name!r} (light content features)")
    scalars = [features[name] for name in _LIGHT_INPUTS]
    if all(isinstance(v, int | float) for v in scalars):
        # One live segment: plain floats, a few microseconds less per decision
        # than the same numbers through 1-element arrays.
        return np.array([_light_row(*map(float, scalars))])
    objects, size, speed, width, height = (
        np.atleast_1d(np.asarray(v, np.float64)) for v in scalars
    )
    size = np.maximum(size, _MIN_SIZE_PX)
    columns = (
        np.log1p(np.maximum(objects, 0.0)),
        np.log(size / np.maximum(width, height)),
        speed / size,
        np.log(width * height / 1e6),
    )
    return np.column_stack(np.broadcast_arrays(*columns))


def _light_row(objects, size, speed, width, height) -> list[float]:
    size = max(size, _MIN_SIZE_PX)
    return [
        math.log1p(max(objects, 0.0)),
        math.log(size / max(width, height)),
        speed / size,
        math.log(width * height / 1e6),
    ]


def heavy_block(features: Mapping[str, Any], prefix: str, dims: int) -> np.ndarray:
    """``(n, dims)`` of heavy feature ``prefix``: a vector under its own name, or
    table columns ``prefix_0 .. prefix_{dims-1}``."""
    if prefix in features:
        block = np.atleast_2d(np.asarray(features[prefix], np.float64))
    else:
        names = [f"{prefix}_{i}" for i in range(dims)]
        if any(n not in features for n in names):
            raise ValueError(
                f"features: heavy feature {prefix!r} needs {prefix!r} (a vector of "
                f"{dims}) or the columns {prefix}_0..{prefix}_{dims - 1}"
            )
        block = np.column_stack(
            [np.atleast_1d(np.asarray(features[n], np.float64)) for n in names]
        )
    if block.shape[1] != dims:
        raise ValueError(
            f"features: heavy feature {prefix!r} has {block.shape[1]} values, "
            f"the model was fitted on {dims}"
        )
    return block


def heavy_dims(columns: Sequence[str], prefix: str) -> int:
    """How many ``prefix_<i>`` columns a features table has (0, 1, ... contiguous)."""
    found = {c[len(prefix) + 1 :] for c in columns if c.startswith(prefix + "_")}
    dims = 0
    while str(dims) in found:
        dims += 1
    return dims


@dataclass(frozen=True)
class Projection:
    """A heavy feature's principal components on the training segments."""

    prefix: str
    mean: np.ndarray  # (dims,)
    scale: float  # RMS of the centred training values
    components: np.ndarray  # (k, dims)

    @classmethod
    def fit(cls, prefix: str, block: np.ndarray, max_components: int) -> Projection:
        """``block``: ``(segments, dims)``, one row per distinct training segment."""
        mean = block.mean(axis=0)
        centred = block - mean
        scale = float(np.sqrt(np.mean(centred**2))) or 1.0
        k = max(0, min(max_components, len(block) - 1, block.shape[1]))
        components = np.linalg.svd(centred / scale, full_matrices=False)[2][:k]
        return cls(prefix, mean, scale, components)

    @property
    def names(self) -> list[str]:
        return [f"{self.prefix}_pc{i}" for i in range(len(self.components))]

    def project(self, block: np.ndarray) -> np.ndarray:
        return ((block - self.mean) / self.scale) @ self.components.T

    def to_dict(self) -> dict:
        return {
            "prefix": self.prefix,
            "mean": self.mean.tolist(),
            "scale": self.scale,
            "components": self.components.tolist(),
        }

    @classmethod
    def from_reader(cls, reader: ModelReader, key: str) -> Projection:
        prefix = reader.get(f"{key}.prefix")
        if not isinstance(prefix, str):
            raise reader.error(f"{key}.prefix", f"expected a string, got {prefix!r}")
        mean = reader.array(f"{key}.mean", (None,))
        components = reader.array(f"{key}.components", (None, len(mean)))
        return cls(prefix, mean, reader.number(f"{key}.scale"), components)
