"""The static part of a torchvision Faster R-CNN frame, replayed as a CUDA graph.

For one (input size, frame shape) setting everything from the uint8 frame to the
FPN features has fixed shapes: BGR to RGB float, normalise, resize the shorter side
to the input size, pad to a multiple of 32, backbone and FPN. `GraphedStem` owns
static buffers for that setting and a CUDA graph of that chain, captured on first
use (the detector's warm-up); switching knobs replays another stem's graph over the
same weights. What stays eager, and why (docs/benchmarks/gpu.md): the RPN's top-k,
small-box and score filters and NMS keep a data-dependent number of proposals; the
box head's RoI pooling sorts them into FPN levels with ``torch.where`` (a
data-dependent count per level) before the per-class score filter and NMS.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.transform import GeneralizedRCNNTransform

# Eager runs before a capture, on a side stream: cuDNN and the allocator settle
# their first-call choices outside the graph.
_WARM_RUNS_BEFORE_CAPTURE = 3


def network_input(
    transform: GeneralizedRCNNTransform,
    mean: torch.Tensor,
    std: torch.Tensor,
    frame: torch.Tensor,
) -> tuple[torch.Tensor, tuple[int, int]]:
    """``model.transform`` of one frame, with no host-to-device copy in it.

    torchvision's ``normalize`` builds its mean and std from Python lists on every
    call (a synchronising copy, which a graph capture refuses); here they are
    ``mean`` and ``std``, ``(3, 1, 1) float32`` on the frame's device, and the
    arithmetic is the same. Resize and padding are the transform's own.

    Args:
        frame: ``(h, w, 3) uint8`` BGR on the device.

    Returns:
        ``(1, 3, H, W) float32`` padded input, and the resized ``(h', w')``.
    """
    rgb = frame.permute(2, 0, 1).flip(0).float().div_(255.0)
    resized, _ = transform.resize((rgb - mean) / std, None)
    padded = transform.batch_images([resized], size_divisible=transform.size_divisible)
    return padded, (resized.shape[-2], resized.shape[-1])


def normalisation(
    transform: GeneralizedRCNNTransform, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The transform's mean and std as ``(3, 1, 1) float32`` tensors on ``device``."""
    return tuple(
        torch.as_tensor(values, dtype=torch.float32, device=device)[:, None, None]
        for values in (transform.image_mean, transform.image_std)
    )


class GraphedStem:
    """Frame to FPN features for one setting, as one CUDA graph replay.

    The graph's outputs live in static tensors that the next replay overwrites:
    one frame is prepared, inferred and post-processed before the next (as
    `Detector.detect` does). Build it with the model's transform already set to
    the setting's input size.

    Args:
        model: the detector's Faster R-CNN, on a CUDA device, in eval mode.
        frame_hw: ``(height, width)`` of the frames this stem takes.
        pool: the detector's graph memory pool, shared by its stems (they never
            replay concurrently).
    """

    def __init__(
        self, model: nn.Module, frame_hw: tuple[int, int], pool: tuple[int, int]
    ) -> None:
        self.model = model
        device = next(model.parameters()).device
        self.mean, self.std = normalisation(model.transform, device)
        shape = (*frame_hw, 3)
        self.host = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        self.host_array = self.host.numpy()
        self.frame = torch.zeros(shape, dtype=torch.uint8, device=device)
        self.graph = torch.cuda.CUDAGraph()
        self._capture(device, pool)

    def _chain(self) -> tuple[torch.Tensor, tuple[int, int], OrderedDict]:
        padded, resized_hw = network_input(
            self.model.transform, self.mean, self.std, self.frame
        )
        features = self.model.backbone(padded)
        if isinstance(features, torch.Tensor):
            features = OrderedDict([("0", features)])
        return padded, resized_hw, features

    def _capture(self, device: torch.device, pool: tuple[int, int]) -> None:
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.inference_mode(), torch.cuda.stream(side):
            for _ in range(_WARM_RUNS_BEFORE_CAPTURE):
                self._chain()
        torch.cuda.current_stream(device).wait_stream(side)
        with torch.inference_mode(), torch.cuda.graph(self.graph, pool=pool):
            padded, resized_hw, self.features = self._chain()
        self.images = ImageList(padded, [resized_hw])

    def load(self, image: np.ndarray) -> None:
        """Queue ``image``'s copy to the device (through pinned memory)."""
        np.copyto(self.host_array, image)
        self.frame.copy_(self.host, non_blocking=True)

    def run(self) -> OrderedDict:
        """Replay the graph on the loaded frame; the FPN features it fills."""
        self.graph.replay()
        return self.features
