"""Latency as a linear model of the workload whose weights move with contention.

A surface gives, for each group (a detector kernel, a tracker phase, ...),

    ms = sum over grid nodes n of  w_n(contention) * (coef[group, n] @ phi(workload))

where the nodes are the contention levels profiled (cpu x membw x gpu) and
``w_n`` are multilinear "hat" weights: at a profiled level the model is that
level's own fit, between levels it blends the neighbours linearly. Linear
blending is the physics of the generator rather than a guess: fractional CPU
contention is a duty cycle (1.5 = a second core busy half the time), so the
mean latency at 1.5 is the time-weighted mean of the latencies at 1 and 2.
Past the last level the end segment is extended, so a busier device than the
profile saw gets a larger, never a wild, prediction (degree-2 polynomials in
contention, as in ApproxDet, swing badly between and beyond their points).

Fitting minimises *relative* squared error (latencies span 0.1-300 ms and the
held-out score is a MAPE), with a tiny penalty on differences between
neighbouring nodes and on non-intercept coefficients: it leaves identified
coefficients alone but fills a node nobody measured from its neighbours and
zeroes a feature the data never varied. Prediction is plain numpy.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

from approxrt.contention import ContentionLevels
from approxrt.scheduler.model_io import ModelReader

# Table columns of the levels asked of the generator, in grid-axis order.
LEVEL_COLUMNS = ("cpu", "membw_mbps", "gpu_pct")


@dataclass(frozen=True)
class ContentionGrid:
    """The profiled contention levels, one sorted tuple of knots per axis."""

    cpu: tuple[float, ...]
    membw_mbps: tuple[float, ...]
    gpu_pct: tuple[float, ...]

    @classmethod
    def from_levels(cls, levels: np.ndarray) -> ContentionGrid:
        """The grid spanned by ``(n, 3)`` rows of (cpu, membw_mbps, gpu_pct)."""
        levels = np.asarray(levels, dtype=np.float64).reshape(-1, 3)
        if len(levels) == 0:
            raise ValueError("contention levels: no rows to build a grid from")
        axes = (tuple(float(v) for v in np.unique(levels[:, i])) for i in range(3))
        return cls(*axes)

    @property
    def axes(self) -> tuple[tuple[float, ...], ...]:
        return (self.cpu, self.membw_mbps, self.gpu_pct)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.cpu), len(self.membw_mbps), len(self.gpu_pct))

    @property
    def nodes(self) -> int:
        return int(np.prod(self.shape))

    def weights(self, levels: np.ndarray) -> np.ndarray:
        """``(n, nodes)`` float64 hat weights of ``(n, 3)`` level rows."""
        levels = np.asarray(levels, dtype=np.float64).reshape(-1, 3)
        cpu, membw, gpu = (
            _axis_weights(levels[:, i], knots) for i, knots in enumerate(self.axes)
        )
        outer = cpu[:, :, None, None] * membw[:, None, :, None] * gpu[:, None, None, :]
        return outer.reshape(len(levels), self.nodes)

    def weights_at(self, contention: ContentionLevels | None) -> np.ndarray:
        """``(nodes,)`` weights of one level; ``None`` is an idle device.

        The same numbers as `weights`, in plain Python: the scheduler asks once
        per decision, and a handful of floats is quicker without array calls.
        """
        contention = contention or ContentionLevels()
        values = (contention.cpu, contention.membw_mbps, contention.gpu_pct)
        cpu, membw, gpu = (
            _axis_weights_one(v, knots)
            for v, knots in zip(values, self.axes, strict=True)
        )
        weights = np.zeros(self.nodes)
        _, size_membw, size_gpu = self.shape
        for i, w_cpu in cpu:
            for j, w_membw in membw:
                for k, w_gpu in gpu:
                    weights[(i * size_membw + j) * size_gpu + k] += (
                        w_cpu * w_membw * w_gpu
                    )
        return weights

    def to_dict(self) -> dict[str, list[float]]:
        return dict(zip(LEVEL_COLUMNS, (list(a) for a in self.axes), strict=True))

    @classmethod
    def from_reader(cls, reader: ModelReader, key: str) -> ContentionGrid:
        axes = []
        for column in LEVEL_COLUMNS:
            knots = reader.array(f"{key}.{column}", (None,))
            if len(knots) == 0 or np.any(np.diff(knots) <= 0):
                raise reader.error(
                    f"{key}.{column}", "expected a non-empty, increasing list"
                )
            axes.append(tuple(float(v) for v in knots))
        return cls(*axes)


def _axis_weights_one(x: float, knots: tuple[float, ...]) -> list[tuple[int, float]]:
    """(knot, weight) pairs of one value: `_axis_weights` of a scalar."""
    if len(knots) == 1:
        return [(0, 1.0)]
    i = min(max(bisect_right(knots, x) - 1, 0), len(knots) - 2)
    t = (x - knots[i]) / (knots[i + 1] - knots[i])
    return [(i, 1.0 - t), (i + 1, t)]


def _axis_weights(x: np.ndarray, knots: tuple[float, ...]) -> np.ndarray:
    """``(n, len(knots))`` piecewise-linear weights; linear past either end."""
    if len(knots) == 1:
        return np.ones((len(x), 1))
    k = np.asarray(knots)
    i = np.clip(np.searchsorted(k, x, side="right") - 1, 0, len(k) - 2)
    t = (x - k[i]) / (k[i + 1] - k[i])
    weights = np.zeros((len(x), len(k)))
    rows = np.arange(len(x))
    weights[rows, i] = 1.0 - t
    weights[rows, i + 1] += t
    return weights


@dataclass(frozen=True)
class Surfaces:
    """Fitted surfaces of several groups over one grid and one feature list.

    Attributes:
        grid: the contention nodes.
        features: names of the workload features ``phi`` (first is "intercept").
        groups: names of the groups, e.g. detector kernels.
        coef_ms: ``(groups, nodes, features)`` float64 coefficients.
    """

    grid: ContentionGrid
    features: tuple[str, ...]
    groups: tuple[str, ...]
    coef_ms: np.ndarray
    # coef_ms as (nodes, groups * features): one product gives every group.
    _by_node: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_node = np.ascontiguousarray(self.coef_ms.transpose(1, 0, 2))
        object.__setattr__(self, "_by_node", by_node.reshape(self.grid.nodes, -1))

    def index(self, names: list[str] | tuple[str, ...], what: str) -> np.ndarray:
        """``(n,) int64`` positions of ``names``; names the missing ones."""
        position = {name: i for i, name in enumerate(self.groups)}
        missing = sorted({n for n in names if n not in position})
        if missing:
            raise ValueError(
                f"{what}: no profile for {', '.join(missing)}; "
                f"profiled: {', '.join(self.groups)}"
            )
        return np.fromiter((position[n] for n in names), np.int64, len(names))

    def at(self, node_weights: np.ndarray) -> np.ndarray:
        """``(groups, features)`` coefficients at one contention level."""
        return (node_weights @ self._by_node).reshape(len(self.groups), -1)

    def predict_rows(
        self, group_index: np.ndarray, phi: np.ndarray, levels: np.ndarray
    ) -> np.ndarray:
        """``(n,)`` ms of rows, each with its own group, features and levels."""
        weights = self.grid.weights(levels)
        return np.einsum("nk,nkp,np->n", weights, self.coef_ms[group_index], phi)

    def to_dict(self) -> dict:
        return {
            "grid": self.grid.to_dict(),
            "features": list(self.features),
            "groups": list(self.groups),
            "coef_ms": self.coef_ms.tolist(),
        }

    @classmethod
    def from_reader(cls, reader: ModelReader, key: str) -> Surfaces:
        grid = ContentionGrid.from_reader(reader, f"{key}.grid")
        features = reader.strings(f"{key}.features")
        groups = reader.strings(f"{key}.groups")
        coef = reader.array(f"{key}.coef_ms", (len(groups), grid.nodes, len(features)))
        return cls(grid, tuple(features), tuple(groups), coef)


def fit_surface(
    phi: np.ndarray,
    node_weights: np.ndarray,
    ms: np.ndarray,
    grid: ContentionGrid,
    nonnegative: bool,
    smoothing: float = 1e-3,
) -> np.ndarray:
    """``(nodes, features)`` coefficients of one group, by relative least squares.

    Args:
        phi: ``(n, features)`` workload features of n cells (robust medians).
        node_weights: ``(n, nodes)`` their contention weights (`ContentionGrid`).
        ms: ``(n,)`` the cells' measured latency.
        grid: the grid the weights were built on (for the smoothing penalty).
        nonnegative: keep every coefficient >= 0 (costs that only add up, so the
            prediction can only grow with objects, sizes and frame pixels).
        smoothing: weight of the penalty; raising it pulls neighbouring nodes
            together and unsupported features towards zero.
    """
    n, features = phi.shape
    # A feature the cells cannot tell apart from the ones before it (one frame
    # size measured: frame_mpx is the intercept again) gets no weight at all,
    # rather than an arbitrary share of the others'.
    identified = _identified_columns(phi)
    phi = phi * identified
    design = (node_weights[:, :, None] * phi[:, None, :]).reshape(n, -1)
    # Rows divided by the measurement: every cell counts by its relative error.
    relative = 1.0 / np.maximum(ms, 0.05 * np.median(ms) + 1e-9)
    column_scale = np.sqrt(np.mean(phi**2, axis=0))
    column_scale[column_scale == 0] = 1.0
    penalty = _penalty_rows(grid, features) * np.tile(column_scale, grid.nodes)
    penalty *= smoothing / max(float(np.median(ms)), 1e-9)
    a = np.vstack([design * relative[:, None], penalty])
    b = np.concatenate([ms * relative, np.zeros(len(penalty))])
    if nonnegative:
        from scipy.optimize import nnls  # fitting only; prediction is numpy

        coef = nnls(a, b)[0]
    else:
        coef = np.linalg.lstsq(a, b, rcond=None)[0]
    return coef.reshape(grid.nodes, features)


def _identified_columns(phi: np.ndarray) -> np.ndarray:
    """``(features,) bool``: columns not a linear combination of earlier ones."""
    kept = np.zeros(phi.shape[1], dtype=bool)
    for p in range(phi.shape[1]):
        column = phi[:, p]
        if kept.any():
            basis = phi[:, kept]
            column = column - basis @ np.linalg.lstsq(basis, column, rcond=None)[0]
        kept[p] = np.linalg.norm(column) > 1e-6 * (np.linalg.norm(phi[:, p]) + 1e-300)
    return kept


def _penalty_rows(grid: ContentionGrid, features: int) -> np.ndarray:
    """Rows of node differences along each axis, plus ridge rows off the intercept.

    Columns follow ``coef.reshape(-1)`` of a ``(nodes, features)`` array.
    """
    node_ids = np.arange(grid.nodes).reshape(grid.shape)
    pairs = []
    for axis in range(3):
        low = np.take(node_ids, range(grid.shape[axis] - 1), axis=axis).ravel()
        high = np.take(node_ids, range(1, grid.shape[axis]), axis=axis).ravel()
        pairs += zip(low, high, strict=True)
    rows = []
    for low, high in pairs:
        for p in range(features):
            row = np.zeros(grid.nodes * features)
            row[low * features + p], row[high * features + p] = 1.0, -1.0
            rows.append(row)
    # Ridge ten times weaker than the differences: a node nobody measured takes
    # its neighbours' values instead of being pulled towards zero.
    for node in range(grid.nodes):
        for p in range(1, features):
            row = np.zeros(grid.nodes * features)
            row[node * features + p] = 0.1
            rows.append(row)
    return np.array(rows).reshape(-1, grid.nodes * features)
