"""Faster R-CNN's graphed stem on the CPU: its input equals torchvision's transform,
graphs stay off on the CPU, and ``cuda_graphs`` reaches the detector."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from approxrt import pipeline
from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors.frcnn_graph import network_input, normalisation
from approxrt.branches.detectors.torchvision_frcnn import FrcnnMobileNetV3
from approxrt.config import load_config


@pytest.fixture(scope="module")
def mbv3_cpu() -> FrcnnMobileNetV3:
    torch.manual_seed(0)
    return FrcnnMobileNetV3("random", device="cpu")


@pytest.fixture(scope="module")
def pets_image(pets_video) -> np.ndarray:
    capture = cv2.VideoCapture(str(pets_video))
    ok, image = capture.read()
    capture.release()
    assert ok, f"could not read the first frame of {pets_video}"
    return image


# The 120x480 crop is 4:1: its longer side hits the 2x cap, not its shorter side.
@pytest.mark.parametrize(
    ("size", "crop_hw", "resized_shorter"),
    [(224, None, 224), (576, None, 576), (320, (120, 480), 160)],
)
def test_graph_input_equals_torchvisions_transform_bit_for_bit(
    mbv3_cpu, pets_image, size, crop_hw, resized_shorter
):
    image = pets_image if crop_hw is None else pets_image[: crop_hw[0], : crop_hw[1]]
    transform = mbv3_cpu.model.transform
    transform.min_size = (size,)
    transform.max_size = 2 * size
    frame = torch.from_numpy(np.ascontiguousarray(image))
    rgb = frame.permute(2, 0, 1).flip(0).float().div_(255.0)
    with torch.inference_mode():
        expected, _ = transform([rgb])
        mean, std = normalisation(transform, torch.device("cpu"))
        padded, resized_hw = network_input(transform, mean, std, frame)
    assert resized_hw == tuple(expected.image_sizes[0])
    assert min(resized_hw) == resized_shorter
    torch.testing.assert_close(padded, expected.tensors, rtol=0, atol=0)


def test_on_the_cpu_graphs_stay_off_and_nothing_is_captured(pets_image):
    detector = FrcnnMobileNetV3("random", device="cpu", graphs=True)
    prepared = detector.preprocess(pets_image, DetectorKnobs(224, 10))
    assert detector.graphs is False
    assert "stem" not in prepared.extra
    detector.postprocess(detector.infer(prepared), prepared)
    assert detector.graph_settings == []
    assert detector.route_detail == "torch (cpu)"


@pytest.mark.parametrize("cuda_graphs", [True, False])
def test_the_cuda_graphs_key_reaches_faster_rcnn(monkeypatch, cuda_graphs):
    given = {}

    class Recording(FrcnnMobileNetV3):
        def __init__(self, **kwargs):
            given.update(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(pipeline, "detector_class", lambda name: Recording)
    config = load_config(device="cpu", random_weights=True, cuda_graphs=cuda_graphs)
    pipeline.build_detector("frcnn_mbv3", config)
    assert given["graphs"] is cuda_graphs
    assert load_config().cuda_graphs is True
