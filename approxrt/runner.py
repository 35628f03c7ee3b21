"""`run_source`: one source through the frame loop into an output folder.

Everything that can be refused is checked before the output folder is created
(branch names, classes, the source, the model files), and the folder only
appears when the run succeeds, so bad input never leaves half-written output.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from approxrt.branch import Branch
from approxrt.branches.detectors.routes import route_name
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.branches.space import validate_branch
from approxrt.classes import class_ids_from_names
from approxrt.config import Config
from approxrt.frame import Frame
from approxrt.loop import BranchPolicy, run_loop
from approxrt.pipeline import build_kernel
from approxrt.signals import StopRequest, stop_on_signals
from approxrt.sinks import OutputDir, open_sinks
from approxrt.sources import clocked, open_source, stamp_finish_times
from approxrt.stats import RunStats, RunSummary

log = logging.getLogger(__name__)

SUMMARY_JSON = "summary.json"


@dataclass
class FrameErrors:
    """Frames that failed in the loop: counted, the first few kept, never fatal."""

    count: int = 0
    first: list[str] = field(default_factory=list)

    def __call__(self, frame: Frame, error: Exception) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(f"frame {frame.index}: {type(error).__name__}: {error}")
        log.warning("skipped frame %d: %s", frame.index, error)


@dataclass
class RunReport:
    """What a run did: latency summary, where outputs went, what was skipped."""

    summary: RunSummary
    out_dir: Path
    source: str
    bad_frames: int
    frame_errors: FrameErrors
    realtime: bool = False
    fps: float | None = None
    dropped_frames: int = 0
    stream_first_frame_index: int | None = None  # arrived at 0 on the stream clock
    interrupted: bool = False  # stopped by SIGINT/SIGTERM before the source ended
    # What ran each detector, e.g. {"yolox_nano": "torch-cuda (graph, fp32, cuda:0)"}
    detector_routes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "out_dir": str(self.out_dir),
            "interrupted": self.interrupted,
            "realtime": self.realtime,
            "fps": self.fps,
            "dropped_frames": self.dropped_frames,
            "stream_first_frame_index": self.stream_first_frame_index,
            "bad_frames": self.bad_frames,
            "frame_errors": self.frame_errors.count,
            "first_frame_errors": self.frame_errors.first,
            "detector_routes": self.detector_routes,
            **self.summary.to_dict(),
        }


def prepare_kernel(
    config: Config, branches: Sequence[Branch], image: np.ndarray
) -> MultiBranchKernel:
    """Load every detector ``branches`` need; warm every knob setting and tracker.

    ``image`` is a real frame of the stream the kernel is about to run on.
    """
    kernel = build_kernel(config, branches)
    trackers = {(b.tracker, b.downsample) for b in branches if b.tracker}
    kernel.warmup(
        list(dict.fromkeys(b.kernel for b in branches)),
        image,
        trackers,
        runs=config.warmup_runs,
    )
    return kernel


def run_source(
    source: str,
    policy: BranchPolicy,
    branches: Sequence[Branch],
    out_dir: str | Path,
    config: Config,
    outputs: Iterable[str] = ("events", "mot", "coco", "timing"),
    overwrite: bool = False,
    progress: bool = True,
    realtime: bool = False,
) -> RunReport:
    """Run ``policy`` (choosing among ``branches``) over ``source`` into ``out_dir``.

    With ``realtime``, a file is replayed at its own frame rate and frames that
    arrive while the runtime is busy are dropped, as from a camera (see
    `approxrt.sources.realtime`); otherwise every frame is waited for. Either
    way frames carry their arrival and results their finish time on the stream
    clock (``timing.csv``, ``events.jsonl``).
    """
    for branch in branches:
        validate_branch(branch)
    class_ids = class_ids_from_names(config.classes) if config.classes else None
    with clocked(open_source(source, realtime=realtime)) as frames:
        # Warm up on the first frame before the stream (and its clock) starts.
        first = frames.peek()
        if first is None:
            raise ValueError(f"{source}: the source gave no frames")
        kernel = prepare_kernel(config, branches, first.image)
        errors = FrameErrors()
        stats = RunStats()
        total = _expected_frames(frames.frame_count, config.max_frames)
        # SIGINT/SIGTERM from here on stop the run after the frame in hand and
        # keep every processed frame's results (summary.json: "interrupted").
        with stop_on_signals() as stop, OutputDir(out_dir, overwrite=overwrite) as out:
            sinks = open_sinks(out, outputs, classes=class_ids, fps=frames.fps)
            results = run_loop(
                itertools.islice(frames, config.max_frames),
                kernel,
                policy,
                sla_ms=config.sla_ms,
                on_error=errors,
            )
            results = stamp_finish_times(results, frames.clock)
            interrupted = _record(
                tqdm(
                    results,
                    total=total,
                    unit="frame",
                    disable=not progress,
                    desc=Path(str(source)).name,
                ),
                stats,
                sinks,
                stop,
            )
            if interrupted and not len(stats):
                raise RuntimeError(f"{source}: stopped before any frame was processed")
            if not len(stats):
                raise RuntimeError(
                    f"{source}: every frame failed ({errors.count}); first: "
                    + "; ".join(errors.first)
                )
            report = RunReport(
                stats.summary(),
                Path(out_dir),
                str(source),
                frames.bad_frames,
                errors,
                realtime,
                frames.fps,
                frames.dropped_frames,
                frames.first_index,
            )
            report.interrupted = interrupted
            report.detector_routes = {
                name: route_name(detector)
                for name, detector in kernel.detectors.items()
            }
            (out / SUMMARY_JSON).write_text(json.dumps(report.to_dict(), indent=2))
    return report


def _record(results, stats: RunStats, sinks, stop: StopRequest) -> bool:
    """Hand each result to ``stats`` and ``sinks`` until the results end (False)
    or a stop signal comes (True). A second signal (`KeyboardInterrupt`) can land
    inside a sink's write: its last line may then be cut short."""
    try:
        for result in results:
            stats.add(result)
            sinks.write(result)
            if stop.requested:
                return True
    except KeyboardInterrupt:
        return True
    finally:
        results.close()
    return False


def _expected_frames(frame_count: int | None, max_frames: int | None) -> int | None:
    counts = [c for c in (frame_count, max_frames) if c]
    return min(counts) if counts else None
