"""Markdown tables and the accuracy-vs-latency plot of a kernel benchmark."""

from __future__ import annotations

from pathlib import Path


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of (latency, accuracy) points that no other point beats on both."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def rows_table(rows: list[dict], accuracy: bool = True) -> str:
    header = ["branch"]
    if accuracy:
        header += ["AP50", "COCO AP50"]
    header += [
        "mean ms (runs' range)",
        "P95 ms",
        "detector ms/frame",
        "association ms/frame",
        "tracker ms/frame",
        "overhead ms/frame in loop / end to end",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"`{row['branch']}`"]
        if accuracy:
            cells += [_fmt(row["ap50"], 3), _fmt(row["coco_ap50"], 3)]
        low, high = row["mean_ms_range"]
        cells.append(f"{row['mean_ms']:.2f} ({low:.2f}-{high:.2f})")
        cells += [
            _fmt(row[k], 2)
            for k in (
                "p95_ms",
                "detector_ms_per_frame",
                "associate_ms_per_frame",
                "tracker_ms_per_frame",
            )
        ]
        cells.append(f"{row['overhead_ms']:.3f} / {row['wall_overhead_ms']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def switching_table(switching: dict) -> str:
    lines = [
        "| branch switched to | switches | first detection after switch ms | "
        "steady detection ms | extra ms |",
        "|---|---|---|---|---|",
    ]
    for name, s in switching["per_branch"].items():
        lines.append(
            f"| `{name}` | {s['switches']} | {s['switch_ms']:.2f} | "
            f"{s['steady_ms']:.2f} | {s['extra_ms']:+.2f} |"
        )
    return "\n".join(lines)


def plot_pareto(
    rows: list[dict], path: Path, title: str, classes: tuple[str, ...] = ("person",)
) -> None:
    """Accuracy vs mean latency of every branch, the Pareto frontier drawn through."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["ap50"] is not None]
    points = [(r["mean_ms"], r["ap50"]) for r in rows]
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(10, 6.5))
    families = sorted({_family(r["branch"]) for r in rows})
    for family in families:
        xs = [
            p[0]
            for p, r in zip(points, rows, strict=True)
            if _family(r["branch"]) == family
        ]
        ys = [
            p[1]
            for p, r in zip(points, rows, strict=True)
            if _family(r["branch"]) == family
        ]
        ax.scatter(xs, ys, label=family, s=22, alpha=0.75)
    ax.plot(
        [points[i][0] for i in front],
        [points[i][1] for i in front],
        "k--",
        lw=1,
        label="Pareto frontier",
    )
    # Frontier branches are numbered on the plot and named in a key: their names
    # written beside the points overlap where several sit near 10 ms.
    for number, i in enumerate(front, start=1):
        ax.annotate(
            str(number),
            points[i],
            fontsize=7,
            xytext=(-3, 5),
            textcoords="offset points",
        )
    key = "\n".join(
        f"{number}  {rows[i]['branch']}" for number, i in enumerate(front, start=1)
    )
    ax.text(
        0.42,
        0.05,
        "Pareto frontier\n" + key,
        transform=ax.transAxes,
        fontsize=7,
        family="monospace",
        verticalalignment="bottom",
        bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"},
    )
    ax.set_xscale("log")
    ax.set_xlabel("mean per-frame latency, ms (log scale; decode excluded)")
    ax.set_ylabel(f"{', '.join(classes)} AP at IoU 0.5")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _family(branch: str) -> str:
    parts = branch.split("/")
    si = next(p for p in parts if p.startswith("si"))
    if si == "si1":
        return f"{parts[0]} every frame"
    return f"{parts[0]} + {parts[-2]}"


def _cheapest(rows: list[dict]) -> dict:
    return min(rows, key=lambda r: r["mean_ms"])


def kernel_markdown(results: dict, command: str, plot_name: str) -> str:
    """The whole `docs/benchmarks/kernel.md` text."""
    machine = results["machine"]
    rows = results["rows"]
    every_frame = [r for r in rows if "/si1" in r["branch"]]
    tracked = [r for r in rows if "/si1" not in r["branch"]]
    all_rows = rows + results["random_weight_rows"]
    cheapest = _cheapest(rows)
    front = [
        rows[i]["branch"]
        for i in pareto_front([(r["mean_ms"], r["ap50"] or 0) for r in rows])
    ]
    return "\n".join(
        [
            f"# Kernel benchmark: fixed branches on {Path(results['video']).name}",
            "",
            "Regenerate with:",
            "",
            f"```\n{command}\n```",
            "",
            f"Machine: {machine['cpu']}, {machine['logical_cores']} logical cores, "
            f"{machine['memory_gb']} GB; Python {machine['python']}, onnxruntime "
            f"{machine['onnxruntime']}, torch {machine['torch']}, "
            f"OpenCV {machine['opencv']}. "
            "CPU only.",
            f"Video: `{Path(results['video']).name}`, {results['frames']} frames; "
            "decode "
            f"{results['decode_ms']:.2f} ms/frame, measured apart and excluded below.",
            "",
            f"Columns: AP50 = {', '.join(results.get('classes', ['person']))} AP at "
            "IoU 0.5 (mean over classes), ImageNet-VID style (interpolated "
            "precision, ignored ground truth not scored) by `approxrt.evaluation`; "
            "COCO AP50 = the same detections scored independently by faster-coco-eval. "
            "Latency = wall "
            "time of the frame loop per frame, the median of "
            f"{results['repeats']} runs made in interleaved rounds (the range shows "
            "how much the shared machine varied). Detector and tracker ms are per "
            "frame, averaged over all frames (so a detector run every 4th frame "
            "counts a quarter); association = giving detections the track ids of "
            "the boxes they continue, on detection frames; "
            "overhead = loop time beyond the detector's stages, association and the "
            "tracker, timed "
            "inside the loop and, end to end, as wall time between results minus "
            "detector and tracker (generator, statistics, progress bar included).",
            "",
            "## Every frame detected (sampling interval 1)",
            "",
            rows_table(every_frame),
            "",
            "## Detector + tracker",
            "",
            rows_table(tracked),
            "",
            "## Faster R-CNN latency (RANDOM WEIGHTS: latency only, no accuracy)",
            "",
            "No COCO weights can be downloaded here, so these run with random weights; "
            "the proposal count is fixed by the knob, so the second stage's work is "
            "the real one, but the number of boxes reaching NMS differs from a "
            "trained model.",
            "",
            rows_table(results["random_weight_rows"], accuracy=False),
            "",
            "## Switching branches mid-video",
            "",
            f"Branches take turns every {results['switching']['period_frames']} frames "
            "on the loaded kernel (no weights reloaded); the first detection frame "
            "after each switch is compared with the same branch's other detection "
            "frames.",
            "",
            switching_table(results["switching"]),
            "",
            "## Summary",
            "",
            f"- Cheapest branch: `{cheapest['branch']}`, "
            f"mean {cheapest['mean_ms']:.2f} ms, "
            f"loop overhead {cheapest['overhead_ms']:.3f} ms/frame in the loop, "
            f"{cheapest['wall_overhead_ms']:.3f} ms/frame end to end.",
            f"- Largest loop overhead of any branch (random-weight ones included): "
            f"{max(r['overhead_ms'] for r in all_rows):.3f} ms/frame in the loop, "
            f"{max(r['wall_overhead_ms'] for r in all_rows):.3f} ms/frame end to end.",
            "- Pareto frontier (mean latency vs AP50): "
            + ", ".join(f"`{b}`" for b in front)
            + ".",
            "",
            f"![accuracy vs latency]({plot_name})",
            "",
        ]
    )
