"""The torch route of the ONNX families, run on the CPU (no graphs): the same
network as ONNX Runtime, the same boxes as the numpy pre/post-processing, and a
batched call equal to single calls. The CUDA-graph mode is in test_onnx_gpu.py."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("onnx2torch", reason="onnx2torch not installed (approxrt[gpu])")

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors import routes
from approxrt.branches.detectors.cuda_detector import CudaOnnxDetector
from approxrt.branches.detectors.fastestdet import FastestDetDetector
from approxrt.branches.detectors.nanodet import NanoDetDetector
from approxrt.branches.detectors.onnx_torch import (
    convert_onnx,
    max_abs_difference,
)
from approxrt.branches.detectors.yolox import YoloxDetector
from approxrt.detections import box_iou

FAMILIES = {
    "yolox_nano": (YoloxDetector, 416),
    "nanodet_m": (NanoDetDetector, 320),
    "fastestdet": (FastestDetDetector, 352),
}


@pytest.fixture(scope="module")
def frames(pets_video):
    capture = cv2.VideoCapture(str(pets_video))
    images = [capture.read()[1] for _ in range(21)]
    capture.release()
    return images[::20]


@pytest.mark.parametrize("name", FAMILIES)
def test_converted_network_matches_onnx_runtime(models_dir, name):
    path = models_dir / f"{name}.onnx"
    blob = np.random.default_rng(0).uniform(0, 255, (1, 3, 224, 288))
    blob = blob.astype(np.float32)
    difference, scale = max_abs_difference(convert_onnx(path), path, blob)
    # FP32 on both sides: rounding only (measured: at most 4e-4 on outputs ~4).
    assert difference < 1e-3 * max(scale, 1.0)


@pytest.mark.parametrize("name", FAMILIES)
def test_torch_chain_finds_the_boxes_onnx_runtime_finds(models_dir, frames, name):
    family, size = FAMILIES[name]
    path = models_dir / f"{name}.onnx"
    reference = family(path, device="cpu")
    torch_route = CudaOnnxDetector(family, path, device="cpu", mode="eager")
    knobs = DetectorKnobs(size)
    for frame in frames:
        expected = reference.detect(frame, knobs)
        found = torch_route.detect(frame, knobs)
        sure_expected = expected.xyxy[expected.confidence > 0.3]
        sure_found = found.xyxy[found.confidence > 0.3]
        assert len(sure_expected) == len(sure_found) > 0
        # GPU-side resize rounds like cv2 but not bit for bit: boxes agree closely.
        assert box_iou(sure_expected, sure_found).max(axis=1).min() > 0.95


def test_batched_call_gives_each_frame_its_single_call_boxes(models_dir, frames):
    detector = CudaOnnxDetector(
        YoloxDetector, models_dir / "yolox_nano.onnx", device="cpu", mode="eager"
    )
    knobs = DetectorKnobs(320)
    batched = detector.detect_batch(frames, knobs)
    for frame, together in zip(frames, batched, strict=True):
        alone = detector.detect(frame, knobs)
        assert len(alone) == len(together) > 0
        np.testing.assert_allclose(together.xyxy, alone.xyxy, atol=1e-2)


def test_fastestdet_refuses_a_batch_and_says_why(models_dir, frames):
    detector = CudaOnnxDetector(
        FastestDetDetector, models_dir / "fastestdet.onnx", device="cpu", mode="eager"
    )
    with pytest.raises(ValueError, match="one frame at a time"):
        detector.detect_batch(frames[:2], DetectorKnobs(352))
    assert len(detector.detect_batch(frames[:1], DetectorKnobs(352))) == 1


def test_bad_arguments_are_named(models_dir):
    path = models_dir / "yolox_nano.onnx"
    with pytest.raises(ValueError, match="mode 'fast'"):
        CudaOnnxDetector(YoloxDetector, path, device="cpu", mode="fast")
    with pytest.raises(ValueError, match="precision 'fp64'"):
        CudaOnnxDetector(YoloxDetector, path, device="cpu", precision="fp64")
    with pytest.raises(ValueError, match="without graphs"):
        CudaOnnxDetector(YoloxDetector, path, device="cpu", mode="graph")
    detector = CudaOnnxDetector(YoloxDetector, path, device="cpu", mode="eager")
    with pytest.raises(ValueError, match="input_size 100"):
        detector.detect(np.zeros((64, 64, 3), np.uint8), DetectorKnobs(100))
    with pytest.raises(ValueError, match="share one size"):
        detector.detect_batch(
            [np.zeros((64, 64, 3), np.uint8), np.zeros((32, 64, 3), np.uint8)],
            DetectorKnobs(224),
        )


def test_route_choice(monkeypatch):
    monkeypatch.setattr(routes, "_ort_has_gpu", lambda: False)
    monkeypatch.setattr(routes, "_nvidia_gpu_present", lambda: False)
    assert routes.onnx_route("cpu") == routes.ONNXRUNTIME
    assert routes.onnx_route("auto") == routes.ONNXRUNTIME
    assert routes.onnx_route("cuda:1") == routes.TORCH_CUDA
    monkeypatch.setattr(routes, "_ort_has_gpu", lambda: True)
    assert routes.onnx_route("cuda") == routes.ONNXRUNTIME
    assert routes.onnx_route("auto") == routes.ONNXRUNTIME
