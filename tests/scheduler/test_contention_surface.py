"""Latency surfaces over the contention grid: weights, fitting, filling gaps."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest

from approxrt.contention import ContentionLevels
from approxrt.scheduler.contention_surface import (
    ContentionGrid,
    Surfaces,
    fit_surface,
)

GRID = ContentionGrid(cpu=(0.0, 1.0, 2.0), membw_mbps=(0.0, 3000.0), gpu_pct=(0.0,))


def node_weights(grid, **levels):
    """Weights keyed by (cpu, membw) node, zeros left out."""
    weights = grid.weights_at(ContentionLevels(**levels))
    nodes = product(grid.cpu, grid.membw_mbps, grid.gpu_pct)
    return {
        (c, m): round(float(w), 12)
        for (c, m, _), w in zip(nodes, weights, strict=True)
        if w != 0
    }


def test_grid_is_built_from_the_distinct_levels_of_the_rows():
    levels = np.array([[1, 0, 0], [0, 3000, 0], [2, 0, 0], [1, 3000, 0]])
    assert ContentionGrid.from_levels(levels) == GRID
    assert GRID.nodes == 6


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ({"cpu": 1.0}, {(1.0, 0.0): 1.0}),
        ({"cpu": 0.5}, {(0.0, 0.0): 0.5, (1.0, 0.0): 0.5}),
        (
            {"cpu": 1.5, "membw_mbps": 1500.0},
            {
                (1.0, 0.0): 0.25,
                (1.0, 3000.0): 0.25,
                (2.0, 0.0): 0.25,
                (2.0, 3000.0): 0.25,
            },
        ),
        # Past the last level the end segment is extended, never flattened.
        ({"cpu": 3.0}, {(1.0, 0.0): -1.0, (2.0, 0.0): 2.0}),
        ({"cpu": 2.0, "gpu_pct": 50.0}, {(2.0, 0.0): 1.0}),
    ],
)
def test_weights_blend_neighbouring_levels_linearly(levels, expected):
    assert node_weights(GRID, **levels) == expected


def test_no_contention_given_means_an_idle_device():
    assert np.array_equal(GRID.weights_at(None), GRID.weights_at(ContentionLevels()))


def _cells(grid_levels, truth):
    rows = [(n, c, m) for n, (c, m) in product((1.0, 5.0, 20.0, 40.0), grid_levels)]
    phi = np.array([[1.0, n] for n, _, _ in rows])
    levels = np.array([[c, m, 0.0] for _, c, m in rows])
    ms = np.array([truth(n, c, m) for n, c, m in rows])
    return phi, levels, ms


def _bilinear_truth(n, cpu, membw):
    """Piecewise-linear in cpu with a kink at 1, linear in membw: in the model class."""
    by_cpu = np.interp(cpu, [0, 1, 2], [1.0, 1.5, 2.8])
    return (2.0 + 0.5 * n) * by_cpu * (1 + 0.1 * membw / 1000)


def test_a_truth_inside_the_model_class_is_recovered_at_heldout_levels():
    fitted_levels = list(product(GRID.cpu, GRID.membw_mbps))
    phi, levels, ms = _cells(fitted_levels, _bilinear_truth)
    coef = fit_surface(phi, GRID.weights(levels), ms, GRID, nonnegative=True)
    surfaces = Surfaces(GRID, ("intercept", "objects"), ("only",), coef[None])
    held_phi, held_levels, held_ms = _cells(
        [(0.5, 0.0), (1.5, 1500.0), (0.25, 750.0)], _bilinear_truth
    )
    index = np.zeros(len(held_ms), np.int64)
    predicted = surfaces.predict_rows(index, held_phi, held_levels)
    assert np.max(np.abs(predicted - held_ms) / held_ms) < 1e-4


def test_a_level_nobody_measured_takes_its_neighbours_values():
    fitted_levels = [lv for lv in product(GRID.cpu, GRID.membw_mbps) if lv != (2, 3000)]
    phi, levels, ms = _cells(fitted_levels, _bilinear_truth)
    coef = fit_surface(phi, GRID.weights(levels), ms, GRID, nonnegative=True)
    at = GRID.weights_at(ContentionLevels(cpu=2, membw_mbps=3000)) @ coef
    neighbours = [
        GRID.weights_at(ContentionLevels(cpu=c, membw_mbps=m)) @ coef
        for c, m in ((1, 3000), (2, 0))
    ]
    assert np.all(at >= np.minimum(*neighbours) - 1e-6)
    assert np.all(at <= np.maximum(*neighbours) + 1e-6)


def test_nonnegative_fit_keeps_every_cost_term_nonnegative():
    # Cost that falls with objects (noise, or a wrong table) cannot make a
    # tracker cheaper with more objects.
    phi, levels, ms = _cells(
        list(product(GRID.cpu, GRID.membw_mbps)), lambda n, c, m: 10.0 - 0.1 * n
    )
    free = fit_surface(phi, GRID.weights(levels), ms, GRID, nonnegative=False)
    kept = fit_surface(phi, GRID.weights(levels), ms, GRID, nonnegative=True)
    assert free[:, 1].min() < -0.05
    assert kept.min() >= 0.0


def test_a_feature_the_data_never_varied_gets_no_weight():
    phi, levels, ms = _cells(list(product(GRID.cpu, GRID.membw_mbps)), _bilinear_truth)
    constant = np.column_stack([phi, np.full(len(phi), 0.9)])
    coef = fit_surface(constant, GRID.weights(levels), ms, GRID, nonnegative=False)
    assert np.max(np.abs(coef[:, 2])) < 1e-3 * np.max(np.abs(coef[:, 0]))


def test_surfaces_name_groups_they_do_not_have():
    surfaces = Surfaces(GRID, ("intercept",), ("kcf/ds1/update",), np.ones((1, 6, 1)))
    with pytest.raises(ValueError, match=r"tracker: no profile for csrt/ds1/update"):
        surfaces.index(["kcf/ds1/update", "csrt/ds1/update"], "tracker")
