"""Faster R-CNN on a CUDA device: knobs switch there and it computes what the CPU does.

CI has no GPU, so these skip there; they run wherever torch sees CUDA.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors.base import PostprocessConfig
from approxrt.branches.detectors.torchvision_frcnn import FrcnnMobileNetV3

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA device (torch.cuda.is_available() is False)",
)

# Untrained heads score every class near 1/91; a low threshold keeps boxes.
LOW = PostprocessConfig(score_threshold=0.001)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (360, 480, 3), dtype=np.uint8)


@pytest.fixture
def exact_float32():
    """TF32 convolutions on Ampere and later would differ from the CPU by ~1e-3."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_auto_device_runs_every_knob_setting_on_cuda(frame):
    detector = FrcnnMobileNetV3("random", LOW, device="auto")
    assert detector.device.type == "cuda"
    assert all(p.is_cuda for p in detector.model.parameters())
    for size, proposals in [(224, 1), (576, 100), (320, 20)]:
        prepared = detector.preprocess(frame, DetectorKnobs(size, proposals))
        assert prepared.inputs.tensors.is_cuda
        assert min(prepared.inputs.image_sizes[0]) == size
        raw = detector.infer(prepared)
        assert len(raw["proposals"][0]) == proposals
        detections = detector.postprocess(raw, prepared)
        assert isinstance(detections.xyxy, np.ndarray) and len(detections) > 0
        # Boxes clipped at the network input's border come back to the frame's
        # through a float32 ratio: up to a float rounding past it.
        assert (detections.xyxy[:, 2] <= frame.shape[1] + 1e-3).all()


def test_cuda_computes_the_same_network_as_the_cpu(frame, exact_float32):
    torch.manual_seed(0)
    cpu = FrcnnMobileNetV3("random", LOW, device="cpu")
    cuda = FrcnnMobileNetV3("random", LOW, device="cuda")
    cuda.model.load_state_dict(cpu.model.state_dict())
    knobs = DetectorKnobs(320, 100)
    on_cpu, on_cuda = cpu.preprocess(frame, knobs), cuda.preprocess(frame, knobs)
    # With graphs (the default on CUDA) the replay in infer fills the input.
    cuda.infer(on_cuda)
    torch.testing.assert_close(
        on_cuda.inputs.tensors.cpu(), on_cpu.inputs.tensors, rtol=0, atol=1e-5
    )
    with torch.inference_mode():
        features_cpu = cpu.model.backbone(on_cpu.inputs.tensors)
        features_cuda = cuda.model.backbone(on_cuda.inputs.tensors)
    assert features_cpu.keys() == features_cuda.keys()
    for level, expected in features_cpu.items():
        torch.testing.assert_close(
            features_cuda[level].cpu(), expected, rtol=1e-3, atol=1e-4
        )
