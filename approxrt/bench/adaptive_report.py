"""What `approxrt bench adaptive` writes: results.csv, a Markdown report, plots.

The report has one table per stream and contention scenario, then the issue's
checks computed from the rows (met or not, with the numbers), so a reader sees
at once where the adaptive runtime wins and where it does not.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

COLUMNS = {
    "policy": "policy",
    "ap50": "AP50",
    "streaming_ap50": "streaming AP50",
    "mean_ms": "mean ms",
    "p95_ms": "P95 ms",
    "p99_ms": "P99 ms",
    "gof_mean_p95_ms": "P95 group-mean ms",
    "groups_over_sla": "groups over SLA",
    "frames_over_sla": "frames over SLA",
    "switches": "switches",
    "scheduler_ms": "scheduler ms",
    "dropped_frames": "dropped",
}


def write_report(rows: list[dict], timelines: dict, out: Path, command: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "results.csv", index=False)
    plot_timelines(timelines, out)
    plot_accuracy_vs_violations(table, out / "accuracy_vs_violations.png")
    path = out / "adaptive.md"
    path.write_text(markdown(table, command))
    return path


def markdown(table: pd.DataFrame, command: str) -> str:
    lines = [
        "# Adaptive benchmark",
        "",
        "Made by:",
        "",
        "```bash",
        command,
        "```",
        "",
        "## Checks",
        "",
        *(f"- {line}" for line in checks(table)),
        "",
    ]
    for (video, contention), part in table.groupby(["video", "contention"], sort=False):
        lines += [f"## {video}, contention: {contention}", ""]
        for sla, rows in part.groupby("sla_ms", sort=False):
            lines += [f"SLA {sla:g} ms", "", _table(rows), ""]
    return "\n".join(lines)


def _table(rows: pd.DataFrame) -> str:
    head = "| " + " | ".join(COLUMNS.values()) + " |"
    lines = [head, "|" + "---|" * len(COLUMNS)]
    for _, row in rows.iterrows():
        cells = []
        for key in COLUMNS:
            value = row[key]
            if key == "policy":
                cells.append(f"`{value}`")
            elif key in ("groups_over_sla", "frames_over_sla"):
                cells.append(f"{100 * value:.1f}%")
            elif key in ("switches", "dropped_frames"):
                cells.append(str(int(value)))
            elif key.endswith("ap50"):
                cells.append(f"{value:.3f}")
            else:
                cells.append(f"{value:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def checks(table: pd.DataFrame) -> list[str]:
    """The issue's targets, each as met/missed with the numbers behind it."""
    lines = []
    for (video, contention, sla), rows in table.groupby(
        ["video", "contention", "sla_ms"], sort=False
    ):
        by = rows.set_index("policy")
        if "adaptive" not in by.index:
            continue
        ours, oracle = by.loc["adaptive"], by.loc["oracle"]
        where = f"{video} / {contention} / SLA {sla:g} ms"
        meets = [p for p, r in by.iterrows() if r.groups_over_sla <= 0.01]
        fixed_meeting = [p for p in meets if p.startswith(("fixed:", "best-static:"))]
        best_fixed = max((by.loc[p].ap50 for p in fixed_meeting), default=None)
        default = by.loc[next(p for p in by.index if p.startswith("fixed:"))]
        ablation = by.loc["approxdet-style"]
        lines.append(
            f"{where}: groups over SLA {_pct(ours.groups_over_sla)} "
            f"(oracle {_pct(oracle.groups_over_sla)}, default "
            f"{_pct(default.groups_over_sla)}, approxdet-style "
            f"{_pct(ablation.groups_over_sla)}); AP50 {ours.ap50:.3f} (oracle "
            f"{oracle.ap50:.3f}, best fixed meeting the SLA "
            f"{'none' if best_fixed is None else f'{best_fixed:.3f}'}, approxdet-style "
            f"{ablation.ap50:.3f}); streaming AP50 {ours.streaming_ap50:.3f} vs "
            f"default {default.streaming_ap50:.3f}; "
            + _verdicts(ours, oracle, best_fixed, default, ablation, contention)
        )
    return lines


def _verdicts(ours, oracle, best_fixed, default, ablation, contention) -> str:
    verdicts = []
    if oracle.groups_over_sla <= 0.01:
        verdicts.append(_met("≤ 1% groups over", ours.groups_over_sla <= 0.01))
    verdicts.append(_met("AP50 ≥ oracle − 0.02", ours.ap50 >= oracle.ap50 - 0.02))
    if best_fixed is not None:
        verdicts.append(_met("AP50 ≥ best fixed meeting it", ours.ap50 >= best_fixed))
    if contention != "none":
        fewer = ours.groups_over_sla * 10 <= default.groups_over_sla and (
            default.groups_over_sla > 0
        )
        verdicts.append(_met("10x fewer groups over than default", fewer))
        verdicts.append(
            _met(
                "higher streaming AP50 than default",
                ours.streaming_ap50 > default.streaming_ap50,
            )
        )
        better = (
            ours.groups_over_sla < ablation.groups_over_sla,
            ours.ap50 > ablation.ap50,
        )
        verdicts.append(_met("better than approxdet-style", any(better)))
    return "; ".join(verdicts)


def _met(what: str, ok: bool) -> str:
    return f"{what}: {'met' if ok else 'MISSED'}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def plot_accuracy_vs_violations(table: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    kinds = table.policy.str.split(":").str[0]
    for kind, rows in table.groupby(kinds):
        ax.scatter(100 * rows.groups_over_sla, rows.ap50, label=kind, alpha=0.8)
    ax.set_xlabel("groups of frames over the SLA (%)")
    ax.set_ylabel("AP50")
    ax.set_title("Accuracy vs SLA violations, every stream x contention x SLA")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_timelines(timelines: dict, out: Path) -> None:
    """One PNG per stream x contention x SLA: frame latency of the adaptive
    runtime, the default and the ablation, the SLA, the load, the switches."""
    for key, lines in timelines.items():
        sla_ms = float(key.rsplit("/", 1)[1])
        fig, (ax, load) = plt.subplots(
            2, 1, figsize=(10, 5), sharex=True, height_ratios=(3, 1)
        )
        for label, line in lines.items():
            if label == "contention" or not (
                label in ("adaptive", "approxdet-style") or label.startswith("fixed:")
            ):
                continue
            ax.plot(line["t_s"], line["latency_ms"], lw=0.8, label=label)
            if label == "adaptive":
                branch = line["branch"]
                switches = [
                    line["t_s"][i]
                    for i in range(1, len(branch))
                    if branch[i] != branch[i - 1]
                ]
                ax.vlines(
                    switches,
                    0,
                    sla_ms * 0.15,
                    colors="k",
                    lw=0.6,
                    label="adaptive switches",
                )
        ax.axhline(sla_ms, color="r", ls="--", label=f"SLA {sla_ms:g} ms")
        ax.set_ylabel("frame latency (ms)")
        ax.legend(fontsize=7, loc="upper right")
        ax.set_title(key)
        steps = lines["contention"]
        if steps["at_s"]:
            load.step(steps["at_s"], steps["cpu"], where="post", label="busy cores")
            load.step(
                steps["at_s"],
                [m / 1000 for m in steps["membw_mbps"]],
                where="post",
                label="GB/s membw",
            )
            if any(steps.get("gpu_pct", [])):
                load.step(
                    steps["at_s"],
                    [pct / 100 for pct in steps["gpu_pct"]],
                    where="post",
                    label="GPU load (share of time)",
                )
        if steps["program"]:
            load.axvspan(
                *[v or 0 for v in steps["program"]],
                alpha=0.3,
                label="co-running program",
            )
        load.set_xlabel("stream time (s)")
        load.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        fig.savefig(out / f"timeline_{key.replace('/', '_')}.png", dpi=100)
        plt.close(fig)
