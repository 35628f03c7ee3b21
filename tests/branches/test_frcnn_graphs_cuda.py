"""Faster R-CNN with its frame-to-FPN part in CUDA graphs: detections equal the eager
ones on real PETS frames, and switching knobs replays one graph per setting.

CI has no GPU, so these skip there; they run wherever torch sees CUDA.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors import torchvision_frcnn
from approxrt.branches.detectors.base import PostprocessConfig
from approxrt.branches.detectors.torchvision_frcnn import (
    FrcnnMobileNetV3,
    FrcnnResNet50,
)

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA device (torch.cuda.is_available() is False)",
)

# Untrained heads score every class near 1/91; a low threshold keeps many boxes.
LOW = PostprocessConfig(score_threshold=0.001)


@pytest.fixture(scope="module")
def pets_frames(pets_video) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(pets_video))
    frames = []
    for index in range(0, 300, 100):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = capture.read()
        assert ok, f"could not read frame {index} of {pets_video}"
        frames.append(image)
    capture.release()
    return frames


def graphed_and_eager(family):
    # Seeded: some untrained draws score nothing above LOW on some frames.
    torch.manual_seed(0)
    graphed = family("random", LOW, device="cuda")
    eager = family("random", LOW, device="cuda", graphs=False)
    eager.model.load_state_dict(graphed.model.state_dict())
    return graphed, eager


@pytest.mark.parametrize("family", [FrcnnMobileNetV3, FrcnnResNet50])
def test_graphed_detections_equal_eager_ones_on_real_frames(family, pets_frames):
    graphed, eager = graphed_and_eager(family)
    assert graphed.graphs and not eager.graphs
    compared = 0
    for knobs in [DetectorKnobs(224, 100), DetectorKnobs(576, 1000)]:
        for image in pets_frames:
            found, expected = graphed.detect(image, knobs), eager.detect(image, knobs)
            compared += len(expected)
            assert len(found) == len(expected)
            np.testing.assert_allclose(found.xyxy, expected.xyxy, rtol=0, atol=1e-3)
            np.testing.assert_allclose(
                found.confidence, expected.confidence, rtol=0, atol=1e-5
            )
            np.testing.assert_array_equal(found.class_id, expected.class_id)
    assert compared > 0
    assert len(graphed.graph_settings) == 2


def test_switching_knobs_replays_one_graph_per_setting_over_the_same_weights(
    monkeypatch, pets_frames
):
    captured = []

    class CountingStem(torchvision_frcnn.GraphedStem):
        def __init__(self, *args) -> None:
            captured.append(1)
            super().__init__(*args)

    monkeypatch.setattr(torchvision_frcnn, "GraphedStem", CountingStem)
    detector = FrcnnMobileNetV3("random", LOW, device="cuda")
    weight = next(detector.model.parameters())
    pointer = weight.data_ptr()
    proposals_seen = []
    handle = detector.model.rpn.register_forward_hook(
        lambda module, args, output: proposals_seen.append(len(output[0][0]))
    )
    image = pets_frames[0]
    cropped = np.ascontiguousarray(image[:240, :320])
    settings = [
        (image, 224, 100),
        (image, 320, 20),
        (image, 224, 5),
        (cropped, 224, 50),
    ]
    try:
        for frame, size, proposals in settings * 2:
            prepared = detector.preprocess(frame, DetectorKnobs(size, proposals))
            detector.postprocess(detector.infer(prepared), prepared)
            assert min(prepared.inputs.image_sizes[0]) == size
            assert proposals_seen[-1] == proposals
    finally:
        handle.remove()
    frame_hw = image.shape[:2]
    assert detector.graph_settings == [
        (224, frame_hw),
        (320, frame_hw),
        (224, (240, 320)),
    ]
    assert len(captured) == 3
    assert next(detector.model.parameters()) is weight
    assert weight.data_ptr() == pointer


def test_the_route_says_whether_graphs_ran():
    graphed = FrcnnMobileNetV3("random", device="cuda:0")
    assert graphed.route_detail == "torch (cuda:0, graphs)"
    eager = FrcnnMobileNetV3("random", device="cuda:0", graphs=False)
    assert eager.route_detail == "torch (cuda:0)"
