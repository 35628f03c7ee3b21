"""Pre- and post-processing shared by the ONNX detector families.

Resizing (letterbox or plain), the float ``(1, 3, H, W)`` blob, and the common
tail of every decoder: score threshold, class-aware NMS (OpenCV's
``NMSBoxesBatched``), the ``max_detections`` cut, mapping to frame pixels and clipping.

Nothing here imports torch: the ONNX families on the CPU must run without it
(a deployment without torch, and no torch start-up cost or threads).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from approxrt.branches.detectors.base import PostprocessConfig
from approxrt.detections import Detections


def check_image(image: np.ndarray) -> None:
    """Raise unless ``image`` is an ``(h, w, 3) uint8`` BGR frame (h or w may be 0)."""
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != 3
    ):
        got = (
            f"{type(image).__name__} {getattr(image, 'dtype', '')} "
            f"{getattr(image, 'shape', '')}"
        )
        raise ValueError(f"image: expected an (h, w, 3) uint8 BGR array, got {got}")


def is_empty(image: np.ndarray) -> bool:
    """True for a zero-area frame or region, which holds nothing to detect."""
    return image.shape[0] == 0 or image.shape[1] == 0


def round_up(value: float, step: int) -> int:
    return math.ceil(value / step - 1e-9) * step


def letterbox_hw(
    image_hw: tuple[int, int], input_size: int, rect: bool, step: int = 32
) -> tuple[tuple[int, int], tuple[int, int], float]:
    """Sizes of a letterbox that fits ``image_hw`` into ``input_size`` squared.

    Args:
        image_hw: frame ``(height, width)``.
        input_size: side of the square the frame is scaled to fit.
        rect: pad only up to the next multiple of ``step`` on the short side
            (a 360x480 frame at 416 gives a 320x416 input) instead of to a square.

    Returns:
        ``(network_hw, resized_hw, scale)`` where ``scale`` is network pixels
        per frame pixel.
    """
    height, width = image_hw
    scale = min(input_size / height, input_size / width)
    resized = (max(1, round(height * scale)), max(1, round(width * scale)))
    if rect:
        network = (round_up(resized[0], step), round_up(resized[1], step))
    else:
        network = (input_size, input_size)
    return network, resized, scale


def letterbox(
    image: np.ndarray, input_size: int, rect: bool, step: int = 32, pad_value: int = 114
) -> tuple[np.ndarray, float]:
    """Scale ``image`` keeping its aspect ratio into the top-left of a padded canvas.

    Returns:
        ``(canvas, scale)``: the ``(H, W, 3) uint8`` network image and network
        pixels per frame pixel.
    """
    network, resized, scale = letterbox_hw(image.shape[:2], input_size, rect, step)
    canvas = np.full((*network, 3), pad_value, np.uint8)
    # Bilinear, as the families were trained with.
    canvas[: resized[0], : resized[1]] = cv2.resize(
        image, (resized[1], resized[0]), interpolation=cv2.INTER_LINEAR
    )
    return canvas, scale


def rect_hw(
    image_hw: tuple[int, int], input_size: int, step: int = 32
) -> tuple[int, int]:
    """``(H, W)`` with the long side ``input_size`` and the short side the nearest
    multiple of ``step`` to the frame's aspect ratio (for plain, unpadded resizes)."""
    height, width = image_hw
    if height >= width:
        return input_size, max(step, round(input_size * width / height / step) * step)
    return max(step, round(input_size * height / width / step) * step), input_size


def to_blob(
    canvas: np.ndarray,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """``(1, 3, H, W) float32`` network input from an ``(H, W, 3) uint8`` image.

    Computes ``(pixel * scale - mean) / std`` per channel (BGR order kept).
    """
    # Transposing the uint8 image before converting moves 4x fewer bytes; the
    # in-place arithmetic on the contiguous float copy is then vectorised.
    blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None]).astype(np.float32)
    std = np.ones(3, np.float32) if std is None else np.asarray(std, np.float32)
    multiplier = (np.float32(scale) / std).reshape(1, 3, 1, 1)
    if np.any(multiplier != 1):
        blob *= multiplier
    if mean is not None:
        blob -= (np.asarray(mean, np.float32) / std).reshape(1, 3, 1, 1)
    return blob


def finish(
    xyxy: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    config: PostprocessConfig,
    scale_xy: tuple[float, float],
    image_hw: tuple[int, int],
) -> Detections:
    """Threshold, class-aware NMS, top-k, and map network boxes to frame pixels.

    Args:
        xyxy: ``(n, 4) float32`` candidate boxes in network pixels.
        scores: ``(n,) float32`` candidate scores.
        class_ids: ``(n,) int64`` COCO class ids.
        config: threshold, NMS IoU and max detections.
        scale_xy: network pixels per frame pixel along x and y.
        image_hw: frame ``(height, width)`` to clip to.

    Returns:
        At most ``config.max_detections`` boxes, best first, clipped to the
        frame; boxes that clip to zero area are dropped.
    """
    keep = scores > config.score_threshold
    if not keep.any():
        return Detections.empty()
    xyxy, scores, class_ids = xyxy[keep], scores[keep], class_ids[keep]
    order = batched_nms(xyxy, scores, class_ids, config.nms_iou_threshold)
    order = order[: config.max_detections]
    return to_frame(xyxy[order], scores[order], class_ids[order], scale_xy, image_hw)


def to_frame(
    xyxy: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    scale_xy: tuple[float, float],
    image_hw: tuple[int, int],
) -> Detections:
    """Boxes kept by NMS, from network pixels to frame pixels, clipped to the
    frame; boxes that clip to zero area are dropped."""
    boxes = xyxy / np.asarray([*scale_xy, *scale_xy], np.float32)
    height, width = image_hw
    np.clip(boxes[:, 0::2], 0, width, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, height, out=boxes[:, 1::2])
    visible = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return Detections(
        np.asarray(boxes[visible], np.float32),
        np.asarray(scores[visible], np.float32),
        np.asarray(class_ids[visible], np.int64),
    )


def batched_nms(
    xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Greedy class-aware NMS: indices of the boxes kept, best score first.

    A box is dropped when its IoU with a better-scored kept box of the same class
    exceeds ``iou_threshold`` (torchvision's ``batched_nms`` rule; OpenCV computes
    the IoU in float64, so a pair within float32 rounding of the threshold may
    differ).
    """
    if len(xyxy) == 0:
        return np.empty(0, np.int64)
    boxes = np.asarray(xyxy, np.float64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    # score_threshold -inf: the caller has already thresholded.
    kept = cv2.dnn.NMSBoxesBatched(
        xywh,
        np.asarray(scores, np.float32),
        np.asarray(class_ids, np.int32),
        -np.inf,
        iou_threshold,
    )
    return np.asarray(kept, np.int64).reshape(-1)


def best_class(
    class_scores: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows whose best class score beats ``threshold``.

    Args:
        class_scores: ``(n, c) float32`` per-row class scores.

    Returns:
        ``(rows, class_ids, scores)``: ``(k,) int64`` row indices, their best
        ``(k,) int64`` class and ``(k,) float32`` its score.
    """
    best = class_scores.max(axis=1)
    rows = np.flatnonzero(best > threshold)
    class_ids = class_scores[rows].argmax(axis=1).astype(np.int64)
    return rows, class_ids, best[rows].astype(np.float32)
