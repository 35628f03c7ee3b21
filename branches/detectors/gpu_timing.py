"""Timing helpers of the GPU benchmark: synchronised medians and graph capture."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch


def median_ms(call, runs: int = 200, warm: int = 20) -> float:
    """Median wall time of ``call`` (synchronised after each), in ms."""
    for _ in range(warm):
        call()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def graphed(call) -> torch.cuda.CUDAGraph:
    """``call`` captured as a CUDA graph after warming on a side stream."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            call()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call()
    return graph


def read_frames(video: Path, limit: int | None = None) -> list[np.ndarray]:
    """Decoded frames of ``video`` (all, or the first ``limit``)."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    while limit is None or len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames
