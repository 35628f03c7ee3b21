"""Content-agnostic AP50 of branches: ApproxDet's static table.

`AccuracyTable` holds each branch's mean AP50 over the profiled segments, plus
a ridge regression on its knobs for branches nobody profiled. The helpers here
(the knob columns of an ``accuracy/segments`` row, the rows with a score, the
ridge solve) serve the content-aware model (`accuracy_model`) and the profiler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from approxrt.branch import Branch
from approxrt.scheduler.accuracy_features import KnobEncoder
from approxrt.scheduler.model_io import ModelReader, header

if TYPE_CHECKING:
    import pandas as pd

SEGMENT_KEYS = ("video", "segment")
KNOB_COLUMNS = (
    "detector",
    "input_size",
    "proposals",
    "sampling_interval",
    "tracker",
    "downsample",
)


def knob_columns(branch: Branch) -> dict[str, Any]:
    """``KNOB_COLUMNS`` of ``branch``, as an ``accuracy/segments`` row holds them."""
    return {
        "detector": branch.detector,
        "input_size": branch.input_size,
        "proposals": branch.proposals or 0,
        "sampling_interval": branch.sampling_interval,
        "tracker": branch.tracker or "",
        "downsample": branch.downsample,
    }


def scored_rows(segments: pd.DataFrame, what: str) -> pd.DataFrame:
    """The rows of ``accuracy/segments`` with a finite AP50 (no truth: no score)."""
    needed = (*SEGMENT_KEYS, "branch", *KNOB_COLUMNS, "ap50")
    missing = [c for c in needed if c not in segments.columns]
    if missing:
        raise ValueError(f"{what}: accuracy table lacks columns {missing}")
    rows = segments[np.isfinite(segments["ap50"].to_numpy(np.float64))]
    if len(rows) == 0:
        raise ValueError(f"{what}: no accuracy rows with a finite ap50 to fit on")
    return rows


def ridge_solve(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge coefficients on mean-normalised normal equations (ridge is unit-free)."""
    gram = x.T @ x / len(x) + ridge * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ y / len(x))


class AccuracyTable:
    """Content-agnostic AP50: per-branch mean, knob regression for the rest.

    Args:
        ridge: ridge of the knob regression used for unprofiled branches; raising
            it pulls them towards the average branch.
    """

    KIND = "AccuracyTable"

    def __init__(self, ridge: float = 0.01) -> None:
        self.ridge = ridge

    def get_params(self) -> dict[str, float]:
        return {"ridge": self.ridge}

    def fit(self, segments: pd.DataFrame) -> Self:
        rows = scored_rows(segments, self.KIND)
        grouped = rows.groupby("branch", sort=True)
        means = grouped[list(KNOB_COLUMNS)].first()
        means["ap50"] = grouped["ap50"].mean()
        trackers = {t for t in rows["tracker"] if isinstance(t, str) and t}
        self.encoder_ = KnobEncoder(
            tuple(sorted(set(rows["detector"]))), tuple(sorted(trackers))
        )
        self.branches_ = [str(b) for b in means.index]
        self.ap50_ = means["ap50"].to_numpy(np.float64)
        self.segments_ = grouped.size().to_numpy().astype(np.int64)
        knobs = self.encoder_.encode_rows(means)
        self.fallback_coef_ = ridge_solve(knobs, self.ap50_, self.ridge)
        self.heldout_error_: dict = {}
        return self

    def predict(self, branches: Sequence[Branch]) -> np.ndarray:
        """``(B,)`` AP50 of ``branches``."""
        names = [str(b) for b in branches]
        return self._lookup(names, lambda: self.encoder_.encode_branches(branches))

    def predict_rows(self, rows: pd.DataFrame) -> np.ndarray:
        """``(n,)`` AP50 of the branches of ``accuracy/segments`` rows."""
        return self._lookup(
            list(rows["branch"]), lambda: self.encoder_.encode_rows(rows)
        )

    def _lookup(self, names: list[str], knobs) -> np.ndarray:
        position = {b: i for i, b in enumerate(self.branches_)}
        index = np.array([position.get(n, -1) for n in names], np.int64)
        out = self.ap50_[np.maximum(index, 0)]
        if np.any(index < 0):
            fallback = np.clip(knobs() @ self.fallback_coef_, 0.0, 1.0)
            out = np.where(index < 0, fallback, out)
        return out

    def to_dict(self) -> dict:
        return {
            **header(self.KIND),
            "params": self.get_params(),
            "encoder": self.encoder_.to_dict(),
            "branches": self.branches_,
            "ap50": self.ap50_.tolist(),
            "segments": self.segments_.tolist(),
            "fallback_coef": self.fallback_coef_.tolist(),
            "heldout_error": self.heldout_error_,
        }

    @classmethod
    def from_dict(cls, data: dict, name: str | None = None) -> Self:
        reader = ModelReader(data, name or cls.KIND, cls.KIND)
        model = cls(ridge=reader.number("params.ridge"))
        model.encoder_ = KnobEncoder.from_reader(reader, "encoder")
        model.branches_ = reader.strings("branches")
        model.ap50_ = reader.array("ap50", (len(model.branches_),))
        model.segments_ = reader.array("segments", (len(model.branches_),)).astype(
            np.int64
        )
        columns = len(model.encoder_.columns)
        model.fallback_coef_ = reader.array("fallback_coef", (columns,))
        model.heldout_error_ = reader.optional("heldout_error", {})
        return model
