"""GPU benchmark parts for streams sharing a detector kernel (docs/benchmarks/gpu.md).

``daemon_streams``: the daemon itself (`StreamManager`) with N = 1, 4, 8 streams
of PETS frames on ``yolox_nano/s416/si1`` on CUDA, frame by frame
(``batch_streams: false``) and batched with ``batch_wait_ms`` 1 and 0. The daemon
plays a file at its own frame rate, so the frames are written as an image
sequence whose ``seqinfo.ini`` says 1000 fps: each stream takes frames as fast
as it can, and the GPU is saturated. Per-frame latency is the loop's (decode excluded),
frames/s is all streams' frames over the wall time.

``paced_streams``: N threads, each a stream's kernel over one shared pool, asking
for a detection frame 30 times a second at a random phase (cameras are not in
step), batched (waits of 1 and 0 ms) and not: what the wait for other streams
costs when the GPU is not saturated.

``batch_precision``: YOLOX-nano's network alone in a CUDA graph at batch 1, 4
and 8, at 512 and 640, in TF32, FP16, and each with channels-last memory.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from approxrt.branch import Branch, DetectorKnobs
from approxrt.branches.batching import BatchSettings
from approxrt.branches.detectors.cuda_detector import CudaOnnxDetector
from approxrt.branches.detectors.gpu_timing import graphed, median_ms
from approxrt.branches.detectors.onnx_torch import (
    convert_onnx,
    cudnn_tf32,
    trace_for_shape,
)
from approxrt.branches.detectors.yolox import YoloxDetector
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.branches.model_pool import ModelPool
from approxrt.branches.trackers.association import TrackIdAssigner
from approxrt.frame import Frame

BRANCH = Branch.parse("yolox_nano/s416/si1")
STREAM_COUNTS = (1, 4, 8)
# batch_wait_ms of each mode; None runs frame by frame.
WAITS_MS = (None, 1.0, 0.0)
CAMERA_FPS = 30.0
PACED_FRAMES = 90  # 3 s of camera per stream


def _latency_row(latencies_ms: list[float], frames: int, wall_s: float) -> dict:
    ordered = np.sort(latencies_ms)
    return {
        "frames": frames,
        "mean_ms": float(np.mean(ordered)),
        "p95_ms": float(ordered[int(0.95 * (len(ordered) - 1))]),
        "frames_per_s": frames / wall_s,
    }


def _batching_counts(pool: ModelPool) -> dict:
    batcher = pool.batcher(BRANCH.detector)
    if batcher is None:
        return {"calls": None, "frames_per_call": 1.0}
    return {"calls": batcher.calls, "frames_per_call": batcher.frames / batcher.calls}


def _image_sequence(folder: Path, frames: list[np.ndarray]) -> Path:
    """``frames`` as a MOTChallenge image sequence that plays at 1000 fps."""
    (folder / "img1").mkdir(parents=True)
    (folder / "seqinfo.ini").write_text("[Sequence]\nframeRate=1000\nimDir=img1\n")
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / "img1" / f"{index + 1:06d}.jpg"), frame)
    return folder


def daemon_streams(models: Path, frames: list[np.ndarray]) -> list[dict]:
    """The daemon with N streams of ``frames`` on one kernel, batched and not."""
    with tempfile.TemporaryDirectory() as folder:
        sequence = _image_sequence(Path(folder) / "pets", frames)
        return [
            _daemon_run(models, sequence, count, wait_ms)
            for wait_ms in WAITS_MS
            for count in STREAM_COUNTS
        ]


def _daemon_run(
    models: Path, sequence: Path, count: int, wait_ms: float | None
) -> dict:
    from approxrt.config import load_config
    from approxrt.serve.manager import StreamManager
    from approxrt.serve.spec import ServeSettings, StreamSpec

    config = load_config(
        models_dir=str(models), download=False, device="cuda", classes=["person"]
    ).replace(batch_streams=wait_ms is not None, batch_wait_ms=wait_ms)
    manager = StreamManager(ServeSettings(), config)
    workers = [
        manager.add(StreamSpec(id=f"s{i}", source=str(sequence), branch=str(BRANCH)))
        for i in range(count)
    ]
    while not all(w.state in ("finished", "failed") for w in workers):
        time.sleep(0.05)
    manager.shutdown()
    history = [point for w in workers for point in w.counts.history]
    wall_s = max(p[0] for p in history) - min(p[0] for p in history)
    row = {"streams": count, "batched": wait_ms is not None, "wait_ms": wait_ms}
    row |= _latency_row([p[1] for p in history], len(history), wall_s)
    row |= _batching_counts(manager.pool)
    row["frame_errors"] = sum(w.counts.frame_errors for w in workers)
    row["failed"] = [w.error for w in workers if w.error]
    print("daemon_streams", row)
    return row


def _paced_stream(kernel, frames, phase_s, start_s, latencies_ms) -> None:
    period_s = 1 / CAMERA_FPS
    for index in range(PACED_FRAMES):
        due_s = start_s + phase_s + index * period_s
        time.sleep(max(due_s - time.perf_counter(), 0))
        frame = Frame(frames[index % len(frames)], index, index * period_s)
        begun = time.perf_counter()
        kernel.detect(frame, BRANCH)
        latencies_ms.append((time.perf_counter() - begun) * 1e3)


def paced_streams(models: Path, frames: list[np.ndarray]) -> list[dict]:
    """N kernels over one pool, each detecting 30 times a second, batched and not."""
    detector = CudaOnnxDetector(YoloxDetector, models / "yolox_nano.onnx")
    phases = random.Random(0)
    rows = []
    for wait_ms in WAITS_MS:
        for count in STREAM_COUNTS:
            pool = ModelPool(
                {BRANCH.detector: detector},
                batching=None if wait_ms is None else BatchSettings(wait_ms=wait_ms),
            )
            pool.warmup([BRANCH.kernel], frames[0])
            latencies_ms: list[float] = []
            start_s = time.perf_counter() + 0.1
            threads = [
                threading.Thread(
                    target=_paced_stream,
                    args=(
                        MultiBranchKernel(pool, _no_tracker, TrackIdAssigner()),
                        frames[i * 40 :] + frames[: i * 40],  # each its own frames
                        phases.uniform(0, 1 / CAMERA_FPS),
                        start_s,
                        latencies_ms,
                    ),
                )
                for i in range(count)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall_s = time.perf_counter() - start_s
            row = {"streams": count, "batched": wait_ms is not None, "wait_ms": wait_ms}
            row["fps_per_stream"] = CAMERA_FPS
            row |= _latency_row(latencies_ms, len(latencies_ms), wall_s)
            row |= _batching_counts(pool)
            rows.append(row)
            print("paced_streams", row)
    return rows


def _no_tracker(kind: str, downsample: int):
    raise AssertionError("si1 branches track nothing")


def batch_precision(models: Path, frame: np.ndarray) -> list[dict]:
    """Network-only graph times at batch 1/4/8 per size, precision and layout."""
    path = models / "yolox_nano.onnx"
    cpu = YoloxDetector(path, device="cpu")
    rows = []
    for size in (512, 640):
        blob = torch.from_numpy(cpu.preprocess(frame, DetectorKnobs(size)).inputs)
        for precision in ("tf32", "fp16"):
            for channels_last in (False, True):
                row = {
                    "size": size,
                    "precision": precision,
                    "channels_last": channels_last,
                }
                try:
                    row |= _graph_batches(path, blob, precision, channels_last)
                except Exception as error:  # one variant failing leaves the others
                    row["error"] = repr(error)
                rows.append(row)
                print("batch_precision", row)
    return rows


def _graph_batches(
    path: Path, blob: torch.Tensor, precision: str, channels_last: bool
) -> dict:
    dtype = torch.float16 if precision == "fp16" else torch.float32
    layout = torch.channels_last if channels_last else torch.contiguous_format
    network = convert_onnx(path).cuda().to(dtype).to(memory_format=layout)
    times = {}
    with torch.no_grad(), cudnn_tf32(precision == "tf32"):
        for batch in (1, 4, 8):
            example = blob.repeat(batch, 1, 1, 1).cuda().to(dtype)
            example = example.contiguous(memory_format=layout)
            traced = trace_for_shape(network, example)
            graph = graphed(lambda t=traced, x=example: t(x))
            times[f"graph_b{batch}_ms"] = median_ms(graph.replay)
    times["b4_ratio"] = times["graph_b4_ms"] / times["graph_b1_ms"]
    times["b8_ratio"] = times["graph_b8_ms"] / times["graph_b1_ms"]
    return times
