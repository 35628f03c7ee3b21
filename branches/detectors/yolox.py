"""YOLOX-Nano on ONNX Runtime: one session, any input size that is a multiple of 32.

Input: BGR float 0-255 (no mean/std), letterboxed into the top-left corner with
grey 114 padding. Output ``(1, n, 85)``: per anchor point ``x, y`` offsets, ``log w,
log h``, objectness and 80 class scores (both already through a sigmoid), decoded
on grids of strides 8, 16 and 32; score = objectness x class score.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors.base import Prepared
from approxrt.branches.detectors.onnx_session import OnnxDetector
from approxrt.branches.detectors.postprocess import (
    finish,
    letterbox,
    to_blob,
)
from approxrt.detections import Detections

STRIDES = (8, 16, 32)


@functools.lru_cache(maxsize=64)
def anchor_grid(network_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets and strides of every anchor point, in the network's output order.

    Returns:
        ``(grid, stride)``: ``(n, 2) float32`` cell ``(x, y)`` and ``(n, 1)
        float32`` stride, level by level (8, 16, 32), row-major within a level.
    """
    grids, strides = [], []
    for stride in STRIDES:
        rows, cols = network_hw[0] // stride, network_hw[1] // stride
        y, x = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        grids.append(np.stack([x.ravel(), y.ravel()], axis=1))
        strides.append(np.full((rows * cols, 1), stride))
    return (
        np.concatenate(grids).astype(np.float32),
        np.concatenate(strides).astype(np.float32),
    )


class YoloxDetector(OnnxDetector):
    """YOLOX-Nano (COCO, 80 classes) with a run-time input size.

    Args:
        model_path: ``yolox_nano.onnx``.
        postprocess_config: score threshold, NMS IoU and max detections.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        threads: intra-op threads, 0 for ONNX Runtime's default.
        rect_input: pad the letterboxed frame only up to the next multiple of 32
            on its short side (a 360x480 frame at size 416 runs as 320x416)
            instead of to a square; the same boxes for less compute.
        providers: explicit ONNX Runtime providers overriding ``device``.
    """

    name: ClassVar[str] = "yolox_nano"
    # Person AP on PETS09-S2L1 (rect): 128: 0.24, 160: 0.52, 224: 0.79, 320: 0.88,
    # 416: 0.89, 640: 0.88, 960: 0.88; every multiple of 32 from 64 to 1280 runs.
    min_input_size: ClassVar[int] = 160
    max_input_size: ClassVar[int] = 960
    default_input_size: ClassVar[int] = 416

    def _to_network(
        self, image: np.ndarray, knobs: DetectorKnobs
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """Letterbox into the top-left corner (pad 114), BGR 0-255 as trained."""
        canvas, scale = letterbox(
            image, knobs.input_size, self.rect_input, self.size_step
        )
        return to_blob(canvas), (scale, scale)

    def postprocess(
        self, raw: list[np.ndarray] | None, prepared: Prepared
    ) -> Detections:
        """Decode anchors, keep obj x cls above threshold, NMS, map to the frame."""
        if raw is None:
            return Detections.empty()
        config = self.postprocess_config
        output = raw[0][0]
        # Class scores are at most 1, so objectness alone prunes most anchors.
        rows = np.flatnonzero(output[:, 4] > config.score_threshold)
        candidates = output[rows]
        class_ids = candidates[:, 5:].argmax(axis=1)
        scores = candidates[:, 4] * candidates[np.arange(len(rows)), 5 + class_ids]
        grid, stride = anchor_grid(tuple(prepared.inputs.shape[2:]))
        centre = (candidates[:, :2] + grid[rows]) * stride[rows]
        half = np.exp(candidates[:, 2:4]) * stride[rows] / 2
        xyxy = np.concatenate([centre - half, centre + half], axis=1)
        return finish(
            xyxy,
            scores,
            class_ids.astype(np.int64),
            config,
            prepared.extra["scale_xy"],
            prepared.image_hw,
        )
