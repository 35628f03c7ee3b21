"""FastestDet on ONNX Runtime: a very cheap single-level detector.

Input: BGR / 255, plain resize (no letterbox). Output ``(1, 85, H/16, W/16)``:
per cell objectness (sigmoid), ``x, y`` offsets in cells (through tanh), ``w, h``
relative to the image (through sigmoid) and 80 class scores (softmax). The export
bakes its 352x352 size into the channel-shuffle Reshapes; `OnnxSession` rewrites
them, so one session runs every size.
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors.base import Prepared
from approxrt.branches.detectors.onnx_session import OnnxDetector
from approxrt.branches.detectors.postprocess import (
    finish,
    rect_hw,
    to_blob,
)
from approxrt.detections import Detections


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


class FastestDetDetector(OnnxDetector):
    """FastestDet (COCO, 80 classes) with a run-time input size.

    Score is ``objectness * class``, as YOLOX's. The upstream demo uses
    ``objectness ** 0.6 * class ** 0.4``; on all 795 PETS09-S2L1 frames both give
    the same person AP (within 0.001 at every size), and the product keeps scores
    on YOLOX's scale, so a shared score threshold or tracker confidence means the
    same for both families (the upstream form lifts weak boxes: 0.1 x 0.9 scores
    0.24 instead of 0.09).

    Args:
        model_path: ``fastestdet.onnx``.
        postprocess_config: score threshold, NMS IoU and max detections.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        threads: intra-op threads, 0 for ONNX Runtime's default.
        rect_input: resize to ``input_size`` on the long side and the nearest
            multiple of 32 to the frame's aspect on the short side (a 360x480
            frame at 416 runs as 320x416), instead of squashing every frame to a
            square as the network was trained. Off by default: on PETS it gives
            the same AP per input pixel (rect 416, 133k px: 0.74; square 352,
            124k px: 0.73) but moves the useful sizes up a step (rect 352: 0.57,
            448: 0.70), since what matters is the persons' height in pixels.
        providers: explicit ONNX Runtime providers overriding ``device``.
    """

    name: ClassVar[str] = "fastestdet"
    # One stride-16 level trained at 352 sees persons only near that scale: person
    # AP on PETS09-S2L1 (square) 256: 0.27, 288: 0.52, 352: 0.73, 384: 0.74,
    # 416: 0.65, 448: 0.46, 512: 0.05, although every size from 64 to 1280 runs.
    min_input_size: ClassVar[int] = 288
    max_input_size: ClassVar[int] = 448
    default_input_size: ClassVar[int] = 352
    default_rect_input: ClassVar[bool] = False

    def _to_network(
        self, image: np.ndarray, knobs: DetectorKnobs
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """Plain resize (no letterbox), BGR / 255, as FastestDet was trained."""
        height, width = image.shape[:2]
        size = knobs.input_size
        network_hw = (
            rect_hw((height, width), size, self.size_step)
            if self.rect_input
            else (size, size)
        )
        resized = cv2.resize(
            image, (network_hw[1], network_hw[0]), interpolation=cv2.INTER_LINEAR
        )
        scale_xy = (network_hw[1] / width, network_hw[0] / height)
        return to_blob(resized, scale=1 / 255), scale_xy

    def postprocess(
        self, raw: list[np.ndarray] | None, prepared: Prepared
    ) -> Detections:
        """Decode every cell, keep scores above threshold, NMS, map to the frame."""
        if raw is None:
            return Detections.empty()
        output = raw[0][0]
        rows, cols = output.shape[1:]
        cells = output.reshape(output.shape[0], -1)
        class_ids = cells[5:].argmax(axis=0)
        scores = cells[0] * cells[5:][class_ids, np.arange(cells.shape[1])]
        keep = np.flatnonzero(scores > self.postprocess_config.score_threshold)
        cell_y, cell_x = np.divmod(keep, cols)
        net_h, net_w = prepared.inputs.shape[2:]
        centre_x = (cell_x + np.tanh(cells[1, keep])) / cols * net_w
        centre_y = (cell_y + np.tanh(cells[2, keep])) / rows * net_h
        half_w = _sigmoid(cells[3, keep]) * net_w / 2
        half_h = _sigmoid(cells[4, keep]) * net_h / 2
        xyxy = np.stack(
            [
                centre_x - half_w,
                centre_y - half_h,
                centre_x + half_w,
                centre_y + half_h,
            ],
            axis=1,
        )
        return finish(
            xyxy.astype(np.float32),
            scores[keep].astype(np.float32),
            class_ids[keep].astype(np.int64),
            self.postprocess_config,
            prepared.extra["scale_xy"],
            prepared.image_hw,
        )
