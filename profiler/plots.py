"""The profile's pictures (PNG): what a device owner looks at before trusting it.

- detector latency against CPU contention, one line per kernel;
- tracker update latency against object count, one line per (tracker, ds);
- accuracy against latency, with the Pareto frontier at each contention level;
- predicted against measured, one panel per fitted model.

Each function takes plain tables or arrays, so it draws any profile's numbers.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: profiling runs on headless devices

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

_KERNEL = ["detector", "input_size", "proposals"]


def plot_detector_latency(detector: pd.DataFrame, path: Path) -> Path:
    """Median detector ms against CPU contention; a panel per frame size.

    Solid lines are without memory-bandwidth contention, dashed with the most.
    """
    sizes = sorted(set(zip(detector.frame_w, detector.frame_h, strict=True)))
    figure, axes = plt.subplots(
        1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False
    )
    membw_levels = sorted(detector.membw_mbps.unique())
    membw_shown = [membw_levels[0]] + membw_levels[-1:] * (len(membw_levels) > 1)
    for axis, (w, h) in zip(axes[0], sizes, strict=True):
        cell = detector[(detector.frame_w == w) & (detector.frame_h == h)]
        medians = (
            cell.groupby([*_KERNEL, "membw_mbps", "cpu"])
            .total_ms.median()
            .reset_index()
        )
        colors = plt.colormaps["tab20"](np.linspace(0, 1, 20))
        for index, (kernel, rows) in enumerate(medians.groupby(_KERNEL)):
            color = colors[index % len(colors)]
            for membw, style in zip(membw_shown, ("-", "--"), strict=False):
                line = rows[rows.membw_mbps == membw].sort_values("cpu")
                axis.plot(
                    line.cpu,
                    line.total_ms,
                    style,
                    marker="o",
                    color=color,
                    label=_kernel_name(kernel) if style == "-" else None,
                )
        axis.set(
            title=f"frames {w}x{h} (dashed: membw {membw_shown[-1]:g} MB/s)",
            xlabel="CPU contention (cores kept busy)",
            ylabel="detector ms (median)",
        )
        axis.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, ncol=2, loc="upper left")
    return _save(figure, path)


def plot_tracker_latency(tracker: pd.DataFrame, path: Path) -> Path:
    """Median tracker update ms against object count on the idle device.

    A panel per frame size; solid lines are the smaller objects, dashed the larger
    (split at the panel's median object size).
    """
    idle = tracker[
        (tracker.phase == "update") & (tracker.cpu == 0) & (tracker.membw_mbps == 0)
    ]
    sizes = sorted(set(zip(idle.frame_w, idle.frame_h, strict=True)))
    figure, axes = plt.subplots(
        1, max(len(sizes), 1), figsize=(6 * max(len(sizes), 1), 4.5), squeeze=False
    )
    for axis, (w, h) in zip(axes[0], sizes, strict=False):
        rows = idle[(idle.frame_w == w) & (idle.frame_h == h)]
        large = rows.object_size_px > rows.object_size_px.median()
        rows = rows.assign(large=large)
        medians = rows.groupby(["tracker", "downsample", "large", "objects"])
        medians = medians.ms.median().reset_index()
        colors = {}
        for (kind, downsample, big), line in medians.groupby(
            ["tracker", "downsample", "large"]
        ):
            key = f"{kind}/ds{downsample}"
            color = colors.setdefault(key, f"C{len(colors) % 10}")
            axis.plot(
                line.objects,
                line.ms,
                "--" if big else "-",
                marker="o",
                color=color,
                label=None if big else key,
            )
        axis.set(
            title=f"frames {w}x{h} (dashed: larger objects)",
            xlabel="objects tracked",
            ylabel="tracker update ms (median)",
            yscale="log",
        )
        axis.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=7, ncol=2)
    return _save(figure, path)


def plot_accuracy_latency(points: pd.DataFrame, path: Path) -> Path:
    """Accuracy against predicted ms per frame, Pareto frontier per contention level.

    ``points`` has columns ``branch``, ``level`` (a label), ``latency_ms`` and
    ``accuracy``: one row per (branch, level).
    """
    figure, axis = plt.subplots(figsize=(8, 5.5))
    for level, rows in points.groupby("level", sort=False):
        scatter = axis.scatter(rows.latency_ms, rows.accuracy, s=6, alpha=0.25)
        frontier = pareto_frontier(rows.latency_ms.to_numpy(), rows.accuracy.to_numpy())
        axis.plot(
            rows.latency_ms.to_numpy()[frontier],
            rows.accuracy.to_numpy()[frontier],
            "-o",
            markersize=3,
            color=scatter.get_facecolor()[0][:3],
            label=f"{level} (Pareto)",
        )
    axis.set(
        xscale="log",
        xlabel="predicted ms per frame (mean over a group of frames)",
        ylabel="AP50 (content-agnostic table)",
        title="Accuracy against latency, one frontier per contention level",
    )
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_predicted_vs_measured(
    pairs: dict[str, tuple[np.ndarray, np.ndarray]],
    path: Path,
    captions: dict[str, str] | None = None,
) -> Path:
    """One panel per model: predicted against measured, with y = x.

    ``captions`` adds a line under a panel's name, e.g. its held-out error.
    """
    names = list(pairs)
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(5 * columns, 4.5 * rows), squeeze=False
    )
    for axis, name in zip(axes.flat, names, strict=False):
        measured, predicted = (np.asarray(a, float) for a in pairs[name])
        axis.scatter(measured, predicted, s=8, alpha=0.5)
        low = float(min(measured.min(), predicted.min()))
        high = float(max(measured.max(), predicted.max()))
        axis.plot([low, high], [low, high], "k--", linewidth=1)
        caption = (captions or {}).get(name, f"{len(measured)} points")
        axis.set(title=f"{name}\n{caption}", xlabel="measured", ylabel="predicted")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(names) :]:
        axis.set_visible(False)
    return _save(figure, path)


def pareto_frontier(cost: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Indices of the points no cheaper point beats in value, cheapest first."""
    order = np.lexsort((-value, cost))
    best = -np.inf
    frontier = []
    for index in order:
        if value[index] > best:
            frontier.append(index)
            best = value[index]
    return np.asarray(frontier, dtype=np.int64)


def _kernel_name(kernel: tuple) -> str:
    detector, size, proposals = kernel
    return f"{detector}/s{size}" + (f"/p{proposals}" if proposals else "")


def _save(figure: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
