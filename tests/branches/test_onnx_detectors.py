"""The three ONNX Runtime detector families on real models and real PETS frames.

Bounds come from measurement on PETS09-S2L1 frames 0, 50, ..., 350 (45 scored
persons) at each family's default size, keeping persons scored at least 0.5:
recall at IoU 0.5 was 40/45 (YOLOX-Nano), 39/45 (NanoDet-m), 29/45 (FastestDet);
precision (boxes matching any labelled person, scored or not) 42/49, 40/43, 29/38.
The bounds sit about 0.1 (five boxes) below, for other ONNX Runtime builds and CPUs.
"""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors.base import PostprocessConfig
from approxrt.branches.detectors.fastestdet import FastestDetDetector
from approxrt.branches.detectors.nanodet import NanoDetDetector
from approxrt.branches.detectors.yolox import YoloxDetector
from approxrt.detections import box_iou

FAMILIES = {
    "yolox_nano": (YoloxDetector, "yolox_nano.onnx"),
    "fastestdet": (FastestDetDetector, "fastestdet.onnx"),
    "nanodet_m": (NanoDetDetector, "nanodet_m.onnx"),
}
# (recall, precision) lower bounds for persons scored >= 0.5; see the module docstring.
BOUNDS = {
    "yolox_nano": (0.78, 0.75),
    "fastestdet": (0.5, 0.6),
    "nanodet_m": (0.75, 0.8),
}
FRAME_INDICES = range(0, 400, 50)


@pytest.fixture(scope="module")
def detectors(models_dir):
    return {
        name: cls(models_dir / file, device="cpu")
        for name, (cls, file) in FAMILIES.items()
    }


@pytest.fixture(scope="module")
def pets_frames(pets_video, pets_gt):
    """``[(frame, scored (n, 4) xyxy, ignored (m, 4) xyxy)]`` for `FRAME_INDICES`."""
    capture = cv2.VideoCapture(str(pets_video))
    images = [capture.read()[1] for _ in range(max(FRAME_INDICES) + 1)]
    capture.release()
    rows = np.loadtxt(pets_gt, delimiter=",")
    frames = []
    for index in FRAME_INDICES:
        mine = rows[rows[:, 0] == index + 1]
        xyxy = np.concatenate([mine[:, 2:4], mine[:, 2:4] + mine[:, 4:6]], axis=1)
        frames.append((images[index], xyxy[mine[:, 6] != 0], xyxy[mine[:, 6] == 0]))
    return frames


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_finds_the_persons_of_real_pets_frames(
    name, detectors, pets_frames
):
    detector = detectors[name]
    knobs = DetectorKnobs(detector.default_input_size)
    found = total = true_boxes = kept = 0
    for image, scored, ignored in pets_frames:
        boxes = detector.detect(image, knobs)
        persons = boxes[(boxes.class_id == 0) & (boxes.confidence >= 0.5)]
        iou = box_iou(scored, persons.xyxy)
        found += int((iou.max(axis=1, initial=0) >= 0.5).sum())
        total += len(scored)
        any_gt = box_iou(persons.xyxy, np.concatenate([scored, ignored]))
        true_boxes += int((any_gt.max(axis=1, initial=0) >= 0.5).sum())
        kept += len(persons)
    min_recall, min_precision = BOUNDS[name]
    assert found / total >= min_recall, f"{name} recall {found}/{total}"
    assert true_boxes / kept >= min_precision, f"{name} precision {true_boxes}/{kept}"


@pytest.mark.parametrize("name", FAMILIES)
def test_detections_lie_inside_the_frame_best_first_and_respect_max_detections(
    name, detectors, pets_frames
):
    detector = detectors[name]
    image = pets_frames[1][0]
    detector.postprocess_config = PostprocessConfig(max_detections=3)
    try:
        found = detector.detect(image, DetectorKnobs(detector.default_input_size))
    finally:
        detector.postprocess_config = PostprocessConfig()
    assert 1 <= len(found) <= 3
    assert np.all(np.diff(found.confidence) <= 0)
    assert np.all(found.xyxy >= 0)
    assert np.all(found.xyxy[:, [0, 2]] <= image.shape[1])
    assert np.all(found.xyxy[:, [1, 3]] <= image.shape[0])


@pytest.mark.parametrize("name", FAMILIES)
def test_switching_input_size_never_builds_a_new_session(
    name, models_dir, pets_frames, monkeypatch
):
    created = []
    real_session = ort.InferenceSession

    def counting_session(*args, **kwargs):
        created.append(args)
        return real_session(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", counting_session)
    cls, file = FAMILIES[name]
    detector = cls(models_dir / file, device="cpu")
    session = detector.session.session
    shapes = set()
    image = pets_frames[0][0]
    for size in (cls.min_input_size, cls.default_input_size, cls.max_input_size):
        prepared = detector.preprocess(image, DetectorKnobs(size))
        raw = detector.infer(prepared)
        shapes.add(tuple(raw[0].shape))
        detector.postprocess(raw, prepared)
    assert len(created) == 1
    assert detector.session.session is session
    assert len(shapes) == 3


@pytest.fixture(scope="module")
def square_yolox(models_dir):
    return YoloxDetector(models_dir / "yolox_nano.onnx", device="cpu", rect_input=False)


def test_yolox_rect_input_pads_the_short_side_only_to_a_multiple_of_32(
    detectors, square_yolox
):
    image = np.zeros((360, 480, 3), np.uint8)
    rect = detectors["yolox_nano"].preprocess(image, DetectorKnobs(416))
    assert rect.inputs.shape == (1, 3, 320, 416)
    square = square_yolox.preprocess(image, DetectorKnobs(416))
    assert square.inputs.shape == (1, 3, 416, 416)


def test_yolox_rect_and_square_inputs_find_the_same_persons(
    detectors, square_yolox, pets_frames
):
    image = pets_frames[2][0]
    rect = detectors["yolox_nano"].detect(image, DetectorKnobs(416))
    square = square_yolox.detect(image, DetectorKnobs(416))
    rect, square = rect[rect.confidence >= 0.3], square[square.confidence >= 0.3]
    assert len(rect) == len(square) > 0
    assert np.all(box_iou(rect.xyxy, square.xyxy).max(axis=1) > 0.9)


@pytest.mark.parametrize(
    ("knobs", "reason"),
    [
        (DetectorKnobs(417), "multiple of 32"),
        (DetectorKnobs(32), "multiple of 32 in"),
        (DetectorKnobs(4096), "multiple of 32 in"),
        (DetectorKnobs(416, proposals=100), "one-stage detector"),
    ],
)
@pytest.mark.parametrize("name", FAMILIES)
def test_invalid_knobs_raise_with_the_reason(name, knobs, reason, detectors):
    detector = detectors[name]
    assert reason in detector.knob_problem(knobs)
    with pytest.raises(ValueError, match=reason):
        detector.preprocess(np.zeros((360, 480, 3), np.uint8), knobs)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("shape", [(0, 480, 3), (360, 0, 3), (0, 0, 3)])
def test_an_empty_image_region_gives_empty_detections_of_the_right_dtypes(
    name, shape, detectors
):
    detector = detectors[name]
    found = detector.detect(
        np.zeros(shape, np.uint8), DetectorKnobs(detector.default_input_size)
    )
    assert len(found) == 0
    assert found.xyxy.shape == (0, 4)
    assert found.xyxy.dtype == np.float32
    assert found.confidence.dtype == np.float32
    assert found.class_id.dtype == np.int64
    assert found.tracker_id.dtype == np.int64


@pytest.mark.parametrize("name", FAMILIES)
def test_a_blank_frame_shows_no_confident_person(name, detectors):
    detector = detectors[name]
    found = detector.detect(
        np.full((360, 480, 3), 114, np.uint8),
        DetectorKnobs(detector.default_input_size),
    )
    assert not np.any((found.class_id == 0) & (found.confidence >= 0.3))


@pytest.mark.parametrize(
    "image",
    [np.zeros((360, 480), np.uint8), np.zeros((360, 480, 3), np.float32), [[0, 0, 0]]],
)
def test_a_frame_that_is_not_hw3_uint8_is_rejected(image, detectors):
    with pytest.raises(ValueError, match="uint8"):
        detectors["yolox_nano"].preprocess(image, DetectorKnobs(416))


def test_providers_report_what_the_session_uses(detectors):
    assert detectors["fastestdet"].providers == ["CPUExecutionProvider"]
