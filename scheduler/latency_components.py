"""Fitted latency of each stage of a branch: detector, tracker, association, loop.

Each model is fitted on one raw table of the profile (`approxrt.profile_schema`),
reduced first to cells (the mean of the samples of one workload at one
contention level: the SLA is a mean over each group of frames, and under
contention a cell's samples are skewed or two-moded, so its median sits below
what a group of frames costs; on the 550-branch PETS profile the mean took the
held-out detector MAPE from 18.5% to 12.7% and the branch MAPE from 29.5% to
25.6%), and predicts with plain numpy. Each is a set of
`Surfaces`: a linear model of the workload whose coefficients blend between the
profiled contention levels. The workload features are chosen so that the shape
stays physical when the scheduler asks about cells nobody measured:

- detector ms per kernel: ``a + b * frame_mpx`` (resizing grows with the frame);
- tracker ms per (tracker, downsample, phase): ``min(objects, 1) * (a + b *
  frame_mpx) + objects * (c + d * size + e * frame_mpx)``, all >= 0: one OpenCV
  tracker per object, each paying for its patch (KCF, CSRT) or for a pass over
  the frame (MedianFlow's pyramids), plus a per-frame resize or dense flow
  (``flow``) while anything is tracked. Linear in objects, so 100 objects cost
  what 40 did times the per-object rate, never a parabola.
- association ms: ``a + b * n + c * m + d * n * m / 100`` (an n x m IoU matrix);
- loop overhead ms per frame kind (detection or tracking frame): ``a``.

Switching cost is a pairwise table (`approxrt.scheduler.switching_model`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Self

import numpy as np

from approxrt.branch import Branch, DetectorKnobs
from approxrt.profile_schema import KERNEL_COLUMNS
from approxrt.scheduler.contention_surface import (
    LEVEL_COLUMNS,
    ContentionGrid,
    Surfaces,
    fit_surface,
)
from approxrt.scheduler.model_io import ModelReader, header

if TYPE_CHECKING:
    import pandas as pd


def kernel_name(detector: str, input_size: int, proposals: float | None) -> str:
    """A kernel's name as a branch writes it, e.g. ``yolox_nano/s416``.

    Tables write ``proposals`` 0 for one-stage detectors (a branch: None).
    """
    one_stage = proposals is None or not np.isfinite(proposals) or proposals == 0
    knobs = DetectorKnobs(int(input_size), None if one_stage else int(proposals))
    return f"{detector}/{knobs}"


def branch_kernel(branch: Branch) -> str:
    """The name of the kernel ``branch`` detects with (`kernel_name`)."""
    return kernel_name(branch.detector, branch.input_size, branch.proposals)


def tracker_key(branch: Branch) -> str | None:
    """``"kcf/ds2"``: the (tracker, downsample) a branch tracks with, or None."""
    return f"{branch.tracker}/ds{branch.downsample}" if branch.tracker else None


def tracker_group(tracker: str, downsample: int, phase: str) -> str:
    """A tracker model's name, e.g. ``kcf/ds2/update``."""
    return f"{tracker}/ds{int(downsample)}/{phase}"


def detector_features(frame_w, frame_h) -> np.ndarray:
    """``(..., 2)``: intercept, frame megapixels."""
    if np.ndim(frame_w) == 0 and np.ndim(frame_h) == 0:
        return np.array([1.0, float(frame_w) * float(frame_h) / 1e6])
    mpx = np.asarray(frame_w, np.float64) * np.asarray(frame_h, np.float64) / 1e6
    return np.stack([np.ones_like(mpx), mpx], axis=-1)


def tracker_features(objects, object_size_px, frame_w, frame_h) -> np.ndarray:
    """``(..., 6)``: intercept, frame Mpx, objects, objects x size/100, objects x
    (size/100)^2, objects x Mpx.

    The area term is there because correlation trackers (KCF, MOSSE) work on a
    window around each box: measured here, KCF ds2's update went from 19 ms to
    144 ms for 40 objects as their side grew from 30 to 110 px (about size^1.6),
    which a term linear in size under-predicts several times over. Sizes and
    frames are full-resolution: a model per downsample absorbs its factor into
    its coefficients.

    The per-frame terms (intercept, frame Mpx) are paid only while an object is
    tracked: with none a tracker makes no view of the frame (`Tracker.update`),
    so they are scaled by ``min(objects, 1)`` (an average below one object is a
    share of frames with one). Without this, yolox_nano s224 in the crowd, which
    finds nobody, was planned 0.24-0.88 ms per tracking frame against 0.01-0.02
    measured (bench15, held-out levels).
    """
    values = (objects, object_size_px, frame_w, frame_h)
    # The scheduler's cases, a scalar count or one per kernel: few array calls.
    if np.ndim(objects) <= 1 and all(np.ndim(v) == 0 for v in values[1:]):
        size, w, h = (float(v) for v in values[1:])
        mpx, side = w * h / 1e6, size / 100
        if np.ndim(objects) == 0:
            n = float(objects)
            any_ = min(n, 1.0)
            return np.array([any_, any_ * mpx, n, n * side, n * side * side, n * mpx])
        n = np.asarray(objects, np.float64)
        phi = np.empty((len(n), 6))
        np.minimum(n, 1.0, out=phi[:, 0])
        np.multiply(phi[:, 0], mpx, out=phi[:, 1])
        np.multiply(n[:, None], [1.0, side, side * side, mpx], out=phi[:, 2:])
        return phi
    n, size, w, h = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in values))
    mpx, side, any_ = w * h / 1e6, size / 100, np.minimum(n, 1.0)
    return np.stack([any_, any_ * mpx, n, n * side, n * side * side, n * mpx], axis=-1)


def association_features(objects, previous_objects) -> np.ndarray:
    """``(..., 4)``: intercept, objects, previous objects, their product / 100."""
    if np.ndim(objects) == 0 and np.ndim(previous_objects) == 0:
        n, m = float(objects), float(previous_objects)
        return np.array([1.0, n, m, n * m / 100])
    if np.ndim(objects) == 1 and np.shape(objects) == np.shape(previous_objects):
        phi = np.empty((len(objects), 4))
        phi[:, 0] = 1.0
        phi[:, 1], phi[:, 2] = objects, previous_objects
        np.multiply(phi[:, 1], phi[:, 2] / 100, out=phi[:, 3])
        return phi
    n, m = np.broadcast_arrays(
        np.asarray(objects, np.float64), np.asarray(previous_objects, np.float64)
    )
    return np.stack([np.ones_like(n), n, m, n * m / 100], axis=-1)


def require_columns(table: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    """A ValueError naming the columns ``table`` lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what}: table lacks columns {missing}")
    if len(table) == 0:
        raise ValueError(f"{what}: table has no rows to fit on")


class SurfaceModel:
    """A latency model made of per-group `Surfaces` (subclasses say what groups).

    Args:
        smoothing: see `fit_surface`; raising it trusts neighbouring contention
            levels more than each level's own cells.

    Attributes (after `fit` or `from_dict`):
        surfaces_: the fitted `Surfaces`.
        tail_ratio_: ``(groups,)`` median over cells of P95 / mean ms: the
            spread the scheduler's margin must cover.
        heldout_error_: the error on held-out contention levels (set by the fit
            step, written with the model).
    """

    KIND: ClassVar[str]
    VALUE: ClassVar[str] = "ms"
    WORKLOAD: ClassVar[tuple[str, ...]]  # columns that make a cell, beside levels
    FEATURES: ClassVar[tuple[str, ...]]
    NONNEGATIVE: ClassVar[bool] = True

    def __init__(self, smoothing: float = 1e-3) -> None:
        self.smoothing = smoothing

    @staticmethod
    def group_names(table: pd.DataFrame) -> list[str]:
        raise NotImplementedError

    @staticmethod
    def features(cells: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def get_params(self) -> dict[str, float]:
        return {"smoothing": self.smoothing}

    def cells(self, table: pd.DataFrame) -> pd.DataFrame:
        """One row per (group, workload, level): mean and P95 of the samples."""
        require_columns(table, (*self.WORKLOAD, *LEVEL_COLUMNS, self.VALUE), self.KIND)
        keyed = table.assign(group=self.group_names(table))
        grouped = keyed.groupby(["group", *self.WORKLOAD, *LEVEL_COLUMNS])[self.VALUE]
        cells = grouped.mean().rename("ms").to_frame()
        cells["p95_ms"] = grouped.quantile(0.95)
        return cells.reset_index()

    def fit(self, table: pd.DataFrame) -> Self:
        """Fit on raw samples of the model's table (fitting levels only)."""
        cells = self.cells(table)
        levels = cells[list(LEVEL_COLUMNS)].to_numpy(np.float64)
        grid = ContentionGrid.from_levels(levels)
        weights, phi = grid.weights(levels), self.features(cells)
        ms = cells["ms"].to_numpy(np.float64)
        groups = sorted(set(cells["group"]))
        coef, tail = [], []
        for group in groups:
            mine = (cells["group"] == group).to_numpy()
            coef.append(
                fit_surface(
                    phi[mine],
                    weights[mine],
                    ms[mine],
                    grid,
                    self.NONNEGATIVE,
                    self.smoothing,
                )
            )
            ratio = cells["p95_ms"].to_numpy()[mine] / np.maximum(ms[mine], 1e-9)
            tail.append(float(np.median(ratio)))
        self.surfaces_ = Surfaces(grid, self.FEATURES, tuple(groups), np.stack(coef))
        self.tail_ratio_ = np.asarray(tail)
        self.heldout_error_: dict = {}
        return self

    def predict_cells(self, cells: pd.DataFrame) -> np.ndarray:
        """``(n,)`` predicted ms of `cells` rows (each with its own level)."""
        index = self.surfaces_.index(list(cells["group"]), self.KIND)
        levels = cells[list(LEVEL_COLUMNS)].to_numpy(np.float64)
        predicted = self.surfaces_.predict_rows(index, self.features(cells), levels)
        return np.maximum(predicted, 0.0)

    def to_dict(self) -> dict:
        return {
            **header(self.KIND),
            "params": self.get_params(),
            "surfaces": self.surfaces_.to_dict(),
            "tail_ratio": self.tail_ratio_.tolist(),
            "heldout_error": self.heldout_error_,
        }

    @classmethod
    def from_dict(cls, data: dict, name: str | None = None) -> Self:
        """The model ``to_dict`` wrote; `ModelFormatError` names a bad key."""
        reader = ModelReader(data, name or cls.KIND, cls.KIND)
        model = cls(smoothing=reader.number("params.smoothing"))
        model.surfaces_ = Surfaces.from_reader(reader, "surfaces")
        if model.surfaces_.features != cls.FEATURES:
            raise reader.error(
                "surfaces.features",
                f"expected {list(cls.FEATURES)}, got {list(model.surfaces_.features)}",
            )
        groups = len(model.surfaces_.groups)
        model.tail_ratio_ = reader.array("tail_ratio", (groups,))
        model.heldout_error_ = reader.optional("heldout_error", {})
        return model


class DetectorLatencyModel(SurfaceModel):
    """Detector ms (preprocess + infer + postprocess) per kernel."""

    KIND = "DetectorLatencyModel"
    VALUE = "total_ms"
    WORKLOAD = ("frame_w", "frame_h")
    FEATURES = ("intercept", "frame_mpx")
    # A wider frame can mean a smaller padded network input (rect_input), so
    # the frame-size slope may be negative.
    NONNEGATIVE = False

    @staticmethod
    def group_names(table: pd.DataFrame) -> list[str]:
        require_columns(table, KERNEL_COLUMNS, "DetectorLatencyModel")
        return [kernel_name(*row) for row in table[list(KERNEL_COLUMNS)].to_numpy()]

    @staticmethod
    def features(cells: pd.DataFrame) -> np.ndarray:
        return detector_features(cells["frame_w"], cells["frame_h"])

    def predict(self, kernels, frame_wh, contention=None) -> np.ndarray:
        """``(n,)`` ms of ``kernels`` (names) on ``(w, h)`` frames at ``contention``."""
        index = self.surfaces_.index(list(kernels), "detector kernel")
        at = self.surfaces_.at(self.surfaces_.grid.weights_at(contention))
        return np.maximum(at @ detector_features(*frame_wh), 0.0)[index]


class TrackerLatencyModel(SurfaceModel):
    """Tracker ms per (tracker, downsample, phase); phase is "seed" or "update"."""

    KIND = "TrackerLatencyModel"
    WORKLOAD = ("objects", "object_size_px", "frame_w", "frame_h")
    FEATURES = (
        "intercept",
        "frame_mpx",
        "objects",
        "objects_x_size_hpx",
        "objects_x_size_hpx_squared",
        "objects_x_frame_mpx",
    )

    @staticmethod
    def group_names(table: pd.DataFrame) -> list[str]:
        columns = ("tracker", "downsample", "phase")
        require_columns(table, columns, "TrackerLatencyModel")
        return [tracker_group(*row) for row in table[list(columns)].to_numpy()]

    @staticmethod
    def features(cells: pd.DataFrame) -> np.ndarray:
        columns = ("objects", "object_size_px", "frame_w", "frame_h")
        return tracker_features(*(cells[c] for c in columns))

    def predict(
        self, groups, objects, object_size_px, frame_wh, contention=None
    ) -> np.ndarray:
        """``(n,)`` ms of tracker ``groups`` (e.g. ``kcf/ds2/update``)."""
        index = self.surfaces_.index(list(groups), "tracker")
        at = self.surfaces_.at(self.surfaces_.grid.weights_at(contention))
        phi = tracker_features(objects, object_size_px, *frame_wh)
        return np.maximum(at @ phi, 0.0)[index]


class AssociationModel(SurfaceModel):
    """Track-id association ms on a detection frame."""

    KIND = "AssociationModel"
    WORKLOAD = ("objects", "previous_objects")
    FEATURES = ("intercept", "objects", "previous_objects", "objects_x_previous_c")

    @staticmethod
    def group_names(table: pd.DataFrame) -> list[str]:
        return ["association"] * len(table)

    @staticmethod
    def features(cells: pd.DataFrame) -> np.ndarray:
        return association_features(cells["objects"], cells["previous_objects"])

    def predict(self, objects, previous_objects, contention=None) -> float:
        at = self.surfaces_.at(self.surfaces_.grid.weights_at(contention))
        return float(max(at[0] @ association_features(objects, previous_objects), 0))


class OverheadModel(SurfaceModel):
    """The loop's own ms per frame, apart for detection and tracking frames."""

    KIND = "OverheadModel"
    WORKLOAD = ()
    FEATURES = ("intercept",)

    @staticmethod
    def group_names(table: pd.DataFrame) -> list[str]:
        require_columns(table, ("detected",), "OverheadModel")
        return ["detect" if d else "track" for d in table["detected"].to_numpy()]

    @staticmethod
    def features(cells: pd.DataFrame) -> np.ndarray:
        return np.ones((len(cells), 1))

    def predict(self, detected: bool, contention=None) -> float:
        index = self.surfaces_.index(["detect" if detected else "track"], self.KIND)
        at = self.surfaces_.at(self.surfaces_.grid.weights_at(contention))
        return float(max(at[index[0], 0], 0.0))
