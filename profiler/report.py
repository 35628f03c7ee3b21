"""Reading a finished profile: its plots, a summary, and one branch's prediction."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from approxrt.branch import Branch
from approxrt.config import Config
from approxrt.contention import ContentionLevels
from approxrt.profiler.plots import (
    plot_accuracy_latency,
    plot_detector_latency,
    plot_predicted_vs_measured,
    plot_tracker_latency,
)
from approxrt.profiler.store import ProfileStore, profile_config
from approxrt.scheduler.profile_models import ProfileModels, load_models

# Content assumed by `predict` and the accuracy-latency plot when not given:
# the profile's median segment, else a small scene.
FALLBACK_OBJECTS = 5.0
FALLBACK_OBJECT_SIZE_PX = 60.0


def write_plots(store: ProfileStore, tables: Mapping[str, pd.DataFrame], fit) -> list:
    """The profile's PNGs in ``store.plots_dir``; returns their paths."""
    folder = store.plots_dir
    written = []
    if len(tables.get("latency/detector", ())):
        written.append(
            plot_detector_latency(
                tables["latency/detector"], folder / "detector_latency.png"
            )
        )
    if len(tables.get("latency/tracker", ())):
        written.append(
            plot_tracker_latency(
                tables["latency/tracker"], folder / "tracker_latency.png"
            )
        )
    if fit.fitted.accuracy_table is not None:
        points = accuracy_latency_points(fit.fitted, tables, store)
        written.append(plot_accuracy_latency(points, folder / "accuracy_latency.png"))
    if fit.pairs:
        captions = _captions(fit.errors)
        written.append(
            plot_predicted_vs_measured(
                fit.pairs, folder / "predicted_vs_measured.png", captions
            )
        )
    return written


def accuracy_latency_points(
    models: ProfileModels, tables: Mapping[str, pd.DataFrame], store: ProfileStore
) -> pd.DataFrame:
    """Each profiled branch's table AP50 and predicted ms at each fitted level."""
    config = profile_config(store)
    names = sorted(tables["accuracy/segments"]["branch"].unique())
    branches = [Branch.parse(n) for n in names]
    accuracy = models.accuracy_table.predict(branches)
    objects, size_px = typical_content(tables.get("accuracy/features"))
    frame_wh = tuple(config.profile.frame_sizes[0])
    frames = []
    for level in fitted_levels(config):
        latency = models.latency.predict(branches, level, objects, size_px, frame_wh)
        frames.append(
            pd.DataFrame(
                {
                    "branch": names,
                    "level": str(level),
                    "latency_ms": latency["gof_mean"],
                    "accuracy": accuracy,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def fitted_levels(config: Config) -> list[ContentionLevels]:
    """Every level on the fitted grid of ``config.profile``."""
    profile = config.profile
    return [
        ContentionLevels(cpu, membw, gpu)
        for gpu in profile.gpu_levels_pct
        for membw in profile.membw_levels_mbps
        for cpu in profile.cpu_levels
    ]


def typical_content(features: pd.DataFrame | None) -> tuple[float, float]:
    """(objects, object_size_px) of the profile's median segment."""
    if features is None or not len(features):
        return FALLBACK_OBJECTS, FALLBACK_OBJECT_SIZE_PX
    return float(features.objects.median()), float(features.object_size_px.median())


def predict(
    store: ProfileStore,
    branch: Branch,
    contention: ContentionLevels,
    objects: float | None,
    frame_wh: tuple[int, int] | None,
    object_size_px: float | None = None,
) -> dict:
    """``{"branch", "latency_ms": {...}, "accuracy", "inputs"}`` for one branch."""
    models = load_models(store.read_models())
    config = profile_config(store)
    features = (
        store.read_table("accuracy/features")
        if store.has_table("accuracy/features")
        else None
    )
    typical_objects, typical_size = typical_content(features)
    inputs = {
        "contention": contention.to_dict(),
        "objects": typical_objects if objects is None else objects,
        "object_size_px": typical_size if object_size_px is None else object_size_px,
        "frame_wh": list(frame_wh or config.profile.frame_sizes[0]),
    }
    prediction = models.predict_branch(
        branch,
        contention,
        inputs["objects"],
        inputs["object_size_px"],
        tuple(inputs["frame_wh"]),
    )
    accuracy = prediction["accuracy"]
    return {
        "branch": str(branch),
        "latency_ms": prediction["latency_ms"],
        "accuracy": None if math.isnan(accuracy) else accuracy,
        "inputs": inputs,
    }


def describe(store: ProfileStore) -> str:
    """A short text summary: device, space, steps, held-out errors, plots."""
    meta = store.read_meta()
    config = profile_config(store)
    device = meta["device"]
    lines = [
        f"profile {store.path} (schema {meta['schema_version']}, {meta['created']})",
        f"device: {device['cpu_model']}, {device['logical_cores']} cores, "
        f"GPUs: {', '.join(device['gpus']) or 'none'}",
        f"models: {', '.join(meta.get('models', {})) or 'n/a'}",
        f"fitted levels: {', '.join(map(str, fitted_levels(config)))}; held out: "
        f"{', '.join(config.profile.heldout_levels) or 'none'}",
    ]
    for step, info in meta.get("steps", {}).items():
        rows = info.get("rows")
        counted = f", rows {rows}" if rows else ""
        lines.append(f"step {step}: {info['wall_s']:.0f} s{counted}")
    lines += _error_lines(meta.get("errors", {}))
    if store.has_table("accuracy/segments"):
        lines += _best_branches(store.read_table("accuracy/segments"))
    plots = sorted(store.plots_dir.glob("*.png")) if store.plots_dir.is_dir() else []
    lines += [f"plot: {p}" for p in plots]
    return "\n".join(lines)


def _error_lines(errors: dict) -> list[str]:
    lines = []
    for name, value in errors.items():
        if isinstance(value, dict):
            shown = {
                k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in value.items()
                if not isinstance(v, dict | list)
            }
            lines.append(f"held-out error {name}: {shown}")
    return lines


def _best_branches(segments: pd.DataFrame, count: int = 5) -> list[str]:
    mean_ap = segments.groupby("branch").ap50.mean().sort_values(ascending=False)
    lines = [f"branches profiled for accuracy: {len(mean_ap)}; best mean AP50:"]
    lines += [f"  {name}  {ap:.3f}" for name, ap in mean_ap.head(count).items()]
    return lines


def _captions(errors: Mapping) -> dict[str, str]:
    """Each model's headline held-out errors: MAPE as %, MAE as is (two at most)."""
    captions = {}
    for name, value in errors.items():
        if not isinstance(value, dict):
            continue
        parts = []
        for key, number in value.items():
            if not isinstance(number, float) or not np.isfinite(number):
                continue
            if key.endswith("mape"):
                parts.append(f"{key.replace('_', ' ')} {number:.1%}")
            elif key.endswith("mae"):
                parts.append(f"{key.replace('_', ' ')} {number:.3f}")
        captions[name] = "held-out " + "\n".join(parts[:2]) if parts else ""
    return captions


def markdown(store: ProfileStore, command: str, plots_prefix: str) -> str:
    """The benchmark page of a profile: what was measured, how fast, how well."""
    meta = store.read_meta()
    config = profile_config(store)
    steps = meta.get("steps", {})
    total_s = sum(step.get("wall_s", 0.0) for step in steps.values())
    device = meta["device"]
    lines = [
        "# Profiler benchmark",
        "",
        f"Made by `{command}` on {device['cpu_model']} ({device['logical_cores']} "
        f"cores, {device['memory_gb']} GB; GPUs: "
        f"{', '.join(device['gpus']) or 'none'}), {meta['created']}. Libraries: "
        + ", ".join(f"{k} {v}" for k, v in meta.get("libraries", {}).items())
        + ".",
        "",
        "## Size and time",
        "",
        *_space_lines(store, config),
        "",
        "| step | wall time | rows written |",
        "|---|---|---|",
        *[
            f"| {name} | {info['wall_s'] / 60:.1f} min | {info.get('rows', '')} |"
            for name, info in steps.items()
        ],
        f"| **total** | **{total_s / 60:.1f} min** | |",
        "",
        "## How it is this fast: what is measured, what is composed",
        "",
        *_design_lines(store),
        "",
        "## Held-out error of every model",
        "",
        *_error_table(meta.get("errors", {})),
        "",
        "## Plots",
        "",
        *[
            f"![{name}]({plots_prefix}{name}.png)"
            for name in (
                "detector_latency",
                "tracker_latency",
                "accuracy_latency",
                "predicted_vs_measured",
            )
        ],
    ]
    return "\n".join(lines) + "\n"


def _space_lines(store: ProfileStore, config: Config) -> list[str]:
    from approxrt.branches.space import BranchSpace

    space = BranchSpace.from_config(config)
    trackers = {(b.tracker, b.downsample) for b in space if b.tracker}
    profile = config.profile
    lines = [
        f"- Branch space: **{len(space)} branches** from {len(space.kernels)} detector "
        f"kernels and {len(trackers)} (tracker, downsample) pairs.",
        f"- Contention fitted on: {', '.join(map(str, fitted_levels(config)))}; "
        f"held out (scored, never fitted): {', '.join(profile.heldout_levels)}.",
        f"- Frame sizes timed: "
        f"{', '.join(f'{w}x{h}' for w, h in profile.frame_sizes)}.",
    ]
    if store.has_table("accuracy/segments"):
        segments = store.read_table("accuracy/segments")
        videos = segments.groupby("video").segment.nunique()
        lines.append(
            f"- Accuracy: {segments.branch.nunique()} branches scored on "
            + ", ".join(f"{v} ({n} segments)" for v, n in videos.items())
            + f", {profile.segment_frames} frames per segment."
        )
    return lines


def _design_lines(store: ProfileStore) -> list[str]:
    """Which cells were measured (counted from the tables) and what was composed."""
    counts = {}
    for name in ("latency/detector", "latency/tracker", "latency/branches"):
        if store.has_table(name):
            counts[name] = store.read_table(name)
    lines = [
        "- **No branch is timed to be predicted.** A branch's latency is composed from "
        "its stages: detector kernel + association + tracker seeding on the detection "
        "frame, tracker update + loop overhead on the others, averaged over its group "
        "of frames. So the cost grows with kernels and (tracker, downsample) pairs, "
        "not with branches.",
    ]
    if "latency/detector" in counts:
        detector = counts["latency/detector"]
        cells = detector.groupby(
            ["detector", "input_size", "frame_w", "cpu", "membw_mbps"]
        ).ngroups
        lines.append(
            f"- Detector: every kernel x frame size x contention level, {cells} cells, "
            f"{len(detector)} timed calls after warm-up."
        )
    if "latency/tracker" in counts:
        tracker = counts["latency/tracker"]
        per_level = tracker.groupby(["cpu", "membw_mbps"]).size()
        lines.append(
            "- Trackers: the full grid of objects x object size x frame size on the "
            "idle device, only its corners under contention (the fitted model is "
            "linear in objects, so corners pin it): timed calls per level "
            + ", ".join(
                f"cpu={c:g}/membw={m:g}: {n}" for (c, m), n in per_level.items()
            )
            + "."
        )
    if "latency/branches" in counts:
        branches = counts["latency/branches"]
        lines.append(
            f"- Whole branches: {branches.branch.nunique()} branches x "
            f"{branches.scene.nunique()} scenes run end to end, only at the held-out "
            "levels, only to score the composed prediction."
        )
    lines.append(
        "- Accuracy: each kernel runs once per video and its detections are cached; "
        "every (sampling interval, tracker, downsample) is replayed from the cache. "
        "A tracking frame's boxes depend only on the seeds of its group's first "
        "frame, so one tracker run from a frame k serves every sampling interval "
        "whose groups start at k (about 30% fewer tracker frames); jobs run on both "
        "cores."
    )
    return lines


def _error_table(errors: Mapping) -> list[str]:
    lines = ["| model | held-out error |", "|---|---|"]
    for name, value in errors.items():
        if isinstance(value, dict):
            shown = ", ".join(
                f"{k} {v:.1%}" if k.endswith("mape") else f"{k} {v:.4g}"
                for k, v in value.items()
                if isinstance(v, float | int) and not isinstance(v, bool)
            )
            lines.append(f"| {name} | {shown} |")
    return lines
