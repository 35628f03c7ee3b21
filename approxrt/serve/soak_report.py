"""The soak benchmark's report: docs/benchmarks/daemon.md and its PNG plot."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

MB = 1e6


def write_report(soak, path: Path, frames_target: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    plot = path.with_suffix(".png")
    _plot(soak, plot)
    lines = [
        "# Daemon soak: four streams, camera restarts, a broker outage, SIGTERM",
        "",
        f"Command (from the repository root): `{soak.command}`",
        "",
        f"![RSS and results over the run]({plot.name})",
        "",
        *_memory(soak),
        *_streams(soak),
        *_restarts(soak),
        *_delivery(soak),
        "",
        f"Total results: {sum(map(len, soak.events.values()))} "
        f"(target {frames_target}); run {soak.duration_s:.0f} s; "
        f"exit code after SIGTERM: {soak.exit_code}.",
        "",
    ]
    path.write_text("\n".join(lines))


def _memory(soak) -> list[str]:
    after = [s for s in soak.samples if s["t_s"] >= soak.warmup_end_s]
    if not after:
        return ["No memory samples after warm-up."]
    base = after[0]["rss"]
    peak = max(s["rss"] for s in after)
    last = after[-1]["rss"]
    return [
        "## Memory",
        "",
        f"RSS at the end of warm-up ({soak.warmup_end_s:.0f} s): {base / MB:.1f} MB; "
        f"peak after: {peak / MB:.1f} MB (growth {(peak - base) / MB:+.1f} MB); "
        f"at the end: {last / MB:.1f} MB (growth {(last - base) / MB:+.1f} MB). "
        "Target: growth <= 20 MB.",
        "",
    ]


def _streams(soak) -> list[str]:
    status = {s["id"]: s for s in soak.final_status}
    rows = [
        "## Streams",
        "",
        "| stream | results (JSONL) | fps | latency mean ms | p95 ms | dropped | "
        "reconnects (/metrics) |",
        "|---|---|---|---|---|---|---|",
    ]
    for stream, events in soak.events.items():
        latency = np.array([e["latency_ms"] for e in events] or [np.nan])
        fps = len(events) / soak.duration_s if soak.duration_s else float("nan")
        rows.append(
            f"| {stream} | {len(events)} | {fps:.2f} | {np.mean(latency):.2f} | "
            f"{np.percentile(latency, 95):.2f} | "
            f"{status.get(stream, {}).get('frames_dropped', '?')} | "
            f"{_metric(soak.metrics_text, 'approxrt_reconnects_total', stream)} |"
        )
    return [*rows, ""]


def _restarts(soak) -> list[str]:
    resumed = [r for r in soak.restarts if r["resumed_s"] is not None]
    times = [r["resumed_s"] for r in resumed]
    stalled = [
        r for r in soak.restarts if min(r["others_progress"].values(), default=1) <= 0
    ]
    return [
        "## RTSP server killed and restarted",
        "",
        f"{len(soak.restarts)} restarts of rtsp1's server; the stream resumed by "
        f"itself {len(resumed)} times"
        + (
            f" (5 new results {min(times):.1f}-{max(times):.1f} s after the server "
            f"was back, median {np.median(times):.1f} s)"
            if times
            else ""
        )
        + f". Restarts during which another stream made no progress: {len(stalled)}.",
        "",
    ]


def _delivery(soak) -> list[str]:
    lines = ["## Every result on MQTT, in order, once", ""]
    if soak.broker_down_s:
        down = soak.broker_down_s
        lines.append(
            f"Broker stopped at {down[0]:.0f} s and back at {down[1]:.0f} s "
            f"({down[1] - down[0]:.0f} s down)."
        )
    processed = {s["id"]: s["frames_processed"] for s in soak.final_status}
    for stream, events in soak.events.items():
        expected = [e["frame_index"] for e in events]
        got = soak.mqtt.get(stream, [])
        lines.append(
            f"- {stream}: {len(expected)} in the JSONL, {len(got)} on MQTT; "
            f"same sequence: {got == expected}; repeats: {len(got) - len(set(got))}; "
            f"JSONL frame indices increasing: {_increasing(expected)}; processed "
            f"when SIGTERM came: {processed.get(stream, '?')}"
        )
    return [*lines, ""]


def _increasing(values: list[int]) -> bool:
    """Frame indices count decoded frames: gaps are frames dropped while busy."""
    return all(a < b for a, b in itertools.pairwise(values))


def _metric(text: str, name: str, stream: str) -> str:
    match = re.search(rf'{name}{{stream="{stream}"}} (\S+)', text)
    return f"{float(match.group(1)):.0f}" if match else "?"


def _plot(soak, path: Path) -> None:
    figure, (memory, progress) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    t = [s["t_s"] for s in soak.samples]
    memory.plot(t, [s["rss"] / MB for s in soak.samples], color="tab:blue")
    memory.set_ylabel("daemon RSS (MB)")
    for stream in soak.events:
        progress.plot(
            t, [s["processed"].get(stream, 0) for s in soak.samples], label=stream
        )
    progress.set_ylabel("results")
    progress.set_xlabel("seconds since the daemon was ready")
    for axis in (memory, progress):
        axis.axvline(soak.warmup_end_s, color="grey", linestyle=":")
        for restart in soak.restarts:
            axis.axvline(restart["t_s"], color="tab:red", alpha=0.2, linewidth=0.8)
        if soak.broker_down_s:
            axis.axvspan(*soak.broker_down_s, color="tab:orange", alpha=0.15)
    progress.legend(loc="upper left")
    memory.set_title(
        "grey: end of warm-up; red: RTSP server restarts; orange: broker down"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
