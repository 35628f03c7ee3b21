"""Plots of the GPU benchmark (docs/benchmarks/gpu.png).

    python -m approxrt.branches.detectors.gpu_plots \
        docs/benchmarks/gpu.json docs/benchmarks/gpu.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _inference(axis, results: dict) -> None:
    rows = results["inference"]
    sizes = [row["size"] for row in rows]
    for key, label in (
        ("eager_ms", "eager (onnx2torch)"),
        ("traced_ms", "traced + frozen"),
        ("graph_b1_ms", "CUDA graph, batch 1"),
        ("graph_b4_ms", "CUDA graph, batch 4"),
        ("graph_b8_ms", "CUDA graph, batch 8"),
    ):
        axis.plot(sizes, [row[key] for row in rows], marker="o", label=label)
    axis.set_yscale("log")
    axis.set_xlabel("input size (long side, px)")
    axis.set_ylabel("ms per call (median)")
    axis.set_title("YOLOX-nano network on the GPU")
    axis.legend(fontsize=8)


def _frame(axis, results: dict) -> None:
    rows = [row for row in results["frame"] if row["detector"] == "yolox_nano"]
    sizes = [row["size"] for row in rows]
    for key, label in (
        ("eager_frame_ms", "torch eager"),
        ("onnxruntime_cpu_frame_ms", "ONNX Runtime, 16 CPU cores"),
        ("graph_frame_ms", "torch + CUDA graph"),
    ):
        axis.plot(sizes, [row[key] for row in rows], marker="o", label=label)
    flow = results["gpu_profile"]["flow_update_ms_median"]
    axis.axhline(
        flow["ds1/objects15"]["0"],
        color="grey",
        linestyle="--",
        label="one dense-flow tracking frame (CPU, ds1)",
    )
    axis.axhline(
        flow["ds2/objects15"]["0"],
        color="grey",
        linestyle=":",
        label="one dense-flow tracking frame (CPU, ds2)",
    )
    axis.set_xlabel("input size (long side, px)")
    axis.set_ylabel("ms per frame (median)")
    axis.set_title("Host frame -> detections with ids (YOLOX-nano)")
    axis.legend(fontsize=8)


def plot(results_path: Path, png_path: Path) -> None:
    results = json.loads(results_path.read_text())
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    _inference(axes[0], results)
    _frame(axes[1], results)
    figure.suptitle(f"{results['device']}, torch {results['torch']}")
    figure.tight_layout()
    figure.savefig(png_path, dpi=110)


if __name__ == "__main__":
    plot(Path(sys.argv[1]), Path(sys.argv[2]))
