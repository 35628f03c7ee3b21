"""One ONNX Runtime session per model file, runnable at any input size.

`OnnxSession` loads the file with ``onnx``, makes the sizes baked into its graph
follow the input's run-time shape in memory (`onnx_graph`; the file is never
written) and builds one ``InferenceSession``, so switching the input size never
reloads weights.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors.base import Detector, PostprocessConfig, Prepared
from approxrt.branches.detectors.onnx_graph import (
    image_input,
    load_model,
    prepare_dynamic_model,
)
from approxrt.branches.detectors.postprocess import check_image, is_empty

# What auto picks, best first; CPU is always the fallback.
_AUTO_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
_CPU = "CPUExecutionProvider"
_DEVICE = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")
_ORT_ERRORS = tuple(
    getattr(ort.capi.onnxruntime_pybind11_state, name)
    for name in (
        "Fail",
        "InvalidArgument",
        "InvalidGraph",
        "InvalidProtobuf",
        "NoSuchFile",
        "NotImplemented",
        "RuntimeException",
    )
)


def choose_providers(
    device: str = "auto",
    providers: list | None = None,
    available: list[str] | None = None,
) -> list:
    """Execution providers for ``device``, best first, always ending with CPU.

    Args:
        device: ``"auto"`` (TensorRT, then CUDA, then CPU, among those
            available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (GPU ``N``).
        providers: explicit ONNX Runtime providers (names or ``(name, options)``
            pairs); when given, ``device`` is ignored and these are used as is.
        available: provider names to choose among; defaults to
            ``onnxruntime.get_available_providers()``.

    Raises:
        ValueError: ``device`` is malformed, or asks for a provider that is not
            available.
    """
    available = list(ort.get_available_providers() if available is None else available)
    if providers is not None:
        names = [p[0] if isinstance(p, tuple) else p for p in providers]
        missing = [name for name in names if name not in available]
        if not names or missing:
            raise ValueError(
                f"providers {providers!r}: {missing or 'empty list'} not available; "
                f"available are {available}"
            )
        return list(providers)
    match = _DEVICE.match(device.strip().lower()) if isinstance(device, str) else None
    if match is None:
        raise ValueError(
            f"device {device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        )
    kind, index = match.group(1), int(match.group(2) or 0)
    if kind == "cpu":
        return [_CPU]
    if kind == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ValueError(
                f"device {device!r}: CUDAExecutionProvider is not available (install "
                f"onnxruntime-gpu); available are {available}"
            )
        return [("CUDAExecutionProvider", {"device_id": index}), _CPU]
    chosen: list = [
        (name, {"device_id": index}) for name in _AUTO_ORDER if name in available
    ]
    return [*chosen, _CPU]


class OnnxSession:
    """One ONNX Runtime session over a model whose input size may change per call.

    Args:
        model_path: the ``.onnx`` file.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; see
            `choose_providers`.
        providers: explicit providers overriding ``device``.
        threads: intra-op threads; 0 keeps ONNX Runtime's default (one per
            physical core). Fewer threads leave cores to other work.

    Attributes:
        input_name: name of the image input.
        native_hw: ``(height, width)`` the model was exported at.
        rewritten_nodes: how many Reshape/Resize nodes now follow the input size.
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "auto",
        providers: list | None = None,
        threads: int = 0,
    ) -> None:
        if not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads {threads!r}: expected an int >= 0 (0 = default)")
        self.model_path = Path(model_path)
        original = load_model(self.model_path)
        try:
            image = image_input(original)
        except ValueError as error:
            raise ValueError(f"model file {str(self.model_path)!r}: {error}") from error
        self.input_name = image.name
        dims = image.type.tensor_type.shape.dim
        self.native_hw = (dims[2].dim_value, dims[3].dim_value)
        model, self.rewritten_nodes = prepare_dynamic_model(original)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                model.SerializeToString(),
                sess_options=options,
                providers=choose_providers(device, providers),
            )
        except _ORT_ERRORS as error:
            raise ValueError(
                f"model file {str(self.model_path)!r}: ONNX Runtime cannot build a "
                f"session from it: {error}"
            ) from error
        self.output_names = [output.name for output in self.session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        """The providers the session actually uses, best first."""
        return list(self.session.get_providers())

    def run(self, image: np.ndarray) -> list[np.ndarray]:
        """Outputs for a ``(1, 3, H, W) float32`` input, in graph output order."""
        return self.session.run(self.output_names, {self.input_name: image})


class OnnxDetector(Detector):
    """A `Detector` over one `OnnxSession`; families add `_to_network` and decode.

    Args:
        model_path: the family's ``.onnx`` file.
        postprocess_config: score threshold, NMS IoU and max detections.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        threads: intra-op threads, 0 for ONNX Runtime's default.
        rect_input: feed the network a rectangle that follows the frame's aspect
            (short side rounded to a multiple of 32) instead of a square; None
            takes the family's default (see each family's docstring).
        providers: explicit ONNX Runtime providers overriding ``device``.
    """

    default_rect_input: ClassVar[bool] = True
    # Preprocess and decode keep no per-call state; ONNX Runtime's run is
    # documented as safe to call from several threads.
    thread_safe: ClassVar[bool] = True

    def __init__(
        self,
        model_path: str | Path,
        postprocess_config: PostprocessConfig | None = None,
        device: str = "auto",
        threads: int = 0,
        rect_input: bool | None = None,
        providers: list | None = None,
    ) -> None:
        self.postprocess_config = postprocess_config or PostprocessConfig()
        self.rect_input = (
            self.default_rect_input if rect_input is None else bool(rect_input)
        )
        self.session = OnnxSession(model_path, device, providers, threads)

    @property
    def providers(self) -> list[str]:
        """The ONNX Runtime providers actually in use, best first."""
        return self.session.providers

    def preprocess(self, image: np.ndarray, knobs: DetectorKnobs) -> Prepared:
        """Check the knobs and the ``(h, w, 3) uint8`` BGR frame, then make the blob.

        A zero-area frame gets no blob: there is nothing to run or find.
        """
        self.check_knobs(knobs)
        check_image(image)
        blob, scale_xy = (
            (None, (1.0, 1.0)) if is_empty(image) else self._to_network(image, knobs)
        )
        return Prepared(
            blob,
            knobs,
            (image.shape[0], image.shape[1]),
            scale_xy[0],
            {"scale_xy": scale_xy},
        )

    @abstractmethod
    def _to_network(
        self, image: np.ndarray, knobs: DetectorKnobs
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """The ``(1, 3, H, W) float32`` blob and the (x, y) frame-to-network scale."""

    def infer(self, prepared: Prepared) -> list[np.ndarray] | None:
        """The session's outputs, or None for a zero-area frame."""
        if prepared.inputs is None:
            return None
        return self.session.run(prepared.inputs)
