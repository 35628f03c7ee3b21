"""An ONNX detector family on CUDA through torch: one CUDA graph per setting.

For each (batch size, frame size, input size) a `_Runner` owns a pinned host
buffer, a device frame buffer and, in ``"graph"`` mode, a CUDA graph of the whole
static chain: resize/pad/normalise on the GPU, the network (traced and frozen for
that input shape, see `onnx_torch`), and the family's decode. It is built on
first use, which `warmup` makes the warm-up; switching knobs replays another
graph over the same weights. What has a data-dependent size (the score
threshold, NMS) runs after the replay, on the GPU, and only the kept boxes come
back to the host.

Modes (for measuring what each step buys): ``"eager"`` runs onnx2torch's module
as converted (it reads shapes back to the host every call), ``"traced"`` the
traced module without a graph, ``"graph"`` (the default) replays the graph.
"""

from __future__ import annotations

from pathlib import Path
from time import perf_counter
from typing import ClassVar

import numpy as np
import torch
from torchvision.ops import batched_nms

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors.base import Detector, PostprocessConfig, Prepared
from approxrt.branches.detectors.gpu_families import GPU_FAMILIES, Geometry
from approxrt.branches.detectors.onnx_session import OnnxDetector
from approxrt.branches.detectors.onnx_torch import (
    as_list,
    convert_onnx,
    cudnn_tf32,
    trace_for_shape,
)
from approxrt.branches.detectors.postprocess import check_image, is_empty, to_frame
from approxrt.detections import Detections

MODES = ("eager", "traced", "graph")
# Network arithmetic: TF32 convolutions (torch's default), full FP32, or FP16.
PRECISIONS = ("tf32", "fp32", "fp16")
# Runs before a capture: the traced module's profiling executor optimises over
# its first calls, and lazily made constants must exist before capture.
_WARM_RUNS_BEFORE_CAPTURE = 5
# Class ids are offset by image index times this in one batched NMS.
_CLASS_SPAN = 1000


class _Runner:
    """Static buffers and the compiled chain for one (batch, frame, input) shape."""

    def __init__(
        self,
        detector: CudaOnnxDetector,
        batch: int,
        frame_hw: tuple[int, int],
        geometry: Geometry,
    ) -> None:
        self.detector = detector
        self.geometry = geometry
        shape = (batch, *frame_hw, 3)
        on_gpu = detector.device.type == "cuda"
        self.host = torch.empty(shape, dtype=torch.uint8, pin_memory=on_gpu)
        self.host_array = self.host.numpy()
        self.frames = torch.empty(shape, dtype=torch.uint8, device=detector.device)
        self.network = self._network_for_shape(batch)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: tuple[torch.Tensor, ...] | None = None
        if detector.mode == "graph":
            self._capture()

    def _network_for_shape(self, batch: int):
        if self.detector.mode == "eager":
            return self.detector.network
        example = torch.zeros(
            (batch, 3, *self.geometry.network_hw),
            dtype=self.detector.dtype,
            device=self.detector.device,
        )
        return trace_for_shape(self.detector.network, example)

    def _chain(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        family = self.detector.gpu_family
        with torch.no_grad(), cudnn_tf32(self.detector.precision == "tf32"):
            blob = family.to_network(self.frames, self.geometry)
            outputs = as_list(self.network(blob.to(self.detector.dtype)))
            return family.decode(
                [out.float() for out in outputs], self.geometry.network_hw
            )

    def _capture(self) -> None:
        side = torch.cuda.Stream(self.detector.device)
        side.wait_stream(torch.cuda.current_stream(self.detector.device))
        with torch.cuda.stream(side):
            for _ in range(_WARM_RUNS_BEFORE_CAPTURE):
                self._chain()
        torch.cuda.current_stream(self.detector.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=self.detector.graph_pool):
            self.outputs = self._chain()

    def load(self, images: list[np.ndarray]) -> None:
        """Queue the frames' copy to the GPU (through pinned memory)."""
        for index, image in enumerate(images):
            np.copyto(self.host_array[index], image)
        self.frames.copy_(self.host, non_blocking=True)

    def run(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The chain over the loaded frames; returns once the GPU is done."""
        if self.graph is None:
            outputs = self._chain()
        else:
            self.graph.replay()
            outputs = self.outputs
        if self.detector.device.type == "cuda":
            torch.cuda.current_stream(self.detector.device).synchronize()
        return outputs


class CudaOnnxDetector(Detector):
    """ONNX detector family ``family`` on a CUDA device through torch.

    Args:
        family: the family's ONNX Runtime class (`YoloxDetector`, ...), which gives
            the name, the valid knobs and the default ``rect_input``.
        model_path: the family's ``.onnx`` file.
        postprocess_config: score threshold, NMS IoU and max detections.
        device: ``"cuda"`` or ``"cuda:N"``; ``"cpu"`` runs the same torch chain
            without graphs (for checking it on machines without a GPU).
        rect_input: as the family's; None takes the family's default.
        mode: ``"graph"`` (default), ``"traced"`` or ``"eager"``; see the module.
        precision: the network's arithmetic: ``"tf32"`` (torch's default for
            convolutions), ``"fp32"`` or ``"fp16"``; pre- and post-processing
            stay FP32. gpu.md gives each one's PETS AP50 beside ONNX Runtime's.

    Raises:
        ValueError: an unknown family, mode or a device that is not CUDA.
        RuntimeError: torch sees no such CUDA device.
    """

    route: ClassVar[str] = "torch-cuda"

    def __init__(
        self,
        family: type[OnnxDetector],
        model_path: str | Path,
        postprocess_config: PostprocessConfig | None = None,
        device: str = "cuda",
        rect_input: bool | None = None,
        mode: str = "graph",
        precision: str = "tf32",
    ) -> None:
        if family.name not in GPU_FAMILIES:
            raise ValueError(
                f"no CUDA route for detector {family.name!r}; it has one for "
                f"{', '.join(GPU_FAMILIES)}"
            )
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        if precision not in PRECISIONS:
            raise ValueError(
                f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}"
            )
        self.device = _torch_device(device, mode)
        self.family = family
        self.name = family.name
        self.gpu_family = GPU_FAMILIES[family.name]
        self.batchable = self.gpu_family.batchable
        self.postprocess_config = postprocess_config or PostprocessConfig()
        self.rect_input = (
            family.default_rect_input if rect_input is None else rect_input
        )
        self.mode = mode
        self.precision = precision
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.network = convert_onnx(model_path).to(self.device, self.dtype)
        self.graph_pool = torch.cuda.graph_pool_handle() if mode == "graph" else None
        self._runners: dict[tuple[int, tuple[int, int], int], _Runner] = {}

    @property
    def route_detail(self) -> str:
        return f"{self.route} ({self.mode}, {self.precision}, {self.device})"

    def knob_problem(self, knobs: DetectorKnobs) -> str | None:
        return self.family.knob_problem(knobs)

    def runner(
        self, batch: int, frame_hw: tuple[int, int], knobs: DetectorKnobs
    ) -> _Runner:
        """The runner for this shape, built (graph captured) on first use."""
        key = (batch, frame_hw, knobs.input_size)
        if key not in self._runners:
            geometry = self.gpu_family.geometry(
                frame_hw, knobs.input_size, self.rect_input, self.family.size_step
            )
            self._runners[key] = _Runner(self, batch, frame_hw, geometry)
        return self._runners[key]

    def preprocess(self, image: np.ndarray, knobs: DetectorKnobs) -> Prepared:
        """Check, then queue the frame's copy to the GPU; resizing runs in `infer`
        (inside the graph). A zero-area frame gets no runner."""
        self.check_knobs(knobs)
        check_image(image)
        image_hw = (image.shape[0], image.shape[1])
        if is_empty(image):
            return Prepared(None, knobs, image_hw)
        runner = self.runner(1, image_hw, knobs)
        runner.load([image])
        scale_xy = runner.geometry.scale_xy
        return Prepared(runner, knobs, image_hw, scale_xy[0], {"scale_xy": scale_xy})

    def infer(self, prepared: Prepared):
        """Resize, network and decode on the GPU; None for a zero-area frame."""
        if prepared.inputs is None:
            return None
        return prepared.inputs.run()

    def postprocess(self, raw, prepared: Prepared) -> Detections:
        """Threshold and NMS on the GPU, then map the kept boxes to the frame."""
        if raw is None:
            return Detections.empty()
        return self._select(raw, [prepared.image_hw], prepared.extra["scale_xy"])[0]

    def detect_batch(
        self, images: list[np.ndarray], knobs: DetectorKnobs
    ) -> list[Detections]:
        """Detections for several frames of one size in one batched call.

        Raises:
            ValueError: no frames, a bad frame, or frames of different sizes.
        """
        return self.detect_batch_timed(images, knobs)[0]

    def detect_batch_timed(
        self, images: list[np.ndarray], knobs: DetectorKnobs
    ) -> tuple[list[Detections], dict[str, float]]:
        """`detect_batch`, with the call's stages in ms: ``preprocess`` (copy in),
        ``infer`` (the graph: resize, network, decode) and ``postprocess``
        (threshold, NMS, boxes back to the frames)."""
        image_hw = self._check_batch(images, knobs)
        if is_empty(images[0]):
            stage_ms = {"preprocess": 0.0, "infer": 0.0, "postprocess": 0.0}
            return [Detections.empty() for _ in images], stage_ms
        start = perf_counter()
        runner = self.runner(len(images), image_hw, knobs)
        runner.load(images)
        loaded = perf_counter()
        raw = runner.run()
        ran = perf_counter()
        found = self._select(raw, [image_hw] * len(images), runner.geometry.scale_xy)
        return found, {
            "preprocess": (loaded - start) * 1e3,
            "infer": (ran - loaded) * 1e3,
            "postprocess": (perf_counter() - ran) * 1e3,
        }

    def _check_batch(
        self, images: list[np.ndarray], knobs: DetectorKnobs
    ) -> tuple[int, int]:
        """The frames' one ``(height, width)``; a ValueError says what is wrong."""
        self.check_knobs(knobs)
        if not images:
            raise ValueError("detect_batch: no frames given")
        for image in images:
            check_image(image)
        sizes = {image.shape[:2] for image in images}
        if len(sizes) != 1:
            raise ValueError(
                f"detect_batch: frames must share one size, got {sorted(sizes)}"
            )
        if len(images) > 1 and not self.batchable:
            raise ValueError(
                f"detect_batch: {self.name}'s graph runs one frame at a time (its "
                "channel shuffle folds the batch into export-time constants)"
            )
        (image_hw,) = sizes
        return image_hw

    def _select(
        self,
        raw: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        images_hw: list[tuple[int, int]],
        scale_xy: tuple[float, float],
    ) -> list[Detections]:
        """Threshold, one class- and image-aware NMS, top-k per image, to frames."""
        boxes, scores, class_ids = raw
        config = self.postprocess_config
        image, anchor = torch.nonzero(scores > config.score_threshold, as_tuple=True)
        if not len(image):
            return [Detections.empty() for _ in images_hw]
        kept_boxes, kept_scores = boxes[image, anchor], scores[image, anchor]
        kept_classes = class_ids[image, anchor]
        order = batched_nms(
            kept_boxes,
            kept_scores,
            image * _CLASS_SPAN + kept_classes,
            config.nms_iou_threshold,
        )
        packed = (
            torch.cat(
                [
                    kept_boxes[order],
                    kept_scores[order, None],
                    kept_classes[order, None].float(),
                    image[order, None].float(),
                ],
                dim=1,
            )
            .cpu()
            .numpy()
        )
        results = []
        for index, image_hw in enumerate(images_hw):
            mine = packed[packed[:, 6] == index][: config.max_detections]
            results.append(
                to_frame(mine[:, :4], mine[:, 4], mine[:, 5], scale_xy, image_hw)
            )
        return results


def _torch_device(device: str, mode: str) -> torch.device:
    if device == "cpu" and mode != "graph":
        return torch.device("cpu")
    if not device.startswith("cuda"):
        raise ValueError(
            f"device {device!r}: the torch route runs on 'cuda' or 'cuda:N' "
            "('cpu' only without graphs, for checks)"
        )
    index = torch.device(device).index or 0
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if index >= count:
        raise RuntimeError(
            f"device {device!r}: torch sees {count} CUDA device(s) "
            f"(torch.cuda.is_available() is {torch.cuda.is_available()})"
        )
    return torch.device("cuda", index)
