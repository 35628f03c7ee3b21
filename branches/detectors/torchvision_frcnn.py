"""Torchvision Faster R-CNN with ApproxDet's two knobs on one loaded model.

ApproxDet's detector takes two run-time scalars besides the image: the shorter-side
resize target and the number of RPN proposals kept for the second stage. Here they
are `DetectorKnobs.input_size` and `DetectorKnobs.proposals`, written into the one
model's ``transform`` and ``rpn`` before each call, so switching never rebuilds or
reloads anything. ``GeneralizedRCNN.forward`` is split into the timed stages:

- preprocess: frame to an RGB float tensor on the device, then ``model.transform``
  (normalise, resize the shorter side to ``input_size``, pad to a multiple of 32);
- infer: backbone, RPN and the box head up to its class logits and box deltas;
- postprocess: box decoding, score threshold, per-class NMS and the top
  ``max_detections`` (``roi_heads.postprocess_detections``), rescaling to the frame
  and torchvision's COCO category ids (1..90 with gaps) to contiguous ids.

On CUDA (unless ``graphs=False``) the part with static shapes, from the uint8
frame to the FPN features, replays one CUDA graph per (input size, frame shape),
captured on first use (`warmup`); see `frcnn_graph`. Preprocess then only queues
the frame's copy to the device, and infer replays the graph (normalise, resize,
pad, backbone, FPN) before the eager RPN and box head. On the CPU nothing changes.

Not thread-safe: the knobs live in the model, so one detector serves one caller.
"""

from __future__ import annotations

import pickle
import re
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torchvision.models import detection as tv_detection

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors.base import Detector, PostprocessConfig, Prepared
from approxrt.branches.detectors.frcnn_graph import GraphedStem
from approxrt.branches.detectors.postprocess import check_image, is_empty
from approxrt.branches.models import (
    MODELS,
    ModelDownloadError,
    ModelNotFoundError,
    resolve_model,
)
from approxrt.classes import COCO_CATEGORY_IDS
from approxrt.detections import Detections

RANDOM = "random"
# torchvision label (COCO category id) -> contiguous class id; -1 for the unused ids.
_CONTIGUOUS = np.full(max(COCO_CATEGORY_IDS) + 1, -1, np.int64)
_CONTIGUOUS[list(COCO_CATEGORY_IDS)] = np.arange(len(COCO_CATEGORY_IDS))
# The longer side is capped at this multiple of input_size: 16:9 and 2:1 frames
# keep their shorter side at input_size, panoramas are capped to bound the cost.
MAX_SIZE_RATIO = 2.0
_DEVICE = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def torch_device(device: str) -> torch.device:
    """``"auto"`` (CUDA when torch sees it), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    match = _DEVICE.match(device) if isinstance(device, str) else None
    if match is None or (match[1] != "cuda" and match[2] is not None):
        raise ValueError(
            f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        )
    kind = match[1]
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(match[2] or 0)
        if index >= count:
            raise ValueError(
                f"device: {device!r} asked for, but torch sees {count} CUDA device(s)"
            )
    return torch.device(device)


class TorchvisionFasterRCNN(Detector):
    """A torchvision Faster R-CNN (COCO, 91 labels) with run-time size and proposals.

    Knobs:
        input_size: the frame's shorter side is resized to this (the longer side
            at most ``MAX_SIZE_RATIO`` times it). Raising it finds smaller objects;
            backbone cost grows about quadratically.
        proposals: RPN proposals (after the RPN's NMS) kept for the second stage;
            the RPN's per-level pre-NMS top-n stays at the trained 1000. Raising
            it recovers more objects in crowded frames; box-head cost grows
            linearly.

    Args:
        weights: None or ``"pretrained"``: the COCO weights found by
            `approxrt.branches.models.resolve_model` (models dir,
            ``$APPROXRT_MODELS``, cache, torch.hub cache, download); a path to a
            state_dict file; or ``"random"`` for latency-only work.
        postprocess_config: score threshold, per-class NMS IoU, max detections.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        models_dir: passed to `resolve_model` for pretrained weights.
        cache_dir: passed to `resolve_model`.
        download: let `resolve_model` download missing weights.
        graphs: on CUDA, replay a CUDA graph per (input size, frame shape) for
            the static part (see the module); False runs it eagerly. Ignored
            on the CPU, where ``self.graphs`` is False.
    """

    two_stage: ClassVar[bool] = True
    # 32 admits all of ApproxDet's sizes (224, 320, 448, 576) and matches the
    # transform's padding; 800 (torchvision's training size) is allowed too.
    size_step: ClassVar[int] = 32
    min_input_size: ClassVar[int] = 128
    max_input_size: ClassVar[int] = 1344
    default_input_size: ClassVar[int] = 576
    max_proposals: ClassVar[int] = 1000
    _build: ClassVar[Callable[..., nn.Module]]

    def __init__(
        self,
        weights: str | Path | None = None,
        postprocess_config: PostprocessConfig | None = None,
        device: str = "auto",
        *,
        models_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        download: bool = True,
        graphs: bool = True,
    ) -> None:
        self.postprocess_config = postprocess_config or PostprocessConfig()
        self.device = torch_device(device)
        config = self.postprocess_config
        # weights_backbone=None: torchvision must not fetch ImageNet weights either.
        model = type(self)._build(
            weights=None,
            weights_backbone=None,
            num_classes=len(_CONTIGUOUS),
            box_score_thresh=config.score_threshold,
            box_nms_thresh=config.nms_iou_threshold,
            box_detections_per_img=config.max_detections,
        )
        self.weights_path = self._load_weights(
            model, weights, models_dir, cache_dir, download
        )
        self.weights = RANDOM if self.weights_path is None else "pretrained"
        self.model = model.eval().to(self.device)
        self.graphs = graphs and self.device.type == "cuda"
        self._graph_pool = torch.cuda.graph_pool_handle() if self.graphs else None
        self._stems: dict[tuple[int, tuple[int, int]], GraphedStem] = {}

    @property
    def route_detail(self) -> str:
        """What ran, for ``summary.json``: e.g. ``"torch (cuda:0, graphs)"``."""
        return f"torch ({self.device}{', graphs' if self.graphs else ''})"

    @property
    def graph_settings(self) -> list[tuple[int, tuple[int, int]]]:
        """The (input size, frame shape) settings with a captured graph."""
        return list(self._stems)

    def _stem(self, input_size: int, image_hw: tuple[int, int]) -> GraphedStem:
        """The setting's graph, captured on first use (knobs already applied)."""
        key = (input_size, image_hw)
        if key not in self._stems:
            self._stems[key] = GraphedStem(self.model, image_hw, self._graph_pool)
        return self._stems[key]

    @classmethod
    def knob_problem(cls, knobs: DetectorKnobs) -> str | None:
        problem = super().knob_problem(knobs)
        if problem is None and not 1 <= knobs.proposals <= cls.max_proposals:
            problem = (
                f"{cls.name} proposals {knobs.proposals}: must be in "
                f"[1, {cls.max_proposals}]"
            )
        return problem

    def _load_weights(
        self, model: nn.Module, weights, models_dir, cache_dir, download
    ) -> Path | None:
        """Fill ``model`` from ``weights``; the file used, or None for random."""
        if weights == RANDOM:
            return None
        if weights is None or weights == "pretrained":
            path = self._find_pretrained(models_dir, cache_dir, download)
        elif isinstance(weights, str | Path):
            path = Path(weights)
        else:
            raise TypeError(
                f"weights: expected None, 'pretrained', 'random' or a path, got "
                f"{type(weights).__name__}"
            )
        load_state_dict(model, path, self.name)
        return path

    def _find_pretrained(self, models_dir, cache_dir, download) -> Path:
        try:
            return resolve_model(self.name, models_dir, cache_dir, download)
        except (ModelNotFoundError, ModelDownloadError) as error:
            raise ModelNotFoundError(
                f"{self.name}: no pretrained weights. {error} Or pass "
                f"weights=<path to a {MODELS[self.name].filename} state_dict>, or "
                f"weights='random' for latency-only work."
            ) from error

    def _apply(self, knobs: DetectorKnobs) -> None:
        """Write the knobs into the one model (cheap attribute sets, no rebuild)."""
        transform = self.model.transform
        transform.min_size = (knobs.input_size,)
        transform.max_size = round(knobs.input_size * MAX_SIZE_RATIO)
        # torchvision keeps the test-time RPN limits in this dict; no setter exists.
        self.model.rpn._post_nms_top_n["testing"] = knobs.proposals

    def preprocess(self, image: np.ndarray, knobs: DetectorKnobs) -> Prepared:
        """``(h, w, 3) uint8`` BGR frame to a normalised, resized, padded batch of 1.

        ``Prepared.inputs`` is torchvision's ``ImageList`` (None for a zero-area
        frame); ``scale`` is network pixels per frame pixel. With graphs it is
        the graph's static input, filled when `infer` replays the graph, and
        ``extra["stem"]`` is the `GraphedStem`.
        """
        self.check_knobs(knobs)
        check_image(image)
        image_hw = (image.shape[0], image.shape[1])
        if is_empty(image):
            return Prepared(None, knobs, image_hw)
        self._apply(knobs)
        if self.graphs:
            stem = self._stem(knobs.input_size, image_hw)
            stem.load(image)
            scale = stem.images.image_sizes[0][0] / image_hw[0]
            return Prepared(stem.images, knobs, image_hw, scale, {"stem": stem})
        with torch.inference_mode():
            pixels = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
            rgb = pixels.permute(2, 0, 1).flip(0).float().div_(255.0)
            images, _ = self.model.transform([rgb])
        scale = images.image_sizes[0][0] / image_hw[0]
        return Prepared(images, knobs, image_hw, scale)

    def infer(self, prepared: Prepared) -> dict[str, Any] | None:
        """Backbone, RPN and box head; returns logits, deltas and proposals.

        With graphs, the replay (normalise, resize, pad, backbone, FPN) comes
        first and the RPN and box head run eagerly on its outputs.
        """
        if prepared.inputs is None:
            return None
        self._apply(prepared.knobs)
        model, images = self.model, prepared.inputs
        with torch.inference_mode():
            if "stem" in prepared.extra:
                features = prepared.extra["stem"].run()
            else:
                features = model.backbone(images.tensors)
            if isinstance(features, torch.Tensor):
                features = OrderedDict([("0", features)])
            proposals, _ = model.rpn(images, features)
            heads = model.roi_heads
            box_features = heads.box_head(
                heads.box_roi_pool(features, proposals, images.image_sizes)
            )
            class_logits, box_regression = heads.box_predictor(box_features)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return {
            "class_logits": class_logits,
            "box_regression": box_regression,
            "proposals": proposals,
        }

    def postprocess(self, raw: dict[str, Any] | None, prepared: Prepared) -> Detections:
        """Decode, threshold, per-class NMS, rescale to the frame, contiguous ids."""
        if raw is None:
            return Detections.empty()
        image_sizes = prepared.inputs.image_sizes
        with torch.inference_mode():
            boxes, scores, labels = self.model.roi_heads.postprocess_detections(
                raw["class_logits"],
                raw["box_regression"],
                raw["proposals"],
                image_sizes,
            )
            result = self.model.transform.postprocess(
                [{"boxes": boxes[0], "scores": scores[0], "labels": labels[0]}],
                image_sizes,
                [prepared.image_hw],
            )[0]
        class_id = _CONTIGUOUS[result["labels"].cpu().numpy()]
        # Only untrained weights score torchvision's unused ("N/A") labels.
        keep = class_id >= 0
        return Detections(
            result["boxes"].cpu().numpy()[keep],
            result["scores"].cpu().numpy()[keep],
            class_id[keep],
        )


def load_state_dict(model: nn.Module, path: Path, name: str) -> None:
    """Load a state_dict file (or a training checkpoint holding one under "model").

    Raises:
        ValueError: the file is missing, unreadable, or does not fit ``model``;
            the message names the path.
    """
    if not path.is_file():
        raise ValueError(
            f"{name} weights file {str(path)!r} does not exist; pass an existing "
            f".pth state_dict, None for the pretrained weights, or 'random'"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as error:
        raise ValueError(
            f"{name} weights file {str(path)!r} is not a readable PyTorch state_dict "
            f"(corrupt or truncated?): {error}"
        ) from error
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ValueError(
            f"{name} weights file {str(path)!r} holds a {type(state).__name__}, "
            "expected a state_dict"
        )
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # same keys, different shapes
        raise ValueError(
            f"{name} weights file {str(path)!r} does not fit {name}: {error}"
        ) from error
    # BatchNorm's step counter is absent from files saved with FrozenBatchNorm2d.
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(
            f"{name} weights file {str(path)!r} does not fit {name}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} "
            f"unexpected keys (e.g. {unexpected[:3]})"
        )


class FrcnnMobileNetV3(TorchvisionFasterRCNN):
    """Faster R-CNN, MobileNetV3-Large FPN backbone (torchvision COCO_V1 weights)."""

    name: ClassVar[str] = "frcnn_mbv3"
    _build = staticmethod(tv_detection.fasterrcnn_mobilenet_v3_large_fpn)


class FrcnnResNet50(TorchvisionFasterRCNN):
    """Faster R-CNN, ResNet-50 FPN backbone (torchvision COCO_V1 weights)."""

    name: ClassVar[str] = "frcnn_r50"
    _build = staticmethod(tv_detection.fasterrcnn_resnet50_fpn)
