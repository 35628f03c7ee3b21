"""What the bilinear accuracy model got wrong on the profiled segments nearest in
content, added back to its prediction.

`ContentAccuracyModel` is smooth in content: a few knob x content products
shared by every branch, too coarse to rank close branches on one kind of scene.
On the benchmark profile's segments (docs/benchmarks/profiler.md, stop 17), the
branch it ranked first was on average 0.147 AP50 short of the segment's best on
the scene of 20 small objects and 0.050 on the fast one (0.053 and 0.032 with
this correction, in the same cross-validation). `NearbySegments` keeps, per
profiled segment and branch, the residual ``ap50 - bilinear`` and predicts, for
a content vector ``c``, the kernel-weighted mean residual of the segments near
``c``::

    correction(b, c) = sum_s w_s(c) r[s, b] / (prior + sum_s w_s(c))
    w_s(c) = exp(-|c - c_s|^2 / (2 h^2))

(Nadaraya-Watson regression with a prior weight on "no correction": far from
every profiled segment the correction fades to 0 and the bilinear model
speaks alone). The bandwidth ``h`` and the prior are chosen by leave-one-
segment-out error on the residuals, "no correction" included, so a profile
whose segments do not predict each other gets none. Prediction is one
matrix-vector product over the profiled segments (tens): about 10 us for
1,360 branches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import Self

import numpy as np

from approxrt.scheduler.model_io import ModelReader


@dataclass(frozen=True)
class BoundNearby:
    """Branches prepared for `NearbySegments.correction`: of ``width`` branches,
    those at ``columns`` were profiled; ``stacked`` ``(S, 2 * len(columns))``
    holds their residuals, then their known-masks (one product gives both)."""

    width: int
    columns: np.ndarray
    stacked: np.ndarray


class NearbySegments:
    """Residuals of profiled segments, weighted by nearness in content.

    Args:
        bandwidths: kernel widths tried, in standardised content units.
        priors: weights of "no correction" tried (a segment at distance 0
            weighs 1).
    """

    def __init__(
        self,
        bandwidths: Sequence[float] = (0.25, 0.5, 1.0, 2.0),
        priors: Sequence[float] = (0.1, 1.0),
    ) -> None:
        self.bandwidths = tuple(bandwidths)
        self.priors = tuple(priors)

    def fit(
        self, content: np.ndarray, residual: np.ndarray, branches: Sequence[str]
    ) -> Self:
        """``content`` ``(S, c)`` per segment; ``residual`` ``(S, B)``, NaN where
        a branch has no score on a segment; ``branches`` names its columns."""
        self.branches_ = list(branches)
        self.content_ = np.asarray(content, np.float64)
        self.known_ = np.isfinite(residual)
        self.residual_ = np.where(self.known_, residual, 0.0)
        self.errors_ = {"none": _mean_abs(self.residual_, self.known_)}
        self.bandwidth_: float | None = None
        self.prior_ = 1.0
        best = self.errors_["none"]
        for bandwidth, prior in product(self.bandwidths, self.priors):
            error = self._leave_one_out_error(bandwidth, prior)
            self.errors_[f"h={bandwidth:g},prior={prior:g}"] = error
            if error < best:
                best, self.bandwidth_, self.prior_ = error, bandwidth, prior
        return self

    @classmethod
    def none(cls) -> NearbySegments:
        """No profiled segments: a correction of 0 for every branch."""
        return cls().fit(np.zeros((0, 0)), np.zeros((0, 0)), [])

    def _leave_one_out_error(self, bandwidth: float, prior: float) -> float:
        weights = self._weights(self.content_, bandwidth)
        np.fill_diagonal(weights, 0.0)  # a segment never predicts itself
        predicted = (weights @ self.residual_) / (prior + weights @ self.known_)
        return _mean_abs(self.residual_ - predicted, self.known_)

    def _weights(self, content: np.ndarray, bandwidth: float) -> np.ndarray:
        """Kernel weights against the segments: ``(S,)`` of one content vector
        ``(c,)``, ``(n, S)`` of rows ``(n, c)``."""
        squared = ((content[..., None, :] - self.content_) ** 2).sum(-1)
        return np.exp(-squared / (2.0 * bandwidth * bandwidth))

    def bind(self, names: Sequence[str]) -> BoundNearby:
        """``names`` prepared for `correction` (a branch never profiled gets no
        correction, and no place in the product)."""
        position = {b: i for i, b in enumerate(self.branches_)}
        index = np.array([position.get(n, -1) for n in names], np.int64)
        columns = np.flatnonzero(index >= 0)
        profiled = index[columns]
        stacked = np.hstack([self.residual_[:, profiled], self.known_[:, profiled]])
        return BoundNearby(
            len(names), columns, np.ascontiguousarray(stacked, np.float64)
        )

    def correction(self, content: np.ndarray, bound: BoundNearby) -> np.ndarray:
        """``(B,)`` correction at one standardised content vector ``(c,)``."""
        out = np.zeros(bound.width)
        if self.bandwidth_ is None or len(bound.columns) == 0:
            return out
        weights = self._weights(content, self.bandwidth_)
        sums = weights @ bound.stacked  # residuals, then known-weights
        profiled = len(bound.columns)
        out[bound.columns] = sums[:profiled] / (self.prior_ + sums[profiled:])
        return out

    def correction_rows(self, content: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """``(n,)`` correction of rows, each with its content ``(n, c)`` and branch."""
        if self.bandwidth_ is None:
            return np.zeros(len(names))
        bound = self.bind(names)
        residual, known = np.split(bound.stacked, 2, axis=1)
        out = np.zeros(len(names))
        weights = self._weights(content[bound.columns], self.bandwidth_)  # (n, S)
        numerator = np.einsum("ns,sn->n", weights, residual)
        denominator = self.prior_ + np.einsum("ns,sn->n", weights, known)
        out[bound.columns] = numerator / denominator
        return out

    def to_dict(self) -> dict:
        return {
            "bandwidths": list(self.bandwidths),
            "priors": list(self.priors),
            "bandwidth": self.bandwidth_,
            "prior": self.prior_,
            "branches": self.branches_,
            "content": self.content_.tolist(),
            "residual": self.residual_.tolist(),
            "known": self.known_.astype(int).tolist(),
            "errors": self.errors_,
        }

    @classmethod
    def from_reader(cls, reader: ModelReader, key: str, width: int) -> NearbySegments:
        if reader.get(f"{key}.bandwidth") is None:
            return cls.none()  # it chose no correction: its residuals are unused
        model = cls(
            reader.array(f"{key}.bandwidths", (None,)).tolist(),
            reader.array(f"{key}.priors", (None,)).tolist(),
        )
        model.bandwidth_ = reader.number(f"{key}.bandwidth")
        model.prior_ = reader.number(f"{key}.prior")
        model.branches_ = reader.strings(f"{key}.branches")
        model.content_ = reader.array(f"{key}.content", (None, width))
        shape = (len(model.content_), len(model.branches_))
        model.residual_ = reader.array(f"{key}.residual", shape)
        model.known_ = reader.array(f"{key}.known", shape) > 0
        model.errors_ = reader.optional(f"{key}.errors", {})
        return model


def _mean_abs(values: np.ndarray, mask: np.ndarray) -> float:
    return float(np.abs(values[mask]).mean()) if mask.any() else 0.0
