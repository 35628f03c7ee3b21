"""`BranchLatencyModel`: a branch's predicted ms per frame, from its stages' models.

For a branch with sampling interval ``si`` (numbers in ms)::

    detect_frame = detector + association + tracker seed (0 when si = 1) + overhead
    track_frame  = tracker update + overhead              (0 when si = 1)
    gof_mean     = (detect_frame + (si - 1) * track_frame) / si
                   [+ switching / stay_frames, when coming from another kernel]

``gof_mean`` is what the SLA bounds (ARCHITECTURE.md: mean latency per frame over
a group of frames). Prediction is vectorised over branches: `bind` turns a
branch list into index arrays once, and each `predict` is then a few numpy
operations whatever the number of branches (the scheduler's 0.2 ms budget for
1,000 branches). No ML framework is imported here or by the stage models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np

from approxrt.branch import Branch
from approxrt.contention import ContentionLevels
from approxrt.scheduler.latency_components import (
    AssociationModel,
    DetectorLatencyModel,
    OverheadModel,
    SurfaceModel,
    TrackerLatencyModel,
    association_features,
    branch_kernel,
    detector_features,
    tracker_features,
)
from approxrt.scheduler.model_io import ModelReader, header
from approxrt.scheduler.switching_model import SwitchingModel

__all__ = [
    "AssociationModel",
    "BoundBranches",
    "BranchLatencyModel",
    "DetectorLatencyModel",
    "OverheadModel",
    "SwitchingModel",
    "TrackerLatencyModel",
]

_COMPONENTS: dict[str, type] = {
    "detector": DetectorLatencyModel,
    "tracker": TrackerLatencyModel,
    "association": AssociationModel,
    "overhead": OverheadModel,
    "switching": SwitchingModel,
}


@dataclass(frozen=True)
class BoundBranches:
    """Branches turned into index arrays for `BranchLatencyModel.predict`.

    Attributes:
        branches: the branches, in the order of every predicted array.
        kernels: their distinct kernel names (for switching costs).
        kernel_index: ``(B,) int64`` each branch's position in ``kernels``.
        detector_index: ``(B,) int64`` its kernel among the detector model's.
        seed_index, update_index: ``(B,) int64`` its tracker phases among the
            tracker model's; one past the last where untracked (a prediction
            gives that column 0 ms).
        tracked: ``(B,) float64`` 1 where the branch has a tracker, else 0.
        sampling_interval: ``(B,) float64``.
    """

    branches: tuple[Branch, ...]
    kernels: tuple[str, ...]
    kernel_index: np.ndarray
    detector_index: np.ndarray
    seed_index: np.ndarray
    update_index: np.ndarray
    tracked: np.ndarray
    sampling_interval: np.ndarray
    _switch_cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.branches)


class BranchLatencyModel:
    """Composes the stage models into per-branch latency.

    Args:
        detector, tracker, association, overhead, switching: fitted stage models.
            ``tracker`` may be None for a space without tracking branches.
    """

    KIND = "BranchLatencyModel"

    def __init__(
        self,
        detector: DetectorLatencyModel,
        tracker: TrackerLatencyModel | None,
        association: AssociationModel,
        overhead: OverheadModel,
        switching: SwitchingModel | None = None,
    ) -> None:
        self.detector = detector
        self.tracker = tracker
        self.association = association
        self.overhead = overhead
        self.switching = switching or SwitchingModel.free()
        # The last (contention, coefficients): the OS sensor's level holds
        # between its reads, so successive decisions predict at one level. One
        # tuple, so streams that share the model never see a key with another's
        # coefficients.
        self._last_at: tuple[ContentionLevels | None, dict] | None = None
        self.heldout_error_: dict = {}
        groups = overhead.surfaces_.index(["detect", "track"], "overhead")
        self._overhead_groups = groups

    def bind(self, branches: Sequence[Branch]) -> BoundBranches:
        """Index arrays of ``branches``; raises naming any stage not profiled."""
        branches = tuple(branches)
        names = [branch_kernel(b) for b in branches]
        kernels = tuple(dict.fromkeys(names))
        position = {k: i for i, k in enumerate(kernels)}
        tracked = [b for b in branches if b.tracker is not None]
        if tracked and self.tracker is None:
            raise ValueError(
                f"branch {tracked[0]}: has a tracker but the profile has no tracker "
                "latency model"
            )
        seed = self._tracker_index(branches, "seed")
        return BoundBranches(
            branches=branches,
            kernels=kernels,
            kernel_index=np.array([position[n] for n in names], np.int64),
            detector_index=self.detector.surfaces_.index(names, "detector kernel"),
            seed_index=seed,
            update_index=self._tracker_index(branches, "update"),
            tracked=np.array([b.tracker is not None for b in branches], np.float64),
            sampling_interval=np.array(
                [b.sampling_interval for b in branches], np.float64
            ),
        )

    def _tracker_index(self, branches: tuple[Branch, ...], phase: str) -> np.ndarray:
        if self.tracker is None:
            return np.zeros(len(branches), np.int64)
        surfaces = self.tracker.surfaces_
        tracked = [b for b in branches if b.tracker]
        names = [f"{b.tracker}/ds{b.downsample}/{phase}" for b in tracked]
        found = iter(surfaces.index(names, f"tracker {phase}"))
        untracked = len(surfaces.groups)
        return np.array(
            [next(found) if b.tracker else untracked for b in branches], np.int64
        )

    def predict(
        self,
        branches: Sequence[Branch] | BoundBranches,
        contention: ContentionLevels | None,
        objects: float | np.ndarray,
        object_size_px: float,
        frame_wh: tuple[int, int],
        *,
        switch_from: str | None = None,
        stay_frames: float | None = None,
        object_groups: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Predicted ms of each branch: ``(B,) float64`` arrays.

        Args:
            branches: a branch list, or `bind`'s result (bind once, predict often).
            contention: sensed contention; None is an idle device.
            objects: boxes per frame (a scalar, ``(B,)`` per branch, or per
                group with ``object_groups``).
            object_size_px: sqrt of the mean box area, full-resolution px.
            frame_wh: the stream's frame (width, height).
            switch_from: the running kernel (e.g. ``"yolox_nano/s416"``); adds the
                cost of switching to each branch's kernel, amortised over
                ``stay_frames`` (default: the branch's own group of frames).
            object_groups: ``(B,)`` ints: ``objects`` is then ``(G,)``, one
                count per group of branches (the scheduler's: per kernel), and
                branch ``b`` has ``objects[object_groups[b]]``.

        Returns:
            ``detect_frame``, ``track_frame``, ``gof_mean``: ``(B,)`` arrays; and
            the stages they are made of: ``detector``, ``association``,
            ``tracker_seed``, ``tracker_update``, ``switching`` (``(B,)``);
            ``overhead_detect`` and ``overhead_track`` (0-d: the same for every
            branch); and ``association_per_object``, ``tracker_seed_per_object``,
            ``tracker_update_per_object`` (``(B,)``): each of those stages'
            change with one more object than the branch was predicted for.
        """
        bound = branches if isinstance(branches, BoundBranches) else self.bind(branches)
        at = self._coefficients_at(contention)
        detector_ms = np.maximum(at["detector"] @ detector_features(*frame_wh), 0.0)
        stages = {
            "detector": detector_ms[bound.detector_index],
            **self._object_stages(
                at, bound, objects, object_size_px, frame_wh, object_groups
            ),
        }
        overhead_ms = np.maximum(at["overhead"][self._overhead_groups, 0], 0.0)
        stages["overhead_detect"], stages["overhead_track"] = overhead_ms
        stages["switching"] = self._switching(bound, switch_from)
        return _compose(stages, bound, stay_frames)

    def _object_stages(
        self, at, bound, objects, object_size_px, frame_wh, object_groups=None
    ) -> dict:
        """``association``, ``tracker_seed`` and ``tracker_update`` ``(B,)`` at
        each branch's count, and how each changes with one more object
        (``<stage>_per_object``): the slope a plan judges its frames by, at
        the content each frame really had.

        Computed once per distinct count (and that count + 1) and gathered per
        branch: features built per branch doubled the time of a decision over
        370 branches (254 -> 525 us), and a second prediction for the chosen
        branch's slope took 59 of a decision's 426 us over 1,360 branches
        (under cProfile).
        """
        counts, which = _count_groups(objects, object_groups, len(bound))
        both = np.concatenate([counts, counts + 1.0])
        association = association_features(both, both) @ at["association"][0]
        association = np.maximum(association, 0.0)
        stages = _with_slope("association", association, which, len(counts))
        if self.tracker is None:
            zeros = np.zeros(len(bound))
            for stage in ("tracker_seed", "tracker_update"):
                stages[stage] = stages[f"{stage}_per_object"] = zeros
            return stages
        phi = tracker_features(both, object_size_px, *frame_wh)
        coefficients = at["tracker"]
        # (2C, groups + 1): the last column, 0 ms, is untracked branches'.
        per_tracker = np.zeros((len(both), len(coefficients) + 1))
        np.maximum(phi @ coefficients.T, 0.0, out=per_tracker[:, :-1])
        # One flat gather per stage: with 2-D fancy indexing a prediction over
        # 1,360 branches took 93 us, against 66.
        flat, width = per_tracker.ravel(), per_tracker.shape[1]
        rows = which * width
        for stage, column in (
            ("tracker_seed", bound.seed_index),
            ("tracker_update", bound.update_index),
        ):
            stages |= _with_slope(stage, flat, rows + column, len(counts) * width)
        return stages

    def predict_one(
        self,
        branch: Branch,
        contention: ContentionLevels | None,
        objects: float,
        object_size_px: float,
        frame_wh: tuple[int, int],
        *,
        switch_from: str | None = None,
    ) -> dict[str, float]:
        """``{"detect_frame", "track_frame", "gof_mean"}`` ms of one branch."""
        arrays = self.predict(
            [branch],
            contention,
            objects,
            object_size_px,
            frame_wh,
            switch_from=switch_from,
        )
        kinds = ("detect_frame", "track_frame", "gof_mean")
        return {k: float(arrays[k][0]) for k in kinds}

    def _coefficients_at(self, contention: ContentionLevels | None) -> dict:
        """Each stage's ``(groups, features)`` coefficients at ``contention``."""
        last = self._last_at
        if last is not None and last[0] == contention:
            return last[1]
        at = self._blend(contention)
        self._last_at = (contention, at)
        return at

    def _blend(self, contention: ContentionLevels | None) -> dict:
        stages: dict[str, SurfaceModel | None] = {
            "detector": self.detector,
            "tracker": self.tracker,
            "association": self.association,
            "overhead": self.overhead,
        }
        weights: dict = {}  # stages profiled at the same levels share one grid
        at = {}
        for name, model in stages.items():
            if model is None:
                continue
            grid = model.surfaces_.grid
            if grid not in weights:
                weights[grid] = grid.weights_at(contention)
            at[name] = model.surfaces_.at(weights[grid])
        return at

    def _switching(self, bound: BoundBranches, switch_from: str | None) -> np.ndarray:
        if switch_from is None:
            return np.zeros(len(bound))
        per_kernel = bound._switch_cache.get(switch_from)
        if per_kernel is None:
            per_kernel = self.switching.predict(switch_from, bound.kernels)
            bound._switch_cache[switch_from] = per_kernel
        return per_kernel[bound.kernel_index]

    def to_dict(self) -> dict:
        """Every stage model's dict, and the composed prediction's held-out error."""
        components = {
            name: getattr(self, name).to_dict()
            for name in _COMPONENTS
            if getattr(self, name) is not None
        }
        return {
            **header(self.KIND),
            "components": components,
            "heldout_error": self.heldout_error_,
        }

    @classmethod
    def from_dict(cls, data: dict, name: str | None = None) -> Self:
        """The model ``to_dict`` wrote; `ModelFormatError` names a bad key."""
        name = name or "branch_latency"
        reader = ModelReader(data, name, cls.KIND)
        components = reader.get("components")
        if not isinstance(components, dict):
            raise reader.error("components", "expected an object of stage models")
        parts = {}
        for part, model_class in _COMPONENTS.items():
            if part not in components and part in ("tracker", "switching"):
                parts[part] = None
                continue
            parts[part] = model_class.from_dict(
                reader.get(f"components.{part}"), f"{name}.components.{part}"
            )
        model = cls(**parts)
        model.heldout_error_ = reader.optional("heldout_error", {})
        return model


def _count_groups(
    objects: float | np.ndarray, object_groups: np.ndarray | None, branches: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, which)``: the distinct counts to predict at, and each
    branch's row among them (one count for all, one per branch, or one per
    group of branches)."""
    counts = np.atleast_1d(np.asarray(objects, np.float64))
    if object_groups is not None:
        return counts, np.asarray(object_groups, np.int64)
    if np.ndim(objects) == 0:
        return counts, np.zeros(branches, np.int64)
    return counts, np.arange(branches)


def _with_slope(
    stage: str, values: np.ndarray, at: np.ndarray, one_more: int
) -> dict[str, np.ndarray]:
    """``stage`` gathered ``values[at]``, and its change with one more object,
    ``values`` holding the one-more counts ``one_more`` places further on."""
    now = values[at]
    return {stage: now, f"{stage}_per_object": values[at + one_more] - now}


def _compose(
    stages: dict[str, np.ndarray], bound: BoundBranches, stay_frames: float | None
) -> dict[str, np.ndarray]:
    si = bound.sampling_interval
    detect = (
        stages["detector"]
        + stages["association"]
        + stages["tracker_seed"]
        + stages["overhead_detect"]
    )
    track = (stages["tracker_update"] + stages["overhead_track"]) * bound.tracked
    gof = (detect + (si - 1.0) * track) / si
    gof = gof + stages["switching"] / (si if stay_frames is None else stay_frames)
    return {**stages, "detect_frame": detect, "track_frame": track, "gof_mean": gof}
