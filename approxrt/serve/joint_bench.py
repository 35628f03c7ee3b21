"""Streams planned together or alone: ``python -m approxrt.serve.joint_bench``.

One daemon runs ``--streams`` adaptive streams of the same looping video, each
with ``--sla-ms``, for ``--seconds`` after every stream has started, in two
modes, alternating ``--repeats`` times (this machine drifts between runs): with
the device's streams planned together (`DeviceShare`,
``plan_streams_together: true``) and with each stream treating its siblings as
contention it learns from latency (the default). Reported per mode and stream, from each
stream's events: groups and frames over the SLA, mean latency, the predicted
AP50 of the branches chosen, frames processed and dropped. Writes a Markdown
report.
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from approxrt.bench.streams import latency_scores
from approxrt.serve.soak import Daemon, wait_for

MODES = {"together": True, "alone": False}


def run_mode(workdir, together, models, profile, video, streams, sla_ms, seconds):
    """One daemon run; its streams' scores ``{stream: dict}``."""
    names = [f"cam{k}" for k in range(streams)]
    settings = {
        "models": str(models),
        "profile": str(profile),
        "plan_streams_together": together,
        "streams": [
            {
                "id": name,
                "source": str(video),
                "sla_ms": sla_ms,
                "classes": ["person"],
                "loop": True,
                "out": str(workdir / name),
            }
            for name in names
        ],
    }
    daemon = Daemon(settings, workdir)
    daemon.wait_ready()
    if wait_for(lambda: all(daemon.state(n) == "running" for n in names), 300) is None:
        raise RuntimeError("the streams never all ran")
    skip = daemon.processed()  # frames of the warm-up and the first groups
    for _ in tqdm(range(int(seconds)), desc="together" if together else "alone"):
        time.sleep(1.0)
    dropped = {s["id"]: s["frames_dropped"] for s in daemon.api.get("/streams").json()}
    daemon.terminate()
    return {
        name: score(events_after(workdir / name, skip[name]), sla_ms)
        | {"dropped": dropped[name]}
        for name in names
    }


def events_after(out: Path, skip: int) -> list[dict]:
    """The stream's events after its first ``skip``, from a decision on."""
    events = []
    for path in sorted(out.glob("events.jsonl*"), reverse=True):
        events += [json.loads(line) for line in path.read_text().splitlines()]
    start = next(i for i, e in enumerate(events) if i >= skip and e["mode"] == "detect")
    return events[start:]


def score(events: list[dict], sla_ms: float) -> dict:
    decisions = [e for e in events if e["predicted"]]
    scores = latency_scores(
        [e["latency_ms"] for e in events],
        [e["mode"] == "detect" for e in events],
        [e["branch"] for e in events],
        [e["timings_ms"].get("schedule", 0.0) for e in decisions],
        sla_ms,
    )
    predicted = [e["predicted"] for e in decisions]
    return scores | {
        "predicted_ap50": float(np.mean([p["accuracy"] for p in predicted])),
        "shared_slowdown": float(np.mean([p["shared_slowdown"] for p in predicted])),
    }


def write_report(path: Path, command: str, sla_ms: float, results: dict) -> None:
    lines = [
        "# Adaptive streams planned together or alone",
        "",
        f"Command (from the repository root): `{command}`",
        "",
        "| run | stream | frames | dropped | groups over SLA | frames over SLA "
        "| mean ms | predicted AP50 | planned slowdown | branches used |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run, streams in results.items():
        for name, s in streams.items():
            lines.append(
                f"| {run} | {name} | {s['frames']} | {s['dropped']} "
                f"| {s['groups_over_sla']:.1%} | {s['frames_over_sla']:.1%} "
                f"| {s['mean_ms']:.1f} | {s['predicted_ap50']:.3f} "
                f"| {s['shared_slowdown']:.2f} | {s['branches_used']} |"
            )
        mean = {
            k: np.mean([s[k] for s in streams.values()])
            for k in ("groups_over_sla", "predicted_ap50", "frames")
        }
        lines.append(
            f"| {run} | **all** | {mean['frames']:.0f} (mean) | "
            f"| **{mean['groups_over_sla']:.1%}** | | "
            f"| **{mean['predicted_ap50']:.3f}** | | |"
        )
    lines += [
        "",
        f"SLA {sla_ms:g} ms per stream (mean per group of frames).",
        "",
        "| mode | runs | groups over SLA (mean of streams, per run) "
        "| predicted AP50 (per run) | branches used (per run) |",
        "|---|---|---|---|---|",
    ]
    for mode in MODES:
        runs = [streams for run, streams in results.items() if run.startswith(mode)]
        over, ap, used = (
            ", ".join(
                fmt.format(np.mean([s[key] for s in streams.values()]))
                for streams in runs
            )
            for key, fmt in (
                ("groups_over_sla", "{:.2%}"),
                ("predicted_ap50", "{:.3f}"),
                ("branches_used", "{:.0f}"),
            )
        )
        lines.append(f"| {mode} | {len(runs)} | {over} | {ap} | {used} |")
    path.write_text("\n".join(lines) + "\n")


@click.command()
@click.option("--models", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--profile", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--video", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--streams", default=3, show_default=True)
@click.option("--sla-ms", default=30.0, show_default=True)
@click.option("--seconds", default=120.0, show_default=True)
@click.option("--repeats", default=1, show_default=True)
@click.option("--report", default="docs/benchmarks/daemon_joint.md", show_default=True)
def main(models, profile, video, streams, sla_ms, seconds, repeats, report):
    """Run both modes and write the report (see the module docstring)."""
    command = shlex.join(["python", "-m", "approxrt.serve.joint_bench", *sys.argv[1:]])
    results = {}
    with tempfile.TemporaryDirectory(prefix="approxrt-joint-") as tmp:
        for repeat in range(1, repeats + 1):
            for mode, together in MODES.items():
                run = f"{mode} #{repeat}"
                workdir = Path(tmp) / f"{mode}{repeat}"
                workdir.mkdir()
                results[run] = run_mode(
                    workdir, together, models, profile, video, streams, sla_ms, seconds
                )
    write_report(Path(report), command, sla_ms, results)
    print(Path(report).read_text())


if __name__ == "__main__":
    main()
