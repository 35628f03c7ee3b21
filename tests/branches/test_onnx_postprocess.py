"""Shared pre/post-processing of the ONNX families: letterbox, blob, NMS tail."""

from __future__ import annotations

import numpy as np
import pytest

from approxrt.branches.detectors.base import PostprocessConfig
from approxrt.branches.detectors.postprocess import (
    finish,
    letterbox,
    letterbox_hw,
    rect_hw,
    to_blob,
)


@pytest.mark.parametrize(
    ("image_hw", "size", "rect", "network_hw", "resized_hw"),
    [
        ((360, 480), 416, True, (320, 416), (312, 416)),
        ((360, 480), 416, False, (416, 416), (312, 416)),
        ((360, 480), 224, True, (192, 224), (168, 224)),
        ((480, 360), 320, True, (320, 256), (320, 240)),
        ((1080, 1920), 640, True, (384, 640), (360, 640)),
        ((64, 64), 128, True, (128, 128), (128, 128)),
    ],
)
def test_letterbox_sizes_keep_the_aspect_and_pad_to_multiples_of_32(
    image_hw, size, rect, network_hw, resized_hw
):
    network, resized, scale = letterbox_hw(image_hw, size, rect)
    assert network == network_hw
    assert resized == resized_hw
    assert scale == pytest.approx(min(size / image_hw[0], size / image_hw[1]))


def test_letterbox_puts_the_frame_top_left_and_pads_with_grey():
    image = np.full((360, 480, 3), 7, np.uint8)
    canvas, scale = letterbox(image, 416, rect=True)
    assert canvas.shape == (320, 416, 3)
    assert scale == pytest.approx(416 / 480)
    assert np.all(canvas[:312] == 7)
    assert np.all(canvas[312:] == 114)


@pytest.mark.parametrize(
    ("image_hw", "size", "expected"),
    [
        ((360, 480), 416, (320, 416)),
        ((360, 480), 352, (256, 352)),
        ((480, 360), 416, (416, 320)),
        ((100, 1000), 320, (32, 320)),
    ],
)
def test_rect_resize_keeps_the_long_side_and_rounds_the_short_one(
    image_hw, size, expected
):
    assert rect_hw(image_hw, size) == expected


def test_blob_is_nchw_float32_normalised_per_channel():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    mean = np.asarray([103.53, 116.28, 123.675], np.float32)
    std = np.asarray([57.375, 57.12, 58.395], np.float32)
    blob = to_blob(image, mean, std)
    assert blob.shape == (1, 3, 64, 96)
    assert blob.dtype == np.float32
    assert blob.flags.c_contiguous
    expected = ((image.astype(np.float64) - mean) / std).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(blob, expected, atol=1e-5)
    np.testing.assert_array_equal(to_blob(image), image.transpose(2, 0, 1)[None])
    np.testing.assert_allclose(
        to_blob(image, scale=1 / 255), image.transpose(2, 0, 1)[None] / 255, atol=1e-6
    )


def _finish(
    xyxy, scores, class_ids, config=None, scale_xy=(1.0, 1.0), image_hw=(100, 200)
):
    return finish(
        np.asarray(xyxy, np.float32),
        np.asarray(scores, np.float32),
        np.asarray(class_ids, np.int64),
        config or PostprocessConfig(),
        scale_xy,
        image_hw,
    )


def test_nms_is_class_aware():
    box = [10, 10, 50, 50]
    near = [12, 12, 52, 52]
    same_class = _finish([box, near], [0.9, 0.8], [0, 0])
    other_class = _finish([box, near], [0.9, 0.8], [0, 2])
    assert len(same_class) == 1
    assert same_class.confidence[0] == pytest.approx(0.9)
    assert len(other_class) == 2


def test_threshold_and_max_detections_keep_the_best_boxes_first():
    xyxy = [[10 * i, 0, 10 * i + 8, 8] for i in range(6)]
    scores = [0.3, 0.9, 0.04, 0.6, 0.5, 0.7]
    found = _finish(
        xyxy, scores, [0] * 6, PostprocessConfig(score_threshold=0.05, max_detections=3)
    )
    np.testing.assert_allclose(found.confidence, [0.9, 0.7, 0.6])
    assert len(_finish(xyxy, [0.01] * 6, [0] * 6)) == 0


def test_boxes_are_mapped_to_frame_pixels_and_clipped():
    found = _finish(
        [[20, 10, 100, 60], [-10, -10, 30, 300]],
        [0.9, 0.8],
        [0, 1],
        scale_xy=(2.0, 0.5),
        image_hw=(100, 200),
    )
    np.testing.assert_allclose(found.xyxy, [[10, 20, 50, 100], [0, 0, 15, 100]])
    assert found.xyxy.dtype == np.float32
    assert found.class_id.dtype == np.int64


def test_boxes_wholly_outside_the_frame_are_dropped():
    found = _finish(
        [[250, 10, 300, 50], [10, 10, 50, 50]], [0.9, 0.8], [0, 0], image_hw=(100, 200)
    )
    assert len(found) == 1
    np.testing.assert_allclose(found.xyxy, [[10, 10, 50, 50]])


def test_opencv_nms_keeps_what_torchvision_batched_nms_keeps():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from approxrt.branches.detectors.postprocess import batched_nms

    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(1, 300))
        corner = rng.uniform(0, 400, (n, 2)).astype(np.float32)
        xyxy = np.concatenate([corner, corner + rng.uniform(1, 80, (n, 2))], axis=1)
        xyxy = xyxy.astype(np.float32)
        scores = rng.uniform(0, 1, n).astype(np.float32)
        class_ids = rng.integers(0, 4, n)
        expected = torchvision.ops.batched_nms(
            torch.from_numpy(xyxy),
            torch.from_numpy(scores),
            torch.from_numpy(class_ids),
            0.45,
        ).numpy()
        np.testing.assert_array_equal(
            batched_nms(xyxy, scores, class_ids, 0.45), expected
        )
