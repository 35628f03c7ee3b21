"""The ONNX families' preprocessing and decoding as torch ops on the GPU.

The same arithmetic as each family's numpy path (yolox.py, nanodet.py,
fastestdet.py), on a batch of frames at once and with static shapes only, so the
whole chain (resize, pad, normalise, network, decode) fits in one CUDA graph.
Decoding stops before the score threshold: what survives it has a data-dependent
size, which a graph cannot hold (`cuda_detector` thresholds and runs NMS after).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from approxrt.branches.detectors import nanodet, yolox
from approxrt.branches.detectors.postprocess import letterbox_hw, rect_hw

# (outputs, network_hw) -> boxes (B, n, 4) in network px, scores (B, n), classes (B, n)
Decoder = Callable[
    [list[torch.Tensor], tuple[int, int]],
    tuple[torch.Tensor, torch.Tensor, torch.Tensor],
]


@dataclass(frozen=True)
class Geometry:
    """Where a frame goes in the network input.

    Attributes:
        network_hw: the network input ``(H, W)``.
        resized_hw: the frame's size after scaling (top-left of the input).
        scale_xy: network pixels per frame pixel along x and y.
    """

    network_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    scale_xy: tuple[float, float]


@dataclass(frozen=True)
class GpuFamily:
    """One family's preprocessing constants and decoder.

    Attributes:
        letterbox: keep the aspect ratio and pad (True) or resize plainly.
        pad_value: grey level of the letterbox padding.
        pixel_scale, mean, std: network input is ``(pixel * pixel_scale - mean) / std``.
        decode: the family's decoder.
        batchable: the graph runs at batch > 1 (FastestDet's channel shuffle
            folds the batch into its channels with export-time constants).
    """

    letterbox: bool
    pad_value: float
    pixel_scale: float
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    decode: Decoder
    batchable: bool = True

    def geometry(
        self, frame_hw: tuple[int, int], input_size: int, rect: bool, step: int
    ) -> Geometry:
        if self.letterbox:
            network, resized, scale = letterbox_hw(frame_hw, input_size, rect, step)
            return Geometry(network, resized, (scale, scale))
        network = rect_hw(frame_hw, input_size, step) if rect else (input_size,) * 2
        scale_xy = (network[1] / frame_hw[1], network[0] / frame_hw[0])
        return Geometry(network, network, scale_xy)

    def to_network(self, frames: torch.Tensor, geometry: Geometry) -> torch.Tensor:
        """``(B, 3, H, W) float32`` network input from ``(B, h, w, 3) uint8`` frames."""
        pixels = frames.permute(0, 3, 1, 2).float()
        # Bilinear with half-pixel centres, as cv2.INTER_LINEAR; rounded because
        # the CPU path resizes into uint8.
        resized = F.interpolate(
            pixels, size=geometry.resized_hw, mode="bilinear", align_corners=False
        )
        resized = resized.round_().clamp_(0, 255)
        if geometry.resized_hw != geometry.network_hw:
            canvas = resized.new_full(
                (len(frames), 3, *geometry.network_hw), self.pad_value
            )
            canvas[:, :, : geometry.resized_hw[0], : geometry.resized_hw[1]] = resized
            resized = canvas
        return self._normalise(resized)

    def _normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.pixel_scale != 1:
            pixels = pixels * self.pixel_scale
        if self.mean is not None:
            pixels = pixels - _on_device(self.mean, pixels.device).view(1, 3, 1, 1)
        if self.std is not None:
            pixels = pixels / _on_device(self.std, pixels.device).view(1, 3, 1, 1)
        return pixels


# Constants are copied to the GPU once, outside any graph capture (a host-to-
# device copy from pageable memory cannot be captured); the warm-up runs before
# each capture fill these caches.
@functools.lru_cache(maxsize=16)
def _on_device(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device)


@functools.lru_cache(maxsize=64)
def _yolox_grid(
    network_hw: tuple[int, int], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(
        torch.from_numpy(array).to(device) for array in yolox.anchor_grid(network_hw)
    )


def _xyxy(centre: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    return torch.cat([centre - half, centre + half], dim=-1)


def decode_yolox(
    outputs: list[torch.Tensor], network_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """YOLOX: ``(B, n, 85)`` anchors -> boxes, obj x best class score, class."""
    (output,) = outputs
    grid, stride = _yolox_grid(network_hw, output.device)
    best, class_ids = output[..., 5:].max(dim=-1)
    centre = (output[..., :2] + grid) * stride
    half = torch.exp(output[..., 2:4]) * stride / 2
    return _xyxy(centre, half), output[..., 4] * best, class_ids


def _cell_centres(
    count: int, cols: int, stride: int, device: torch.device
) -> torch.Tensor:
    """``(count, 2)`` centres ``(x, y)`` of a row-major grid's cells, in pixels."""
    cells = torch.arange(count, device=device)
    xy = torch.stack([cells % cols, torch.div(cells, cols, rounding_mode="floor")], 1)
    return (xy.float() + nanodet.CENTRE_OFFSET) * stride


def decode_nanodet(
    outputs: list[torch.Tensor], network_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """NanoDet: per level, best class and distance-to-sides boxes (GFL bins)."""
    maps = sorted(outputs, key=lambda m: -m.shape[1])
    class_maps = [m for m in maps if m.shape[2] != 4 * nanodet.BINS]
    box_maps = [m for m in maps if m.shape[2] == 4 * nanodet.BINS]
    bins = torch.arange(nanodet.BINS, device=maps[0].device, dtype=torch.float32)
    boxes, scores, class_ids = [], [], []
    for stride, class_map, box_map in zip(
        nanodet.STRIDES, class_maps, box_maps, strict=True
    ):
        best, ids = class_map.max(dim=-1)
        logits = box_map.reshape(*box_map.shape[:2], 4, nanodet.BINS)
        sides = torch.softmax(logits, dim=-1) @ bins * stride
        cols = -(-network_hw[1] // stride)
        centre = _cell_centres(box_map.shape[1], cols, stride, box_map.device)
        boxes.append(torch.cat([centre - sides[..., :2], centre + sides[..., 2:]], -1))
        scores.append(best)
        class_ids.append(ids)
    return torch.cat(boxes, 1), torch.cat(scores, 1), torch.cat(class_ids, 1)


def decode_fastestdet(
    outputs: list[torch.Tensor], network_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FastestDet: ``(B, 85, rows, cols)`` cells -> boxes relative to the image."""
    (output,) = outputs
    rows, cols = output.shape[2:]
    cells = output.flatten(2)
    best, class_ids = cells[:, 5:].max(dim=1)
    index = torch.arange(rows * cols, device=output.device)
    cell_x = (index % cols).float()
    cell_y = torch.div(index, cols, rounding_mode="floor").float()
    net_h, net_w = network_hw
    centre = torch.stack(
        [
            (cell_x + torch.tanh(cells[:, 1])) / cols * net_w,
            (cell_y + torch.tanh(cells[:, 2])) / rows * net_h,
        ],
        dim=-1,
    )
    half = torch.stack(
        [
            torch.sigmoid(cells[:, 3]) * net_w / 2,
            torch.sigmoid(cells[:, 4]) * net_h / 2,
        ],
        dim=-1,
    )
    return _xyxy(centre, half), cells[:, 0] * best, class_ids


def _float_tuple(values: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(v) for v in values)


GPU_FAMILIES: dict[str, GpuFamily] = {
    "yolox_nano": GpuFamily(True, 114.0, 1.0, None, None, decode_yolox),
    "nanodet_m": GpuFamily(
        True,
        float(nanodet.PAD_VALUE),
        1.0,
        _float_tuple(nanodet.MEAN_BGR),
        _float_tuple(nanodet.STD_BGR),
        decode_nanodet,
    ),
    "fastestdet": GpuFamily(
        False, 0.0, 1 / 255, None, None, decode_fastestdet, batchable=False
    ),
}
