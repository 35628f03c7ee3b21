"""The fit step: every model of a profile, fitted on its tables and scored honestly.

`fit_profile` fits each stage's latency model on the samples taken at the
fitting contention levels and scores it on the levels held out
(``config.profile.heldout_levels``), which it never sees; scores the composed
branch prediction against whole branches run end to end (``latency/branches``,
run at held-out levels); and scores the accuracy models on whole segments left
out (group k-fold over (video, segment)). The models it returns are fitted on
every fitting row (all segments for accuracy) and carry those held-out errors.

The store writes ``FitResult.models`` as ``models/<name>.json``; `load_models`
(from `approxrt.scheduler.profile_models`, numpy-only) reads them back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from approxrt.branch import Branch
from approxrt.contention import ContentionLevels
from approxrt.profile_schema import TABLES
from approxrt.scheduler.accuracy_features import heavy_dims
from approxrt.scheduler.accuracy_model import ContentAccuracyModel, join_features
from approxrt.scheduler.accuracy_table import SEGMENT_KEYS, AccuracyTable, scored_rows
from approxrt.scheduler.contention_surface import LEVEL_COLUMNS
from approxrt.scheduler.kernel_views import KernelViews
from approxrt.scheduler.latency_model import (
    AssociationModel,
    BranchLatencyModel,
    DetectorLatencyModel,
    OverheadModel,
    SwitchingModel,
    TrackerLatencyModel,
)
from approxrt.scheduler.model_io import json_number
from approxrt.scheduler.profile_models import (
    ACCURACY_TABLE,
    BRANCH_LATENCY,
    CONTENT_HEAVY,
    CONTENT_LIGHT,
    KERNEL_VIEWS,
    ProfileModels,
    load_models,
)
from approxrt.sources.scene_config import SceneConfig

if TYPE_CHECKING:
    import pandas as pd

    from approxrt.config import Config

__all__ = [
    "CROWDED_OBJECTS",
    "FitResult",
    "ProfileModels",
    "fit_profile",
    "load_models",
]

# Scenes with at least this many objects per frame are scored apart: there the
# trackers, not the detector, dominate a group of frames.
CROWDED_OBJECTS = 30
ACCURACY_FOLDS = 5
REQUIRED_TABLES = ("latency/detector", "latency/association", "latency/overhead")


@dataclass(frozen=True)
class FitResult:
    """What the fit step made.

    Attributes:
        models: model name to its JSON-safe dict (written as models/<name>.json).
        errors: JSON-safe held-out errors of every model (see `fit_profile`).
        pairs: ``(measured, predicted)`` float64 arrays of the held-out points
            the errors were computed on, for plots, under the same names as
            their entries in ``errors`` (``detector``, ``tracker``, ...,
            ``branch`` for gof_mean, and each accuracy model's name).
        fitted: the fitted models themselves.
    """

    models: dict[str, dict]
    errors: dict[str, Any]
    pairs: dict[str, tuple[np.ndarray, np.ndarray]]
    fitted: ProfileModels


def fit_profile(tables: Mapping[str, pd.DataFrame], config: Config) -> FitResult:
    """Fit every model on a profile's tables (``{"latency/detector": df, ...}``).

    Required: ``latency/detector``, ``latency/association``, ``latency/overhead``;
    ``latency/tracker`` when the space tracks. Optional: ``latency/switching``,
    ``latency/branches`` (scores the branch prediction), ``accuracy/segments``
    and ``accuracy/features`` (accuracy models), ``accuracy/kernel_features``
    (`KernelViews`).

    ``errors`` holds, each with its number of points: ``detector`` (MAPE per
    kernel and overall on held-out levels), ``tracker``, ``association``,
    ``overhead`` (MAPE), ``switching`` (MAE ms), ``branch`` (MAPE of
    gof_mean, detect_frame, track_frame against whole branches, and of gof_mean
    for scenes with >= `CROWDED_OBJECTS` objects), ``accuracy`` (MAE on held-out
    segments of the table and of the content-aware models, side by side), and
    each accuracy model's own entry (``accuracy_table``, ...).

    Raises:
        ValueError: naming a missing table or column, or a table with no rows
            outside the held-out levels.
    """
    _check_tables(tables)
    heldout = [ContentionLevels.parse(s) for s in config.profile.heldout_levels]
    errors: dict[str, Any] = {"heldout_levels": [str(level) for level in heldout]}
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    latency = _fit_latency(tables, heldout, errors, pairs)
    accuracy = _fit_accuracy(tables, config.profile.heavy_features, errors, pairs)
    models = {BRANCH_LATENCY: latency.to_dict()}
    models.update({name: model.to_dict() for name, model in accuracy.items()})
    fitted = ProfileModels(
        latency,
        accuracy.get(ACCURACY_TABLE),
        accuracy.get(CONTENT_LIGHT),
        accuracy.get(CONTENT_HEAVY),
        accuracy.get(KERNEL_VIEWS),
    )
    return FitResult(models, errors, pairs, fitted)


def _check_tables(tables: Mapping[str, pd.DataFrame]) -> None:
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ValueError(f"tables: unknown {unknown}; known: {', '.join(TABLES)}")
    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        raise ValueError(f"tables: the fit needs {missing}; given {sorted(tables)}")
    for name, table in tables.items():
        lacking = [c for c in TABLES[name] if c not in getattr(table, "columns", ())]
        if lacking:
            raise ValueError(f"table {name}: missing columns {lacking}")


def heldout_mask(table: pd.DataFrame, levels: Sequence[ContentionLevels]) -> np.ndarray:
    """``(n,) bool``: rows measured at one of the held-out ``levels``."""
    values = table[list(LEVEL_COLUMNS)].to_numpy(np.float64)
    mask = np.zeros(len(table), dtype=bool)
    for level in levels:
        target = [level.cpu, level.membw_mbps, level.gpu_pct]
        mask |= np.all(np.isclose(values, target, rtol=0.0, atol=1e-6), axis=1)
    return mask


def _fit_latency(tables, heldout, errors, pairs) -> BranchLatencyModel:
    stages = {
        "detector": (DetectorLatencyModel(), "latency/detector"),
        "tracker": (TrackerLatencyModel(), "latency/tracker"),
        "association": (AssociationModel(), "latency/association"),
        "overhead": (OverheadModel(), "latency/overhead"),
    }
    fitted = {}
    for stage, (model, table_name) in stages.items():
        table = tables.get(table_name)
        if stage == "tracker" and (table is None or len(table) == 0):
            errors[stage] = None  # a space without tracking branches
            continue
        fitted[stage] = _fit_stage(model, table, heldout, stage, errors, pairs)
    switching = _fit_switching(tables.get("latency/switching"), heldout, errors)
    latency = BranchLatencyModel(
        fitted["detector"],
        fitted.get("tracker"),
        fitted["association"],
        fitted["overhead"],
        switching,
    )
    latency.heldout_error_ = _score_branches(
        latency, tables.get("latency/branches"), heldout, pairs
    )
    errors["branch"] = latency.heldout_error_
    return latency


def _fit_stage(model, table, heldout, stage: str, errors, pairs):
    mask = heldout_mask(table, heldout)
    fit_rows = table[~mask]
    if len(fit_rows) == 0:
        raise ValueError(
            f"table latency/{stage}: no rows outside the held-out levels to fit on"
        )
    model.fit(fit_rows)
    cells = model.cells(table[mask]) if mask.any() else table.iloc[:0]
    if len(cells):
        known = cells["group"].isin(model.surfaces_.groups) & (cells["ms"] > 0)
        cells = cells[known.to_numpy()]
    error: dict[str, Any] = {"cells": len(cells), "mape": None, "mape_by_group": {}}
    if len(cells):
        measured = cells["ms"].to_numpy(np.float64)
        predicted = model.predict_cells(cells)
        ape = np.abs(predicted - measured) / measured
        by_group = {
            group: json_number(ape[(cells["group"] == group).to_numpy()].mean())
            for group in sorted(set(cells["group"]))
        }
        error.update(mape=json_number(ape.mean()), mape_by_group=by_group)
        pairs[stage] = (measured, predicted)
    model.heldout_error_ = error
    errors[stage] = error
    return model


def _fit_switching(table, heldout, errors) -> SwitchingModel:
    if table is None:
        table = _empty("latency/switching")
    mask = heldout_mask(table, heldout) if len(table) else np.zeros(0, bool)
    model = SwitchingModel().fit(table[~mask])
    error: dict[str, Any] = {"pairs": 0, "mae_ms": None}
    if mask.any():
        rows = table[mask]
        measured = rows.assign(pair=model.pair_names(rows)).groupby("pair")["extra_ms"]
        medians = measured.median()
        predicted = [model.pair_ms(*pair.split("->")) for pair in medians.index]
        error = {
            "pairs": len(medians),
            "mae_ms": json_number(np.mean(np.abs(np.array(predicted) - medians))),
        }
    model.heldout_error_ = error
    errors["switching"] = error
    return model


def _empty(name: str) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns=list(TABLES[name]))


def _score_branches(
    latency: BranchLatencyModel, table, heldout, pairs
) -> dict[str, Any]:
    """MAPE of the composed prediction against branches run end to end.

    ``heldout_rows`` says how many rows ran at held-out levels: a profile made
    without a contention generator validates at the idle level, which is fitted.
    """
    if table is None:
        table = _empty("latency/branches")
    held = heldout_mask(table, heldout)
    scored, skipped = [], []
    for row, at_heldout in zip(table.to_dict("records"), held, strict=True):
        try:
            branch = Branch.parse(row["branch"])
            level = ContentionLevels(*(float(row[c]) for c in LEVEL_COLUMNS))
            predicted = latency.predict_one(
                branch,
                level,
                row["objects_mean"],
                row["object_size_px"],
                (row["frame_w"], row["frame_h"]),
            )
        except ValueError:  # a branch or level the profile cannot predict
            skipped.append(str(row["branch"]))
            continue
        scored.append((row, predicted, at_heldout))
    result: dict[str, Any] = {
        "branches": len(scored),
        "heldout_rows": sum(int(h) for _, _, h in scored),
        "crowded_min_objects": CROWDED_OBJECTS,
        "skipped": sorted(set(skipped)),
    }
    for kind in ("gof_mean", "detect_frame", "track_frame"):
        kept = [(r, p) for r, p, _ in scored if r[f"{kind}_ms"] > 0]
        measured = np.array([r[f"{kind}_ms"] for r, _ in kept], np.float64)
        predicted = np.array([p[kind] for _, p in kept], np.float64)
        result[f"{kind}_mape"] = _mape(measured, predicted)
        if kind == "gof_mean":
            pairs["branch"] = (measured, predicted)
            crowded = np.array([_crowded(r) for r, _ in kept], bool)
            result["crowded_branches"] = int(crowded.sum())
            result["crowded_gof_mean_mape"] = _mape(
                measured[crowded], predicted[crowded]
            )
    return result


def _crowded(row: Mapping[str, Any]) -> bool:
    """A run on a scene holding >= `CROWDED_OBJECTS` objects, or tracking as many.

    The crowded validation scene holds 60 people; a branch tracks only those its
    detector finds (20-29 per frame there), yet tracking dominates its frames.
    """
    if row["objects_mean"] >= CROWDED_OBJECTS:
        return True
    scene = str(row["scene"])
    if not scene.startswith("synthetic:"):
        return False
    return SceneConfig.from_spec(scene).objects >= CROWDED_OBJECTS


def _mape(measured: np.ndarray, predicted: np.ndarray) -> float | None:
    if len(measured) == 0:
        return None
    return json_number(np.mean(np.abs(predicted - measured) / measured))


def _fit_accuracy(tables, heavy_features, errors, pairs) -> dict[str, Any]:
    """The accuracy models, fitted on every segment, with group k-fold MAE."""
    segments = tables.get("accuracy/segments")
    if segments is None:
        errors["accuracy"] = None
        return {}
    rows = scored_rows(segments, "accuracy/segments")
    features = tables.get("accuracy/features")
    makers: dict[str, Callable[[], Any]] = {ACCURACY_TABLE: AccuracyTable}
    heavy: list[str] = []
    if features is not None:
        rows = join_features(rows, features)
        makers[CONTENT_LIGHT] = ContentAccuracyModel
        heavy = [p for p in heavy_features if heavy_dims(list(features.columns), p)]
        if heavy:
            makers[CONTENT_HEAVY] = lambda: ContentAccuracyModel(heavy_features=heavy)
    groups = rows.groupby(list(SEGMENT_KEYS), sort=True).ngroup().to_numpy()
    folds = min(ACCURACY_FOLDS, int(groups.max()) + 1)
    summary: dict[str, Any] = {
        "segments": int(groups.max()) + 1,
        "folds": folds,
        "heavy_features": heavy,
    }
    models = {}
    for name, make in makers.items():
        error = {"segments": summary["segments"], "folds": folds, "mae": None}
        if folds >= 2:
            measured, predicted = _cross_validate(make, rows, features, groups, folds)
            error["mae"] = json_number(np.mean(np.abs(predicted - measured)))
            pairs[name] = (measured, predicted)
        models[name] = _fit_accuracy_model(make(), rows, features)
        models[name].heldout_error_ = errors[name] = error
        summary[f"{name}_mae"] = error["mae"]
    if CONTENT_LIGHT in models:
        summary["light_features"] = models[CONTENT_LIGHT].content_names
    kernel_features = tables.get("accuracy/kernel_features")
    if features is not None and kernel_features is not None:
        views = models[KERNEL_VIEWS] = KernelViews().fit(kernel_features, features)
        summary["kernel_size_ratio"] = views.size_ratio_
    errors["accuracy"] = summary
    return models


def _cross_validate(make, rows, features, groups, folds):
    fold = groups % folds
    predicted = np.zeros(len(rows))
    for k in range(folds):
        test = fold == k
        model = _fit_accuracy_model(make(), rows[~test], features)
        predicted[test] = model.predict_rows(rows[test])
    return rows["ap50"].to_numpy(np.float64), predicted


def _fit_accuracy_model(model, rows, features):
    if isinstance(model, AccuracyTable):
        return model.fit(rows)
    # The content model joins its own features: hand it the segment columns only.
    return model.fit(rows[list(TABLES["accuracy/segments"])], features)
