"""Content-aware AP50 of branches: the table corrected by the segment's content.

`ContentAccuracyModel` adds to `AccuracyTable` (ApproxDet's static table, in
`accuracy_table`) what the content of the current segment says, as a bilinear
correction of the table::

    ap50(branch, content) = table(branch) + knobs(branch) @ theta @ content

so each knob's effect may grow or shrink with each content feature (tracking
many frames costs more when objects are fast; a small input costs more when
objects are small). It is ridge regression on knob x content products, fitted
in two parts: the interactions on contrasts between branches of the same
segment, the part every branch shares on per-segment means, each with its ridge
chosen on segments left out. A profile has as many independent contents as
segments (tens, not thousands); on synthetic profiles of that size this model's
held-out MAE was lower than gradient-boosted trees' and an MLP's on the same
inputs, and its prediction is two matrix-vector products: for 1,000 branches,
tens of microseconds, with no ML framework.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from approxrt.branch import Branch
from approxrt.scheduler.accuracy_features import (
    LIGHT_NAMES,
    Projection,
    heavy_block,
    heavy_dims,
    light_features,
)
from approxrt.scheduler.accuracy_nearby import BoundNearby, NearbySegments
from approxrt.scheduler.accuracy_table import (
    SEGMENT_KEYS,
    AccuracyTable,
    ridge_solve,
    scored_rows,
)
from approxrt.scheduler.model_io import ModelReader, header

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class BoundAccuracy:
    """Branches prepared for `ContentAccuracyModel.predict`: ``knobs`` ``(B, k)``,
    their content-agnostic AP50 ``base`` ``(B,)`` and their residuals on the
    profiled segments ``nearby`` (`NearbySegments.bind`)."""

    branches: tuple[Branch, ...]
    knobs: np.ndarray
    base: np.ndarray
    nearby: BoundNearby


class ContentAccuracyModel:
    """AP50 from a branch's knobs and the segment's content features.

    Args:
        heavy_features: heavy feature names to use (e.g. ``["hog"]``); empty uses
            light features only. Predicting then needs those features.
        heavy_components: principal components kept per heavy feature; raising
            it lets more of the feature in, and overfits sooner.
        ridges: ridge strengths tried for each part; the one with the lowest
            MAE on segments left out (inside the training data) is kept.
            Raising them trusts content less and the table more.
        folds: folds of the segment-grouped cross-validation that picks the
            interactions' ridge (the shared part leaves one segment out at a
            time).
    """

    KIND = "ContentAccuracyModel"

    def __init__(
        self,
        heavy_features: Sequence[str] = (),
        heavy_components: int = 3,
        ridges: Sequence[float] = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0),
        folds: int = 4,
    ) -> None:
        self.heavy_features = heavy_features
        self.heavy_components = heavy_components
        self.ridges = ridges
        self.folds = folds

    def get_params(self) -> dict[str, Any]:
        return {
            "heavy_features": list(self.heavy_features),
            "heavy_components": self.heavy_components,
            "ridges": list(self.ridges),
            "folds": self.folds,
        }

    def fit(self, segments: pd.DataFrame, features: pd.DataFrame) -> Self:
        """Fit on ``accuracy/segments`` rows and ``accuracy/features`` rows."""
        rows = join_features(scored_rows(segments, self.KIND), features)
        self.table_ = AccuracyTable().fit(rows)
        residual = rows["ap50"].to_numpy(np.float64) - self.table_.predict_rows(rows)
        self._fit_content(rows.drop_duplicates(list(SEGMENT_KEYS)))
        segment = rows.groupby(list(SEGMENT_KEYS), sort=True).ngroup().to_numpy()
        knobs = self.table_.encoder_.encode_rows(rows)[:, 1:]  # all but intercept
        content = self.content(rows)
        # Knob x content interactions from contrasts between branches on the same
        # segment: whatever the segment does to every branch alike (and the light
        # features cannot explain) cancels out instead of swamping them.
        centred = knobs - _segment_means(knobs, segment)[segment]
        design = _products(centred, content)
        target = residual - _segment_means(residual, segment)[segment]
        self.ridge_interactions_ = self._choose_ridge(
            design, target, segment, self.folds
        )
        interactions = ridge_solve(design, target, self.ridge_interactions_)
        interactions = interactions.reshape(knobs.shape[1], -1)
        # What content does to every branch alike: one point per segment.
        seg_content = _segment_means(content, segment)
        seg_target = _segment_means(residual, segment) - np.einsum(
            "sk,kc,sc->s", _segment_means(knobs, segment), interactions, seg_content
        )
        # Leave-one-segment-out: a few numbers per segment, so it costs nothing
        # and picks the ridge far less by luck than a handful of folds would.
        seg_ids = np.arange(len(seg_content))
        self.ridge_shared_ = self._choose_ridge(
            seg_content, seg_target, seg_ids, len(seg_ids)
        )
        shared = ridge_solve(seg_content, seg_target, self.ridge_shared_)
        self.theta_ = np.vstack([shared, interactions])
        self.nearby_ = self._fit_nearby(rows, segment, content)
        self.heldout_error_: dict = {}
        return self

    def _fit_nearby(self, rows, segment: np.ndarray, content: np.ndarray):
        """`NearbySegments` on what the bilinear part leaves on each segment."""
        residual = rows["ap50"].to_numpy(np.float64) - self._bilinear_rows(rows)
        branches = self.table_.branches_
        column = {b: i for i, b in enumerate(branches)}
        matrix = np.full((int(segment.max()) + 1, len(branches)), np.nan)
        matrix[segment, [column[b] for b in rows["branch"]]] = residual
        segment_content = np.zeros((len(matrix), content.shape[1]))
        segment_content[segment] = content
        return NearbySegments().fit(segment_content, matrix, branches)

    def _fit_content(self, segment_rows: pd.DataFrame) -> None:
        light = light_features(segment_rows)
        self.light_used_ = [
            name
            for name, column in zip(LIGHT_NAMES, light.T, strict=True)
            if np.ptp(column) > 1e-12
        ]
        self.projections_ = []
        for prefix in self.heavy_features:
            dims = heavy_dims(list(segment_rows.columns), prefix)
            if dims == 0:
                raise ValueError(
                    f"{self.KIND}: heavy feature {prefix!r} has no columns "
                    f"{prefix}_0.. in the features table"
                )
            block = heavy_block(segment_rows, prefix, dims)
            projection = Projection.fit(prefix, block, self.heavy_components)
            if len(projection.components):
                self.projections_.append(projection)
        raw = self._raw_content(segment_rows)
        # Content is never extrapolated: a scene beyond every profiled segment
        # (no motion yet, a crowd twice the largest) is read as the nearest
        # profiled one, so a linear model cannot promise an AP50 of 1.
        self.content_range_ = np.stack([raw.min(axis=0), raw.max(axis=0)])
        self.content_mean_ = raw.mean(axis=0)
        std = raw.std(axis=0)
        self.content_std_ = np.where(std > 1e-12, std, 1.0)

    @property
    def content_names(self) -> list[str]:
        """The content numbers the model reads, in order."""
        return [*self.light_used_, *(n for p in self.projections_ for n in p.names)]

    def _raw_content(self, features: Mapping[str, Any]) -> np.ndarray:
        light = light_features(features)
        used = [LIGHT_NAMES.index(n) for n in self.light_used_]
        blocks = [light[:, used]]  # a new array: `content` may work in place
        for projection in self.projections_:
            dims = len(projection.mean)
            blocks.append(
                projection.project(heavy_block(features, projection.prefix, dims))
            )
        return np.hstack(blocks) if len(blocks) > 1 else blocks[0]

    def content(self, features: Mapping[str, Any]) -> np.ndarray:
        """``(n, content)`` standardised content numbers of scalars or columns,
        each clipped to the range the model was fitted on; a number not known
        yet (NaN, e.g. speed before anything moved) is the profile's mean."""
        raw = self._raw_content(features)
        if len(raw) == 1:
            # One live segment: the same steps on one row, in place (10 us a
            # decision here, against 14 with a fresh array per step).
            row = raw[0]
            np.clip(row, *self.content_range_, out=row)
            np.copyto(row, self.content_mean_, where=np.isnan(row))
            row -= self.content_mean_
            row /= self.content_std_
            return raw
        raw = np.clip(raw, *self.content_range_)
        raw = np.where(np.isnan(raw), self.content_mean_, raw)
        return (raw - self.content_mean_) / self.content_std_

    def _choose_ridge(
        self, design: np.ndarray, target: np.ndarray, groups: np.ndarray, folds: int
    ) -> float:
        """The ridge of `ridges` with the least MAE on groups left out."""
        folds = min(folds, int(groups.max()) + 1)
        if folds < 2:
            return float(sorted(self.ridges)[len(self.ridges) // 2])
        fold = groups % folds
        errors = np.zeros(len(self.ridges))
        for k in range(folds):
            train, test = fold != k, fold == k
            x, n = design[train], int(train.sum())
            gram, moment = x.T @ x / n, x.T @ target[train] / n
            for i, ridge in enumerate(self.ridges):
                theta = np.linalg.solve(gram + ridge * np.eye(len(gram)), moment)
                errors[i] += np.abs(design[test] @ theta - target[test]).sum()
        return float(self.ridges[int(np.argmin(errors))])

    def bind(self, branches: Sequence[Branch]) -> BoundAccuracy:
        branches = tuple(branches)
        return BoundAccuracy(
            branches,
            self.table_.encoder_.encode_branches(branches),
            self.table_.predict(branches),
            self.nearby_.bind([str(b) for b in branches]),
        )

    def predict(
        self, branches: Sequence[Branch] | BoundAccuracy, features: Mapping[str, Any]
    ) -> np.ndarray:
        """``(B,)`` AP50 of each branch on content ``features`` (one segment).

        ``features`` holds ``objects``, ``object_size_px``, ``object_speed_px``,
        ``frame_w``, ``frame_h`` and, for a heavy model, each heavy feature as a
        vector under its name (or as ``name_0..`` keys).
        """
        return np.clip(self.score(branches, features), 0.0, 1.0)

    def score(
        self, branches: Sequence[Branch] | BoundAccuracy, features: Mapping[str, Any]
    ) -> np.ndarray:
        """`predict` before clipping to [0, 1]: what a choice should rank by.

        On an easy scene the linear model puts several branches above 1; clipped,
        they tie, and a policy that breaks ties by speed then takes the cheapest
        of them. On PETS (about 5 people) the profile's model scored yolox_nano
        s416, s320 and nanodet_m s416 every frame all 1.00, and the adaptive run
        detected with fastestdet (AP50 0.75 there, against 0.89).
        """
        bound = branches if isinstance(branches, BoundAccuracy) else self.bind(branches)
        content = self.content(features)
        if len(content) != 1:
            raise ValueError(
                f"features: expected one segment's features, got {len(content)}"
            )
        bilinear = bound.base + bound.knobs @ (self.theta_ @ content[0])
        return bilinear + self.nearby_.correction(content[0], bound.nearby)

    def predict_rows(self, rows: pd.DataFrame) -> np.ndarray:
        """``(n,)`` AP50 of ``accuracy/segments`` rows joined with their features."""
        nearby = self.nearby_.correction_rows(self.content(rows), list(rows["branch"]))
        return np.clip(self._bilinear_rows(rows) + nearby, 0.0, 1.0)

    def _bilinear_rows(self, rows: pd.DataFrame) -> np.ndarray:
        """``(n,)`` unclipped table + knob x content part of rows."""
        knobs = self.table_.encoder_.encode_rows(rows)
        correction = np.einsum("nk,kc,nc->n", knobs, self.theta_, self.content(rows))
        return self.table_.predict_rows(rows) + correction

    def to_dict(self) -> dict:
        return {
            **header(self.KIND),
            "params": self.get_params(),
            "table": self.table_.to_dict(),
            "light_features": self.light_used_,
            "projections": [p.to_dict() for p in self.projections_],
            "content_range": self.content_range_.tolist(),
            "content_mean": self.content_mean_.tolist(),
            "content_std": self.content_std_.tolist(),
            "ridge_shared": self.ridge_shared_,
            "ridge_interactions": self.ridge_interactions_,
            "theta": self.theta_.tolist(),
            "nearby": self.nearby_.to_dict(),
            "heldout_error": self.heldout_error_,
        }

    @classmethod
    def from_dict(cls, data: dict, name: str | None = None) -> Self:
        name = name or cls.KIND
        reader = ModelReader(data, name, cls.KIND)
        params = reader.get("params")
        if not isinstance(params, dict):
            raise reader.error("params", "expected an object")
        try:
            model = cls(**params)
        except TypeError as error:
            raise reader.error("params", str(error)) from None
        model.table_ = AccuracyTable.from_dict(reader.get("table"), f"{name}.table")
        model.light_used_ = reader.strings("light_features")
        unknown = sorted(set(model.light_used_) - set(LIGHT_NAMES))
        if unknown:
            raise reader.error("light_features", f"unknown features {unknown}")
        projections = reader.get("projections")
        if not isinstance(projections, list):
            raise reader.error("projections", "expected a list")
        model.projections_ = [
            Projection.from_reader(reader, f"projections.{i}")
            for i in range(len(projections))
        ]
        width = len(model.content_names)
        # Models fitted before content was clipped have no range: never clip.
        unbounded = [[-np.inf] * width, [np.inf] * width]
        if reader.optional("content_range") is None:
            model.content_range_ = np.array(unbounded)
        else:
            model.content_range_ = reader.array("content_range", (2, width))
        model.content_mean_ = reader.array("content_mean", (width,))
        model.content_std_ = reader.array("content_std", (width,))
        model.ridge_shared_ = reader.number("ridge_shared")
        model.ridge_interactions_ = reader.number("ridge_interactions")
        knobs = len(model.table_.encoder_.columns)
        model.theta_ = reader.array("theta", (knobs, width))
        # Models fitted before the nearby-segment correction have none.
        model.nearby_ = (
            NearbySegments.from_reader(reader, "nearby", width)
            if reader.optional("nearby") is not None
            else NearbySegments.none()
        )
        model.heldout_error_ = reader.optional("heldout_error", {})
        return model


def _segment_means(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Per-segment means of ``values`` rows; ``segment`` numbers rows 0..S-1."""
    counts = np.bincount(segment).astype(np.float64)
    sums = np.zeros((len(counts), *values.shape[1:]))
    np.add.at(sums, segment, values)
    return sums / counts.reshape(-1, *([1] * (values.ndim - 1)))


def _products(knobs: np.ndarray, content: np.ndarray) -> np.ndarray:
    """``(n, k * c)`` every knob column times every content column."""
    return (knobs[:, :, None] * content[:, None, :]).reshape(len(knobs), -1)


def join_features(rows: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """``rows`` joined with their segment's features; names segments lacking them."""
    keys = list(SEGMENT_KEYS)
    missing = [c for c in (*keys, "frame_w", "frame_h") if c not in features.columns]
    if missing:
        raise ValueError(f"accuracy features table lacks columns {missing}")
    joined = rows.merge(features, on=keys, how="left", validate="many_to_one")
    lacking = joined[joined["frame_w"].isna()][keys].drop_duplicates()
    if len(lacking):
        raise ValueError(
            "accuracy features table has no row for segments "
            f"{[tuple(r) for r in lacking.to_numpy()[:5]]}"
        )
    return joined
