"""Detector outputs, computed once per (video, kernel) and replayed by every branch.

Accuracy profiling runs each detector kernel of the space once over each video; the
trackers, sampling intervals and downsamples of that kernel then replay its cached
detections (see `approxrt.profiler.replay`). One entry per (video, kernel)::

    <cache_dir>/<video>/<detector>_s<size>[_p<n>].parquet  frame, x1, y1, x2, y2,
                                                           confidence, class_id
    <cache_dir>/<video>/<detector>_s<size>[_p<n>].json     what it was made with

``frame`` is the 0-based `Frame.index`; boxes are the kernel's `run_detector` output
(classes already filtered by ``config.classes``), float32 as the detector gave them,
so a reload is bit-exact. The JSON beside each file records everything the boxes
depend on: the model file's SHA-256 (every loaded model file is verified against
it), the post-processing settings, the class filter, the device, the video's own
SHA-256 (or its synthetic spec) and the frame limit. An entry is reused only when
all of these match; a stale one is recomputed, never silently reused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from approxrt.branch import Branch, DetectorKnobs
from approxrt.branches.detectors.registry import detector_class
from approxrt.branches.models import get_spec
from approxrt.config import Config
from approxrt.detections import Detections
from approxrt.frame import Frame
from approxrt.pipeline import build_kernel
from approxrt.sources import open_source
from approxrt.sources.scene_config import SPEC_PREFIX

COLUMNS = ("frame", "x1", "y1", "x2", "y2", "confidence", "class_id")
FORMAT_VERSION = 1
_HASH_CHUNK_BYTES = 1 << 20


def kernel_stem(detector: str, knobs: DetectorKnobs) -> str:
    """``yolox_nano_s416`` or ``frcnn_r50_s320_p100``: the entry's file stem."""
    proposals = f"_p{knobs.proposals}" if knobs.proposals else ""
    return f"{detector}_s{knobs.input_size}{proposals}"


def cache_path(
    cache_dir: str | Path, video: str, detector: str, knobs: DetectorKnobs
) -> Path:
    """The Parquet file of (``video``, kernel); its JSON sits beside it."""
    return Path(cache_dir) / video / f"{kernel_stem(detector, knobs)}.parquet"


def is_synthetic(source: str) -> bool:
    return str(source).split(":", 1)[0].strip().lower() == SPEC_PREFIX


def video_identity(source: str, max_frames: int | None) -> dict[str, Any]:
    """What a video's frames depend on: its content hash (or spec) and frame limit."""
    if is_synthetic(source):
        return {"spec": str(source), "max_frames": max_frames}
    digest = hashlib.sha256()
    with open(source, "rb") as file:
        for chunk in iter(lambda: file.read(_HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return {"sha256": digest.hexdigest(), "max_frames": max_frames}


def made_with(
    config: Config, detector: str, knobs: DetectorKnobs, video: dict[str, Any]
) -> dict[str, Any]:
    """Everything a cached entry's boxes depend on (``video``: `video_identity`)."""
    random = config.random_weights and detector_class(detector).two_stage
    return {
        "format": FORMAT_VERSION,
        "detector": detector,
        "input_size": knobs.input_size,
        "proposals": knobs.proposals,
        "model_sha256": get_spec(detector).sha256,
        "weights": "random" if random else "pretrained",
        "score_threshold": config.score_threshold,
        "nms_iou_threshold": config.nms_iou_threshold,
        "max_detections": config.max_detections,
        "rect_input": config.rect_input.get(detector),
        "classes": config.classes,
        "device": config.device,
        "video": video,
    }


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def is_fresh(path: str | Path, made: dict[str, Any]) -> bool:
    """Whether the entry at ``path`` exists and was made exactly as ``made`` says."""
    path = Path(path)
    meta = _meta_path(path)
    if not path.is_file() or not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text())["made_with"] == made
    except (ValueError, KeyError, TypeError):
        return False


def detections_table(frames: Sequence[tuple[int, Detections]]) -> pd.DataFrame:
    """One row per box of ``(frame_index, detections)`` pairs, columns `COLUMNS`."""
    parts = [(index, d) for index, d in frames if len(d)]
    merged = Detections.merge(d for _, d in parts)
    frame = np.repeat(
        np.array([i for i, _ in parts], np.int64), [len(d) for _, d in parts]
    )
    xyxy, confidence, class_id = merged.xyxy, merged.confidence, merged.class_id
    return pd.DataFrame(
        {
            "frame": frame,
            "x1": xyxy[:, 0],
            "y1": xyxy[:, 1],
            "x2": xyxy[:, 2],
            "y2": xyxy[:, 3],
            "confidence": confidence,
            "class_id": class_id,
        }
    )


def write(
    path: str | Path, table: pd.DataFrame, frames: int, made: dict[str, Any]
) -> Path:
    """Store ``table`` (`COLUMNS`) for a video of ``frames`` frames, then its JSON.

    Both files are written beside their target and moved into place, the JSON
    last, so an interrupted write never leaves an entry that looks fresh.
    """
    path = Path(path)
    if tuple(table.columns) != COLUMNS:
        raise ValueError(
            f"detections table: expected columns {COLUMNS}, got {tuple(table.columns)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = _meta_path(path)
    meta.unlink(missing_ok=True)
    partial = path.with_suffix(".parquet.partial")
    table.to_parquet(partial, index=False)
    os.replace(partial, path)
    record = {"made_with": made, "frames": int(frames), "boxes": len(table)}
    partial_meta = meta.with_suffix(".json.partial")
    partial_meta.write_text(json.dumps(record, indent=1))
    os.replace(partial_meta, meta)
    return path


def read(path: str | Path) -> list[Detections]:
    """The cached detections of every frame, indexed by frame index.

    Raises:
        ValueError: no entry at ``path``.
    """
    path = Path(path)
    meta = _meta_path(path)
    if not path.is_file() or not meta.is_file():
        raise ValueError(f"detection cache {path}: no such entry (or no {meta.name})")
    frames = frame_count(path)
    table = pd.read_parquet(path).sort_values("frame", kind="stable")
    frame = table["frame"].to_numpy(np.int64)
    xyxy = table[["x1", "y1", "x2", "y2"]].to_numpy(np.float32)
    confidence = table["confidence"].to_numpy(np.float32)
    class_id = table["class_id"].to_numpy(np.int64)
    bounds = np.searchsorted(frame, np.arange(frames + 1))
    return [
        Detections(xyxy[start:stop], confidence[start:stop], class_id[start:stop])
        for start, stop in itertools.pairwise(bounds)
    ]


def frame_count(path: str | Path) -> int:
    """Frames of the video an entry was made on (its last frame index + 1)."""
    return int(json.loads(_meta_path(Path(path)).read_text())["frames"])


def job_config(values: dict[str, Any]) -> Config:
    """The `Config` a job was handed as a dict, one CPU thread per detector.

    The worker pool is the parallelism: a detector using every core in every
    worker would only make them fight over the cores.
    """
    config = Config.model_validate(values)
    return config if config.num_threads else config.replace(num_threads=1)


@contextmanager
def open_frames(source: str, max_frames: int | None) -> Iterator[Iterator[Frame]]:
    """The frames of ``source`` (a video path or ``synthetic:`` spec), at most
    ``max_frames`` of them."""
    with open_source(source) as frames:
        yield itertools.islice(frames, max_frames)


def detect_task(
    source: str,
    max_frames: int | None,
    config: dict[str, Any],
    detector: str,
    input_size: int,
    proposals: int | None,
) -> dict[str, Any]:
    """Job: one kernel over one video. Returns ``{"table": ..., "frames": n}``.

    The kernel is the runtime's (`approxrt.pipeline.build_kernel`), warmed on the
    video's first frame, and each frame goes through its `run_detector`.
    """
    settings = job_config(config)
    branch = Branch(detector, input_size, proposals, 1)
    kernel = build_kernel(settings, [branch])
    found: list[tuple[int, Detections]] = []
    with open_frames(source, max_frames) as frames:
        for frame in frames:
            if not found:
                kernel.warmup([branch.kernel], frame.image, runs=settings.warmup_runs)
            found.append((frame.index, kernel.run_detector(frame, branch)[0]))
    if not found:
        raise ValueError(f"{source}: the source gave no frames")
    return {"table": detections_table(found), "frames": found[-1][0] + 1}
