"""Torchvision Faster R-CNN: knobs switched on one model, staged = forward, weights."""

from __future__ import annotations

import hashlib
from contextlib import nullcontext as does_not_raise

import cv2
import numpy as np
import pytest
import torch
from torchvision.models.detection import faster_rcnn

from approxrt.branch import DetectorKnobs
from approxrt.branches import models
from approxrt.branches.detectors.base import PostprocessConfig
from approxrt.branches.detectors.torchvision_frcnn import (
    _CONTIGUOUS,
    FrcnnMobileNetV3,
    FrcnnResNet50,
    torch_device,
)
from approxrt.branches.models import ModelNotFoundError, ModelSpec

# Untrained heads score every class near 1/91; a low threshold keeps boxes to compare.
LOW = PostprocessConfig(score_threshold=0.001)


@pytest.fixture(scope="module")
def mbv3() -> FrcnnMobileNetV3:
    torch.manual_seed(0)
    return FrcnnMobileNetV3("random", LOW, device="cpu")


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (360, 480, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def pets_frame(pets_video) -> np.ndarray:
    capture = cv2.VideoCapture(str(pets_video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, image = capture.read()
    capture.release()
    assert ok, f"could not read frame 100 of {pets_video}"
    return image


@pytest.fixture
def no_weights_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv("APPROXRT_MODELS", raising=False)
    monkeypatch.setenv("APPROXRT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def forward_detections(detector, image: np.ndarray):
    """The model's own forward on the same frame, mapped like `postprocess` maps it."""
    rgb = torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1).float() / 255
    with torch.inference_mode():
        out = detector.model([rgb])[0]
    class_id = _CONTIGUOUS[out["labels"].numpy()]
    keep = class_id >= 0
    return out["boxes"].numpy()[keep], out["scores"].numpy()[keep], class_id[keep]


def rpn_counter(detector):
    counts: list[int] = []
    handle = detector.model.rpn.register_forward_hook(
        lambda module, args, output: counts.append(len(output[0][0]))
    )
    return counts, handle


def test_random_weights_are_used_only_when_asked_and_are_marked_random(mbv3):
    assert mbv3.weights == "random"
    assert mbv3.weights_path is None
    assert mbv3.two_stage and mbv3.name == "frcnn_mbv3"


def test_switching_size_and_proposals_reuses_one_model_and_changes_the_work(
    monkeypatch, frame
):
    built = []
    original = faster_rcnn.FasterRCNN.__init__

    def counting_init(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(faster_rcnn.FasterRCNN, "__init__", counting_init)
    detector = FrcnnMobileNetV3("random", device="cpu")
    model, first_weight = detector.model, next(detector.model.parameters())
    counts, handle = rpn_counter(detector)
    try:
        for size, proposals in [(224, 1), (320, 20), (288, 5), (224, 100)]:
            knobs = DetectorKnobs(size, proposals)
            prepared = detector.preprocess(frame, knobs)
            detector.postprocess(detector.infer(prepared), prepared)
            assert min(prepared.inputs.image_sizes[0]) == size
            assert prepared.inputs.tensors.shape[-2] % 32 == 0
            assert counts[-1] == proposals
    finally:
        handle.remove()
    assert built == [1]
    assert detector.model is model
    assert next(detector.model.parameters()) is first_weight


@pytest.mark.parametrize("knobs", [DetectorKnobs(224, 5), DetectorKnobs(320, 50)])
def test_staged_detect_equals_the_models_own_forward_on_a_real_frame(
    mbv3, pets_frame, knobs
):
    detections = mbv3.detect(pets_frame, knobs)
    boxes, scores, class_id = forward_detections(mbv3, pets_frame)
    assert len(detections) > 0
    np.testing.assert_array_equal(detections.xyxy, boxes)
    np.testing.assert_array_equal(detections.confidence, scores)
    np.testing.assert_array_equal(detections.class_id, class_id)
    assert detections.class_id.min() >= 0 and detections.class_id.max() < 80
    height, width = pets_frame.shape[:2]
    assert (detections.xyxy[:, 2] <= width).all()
    assert (detections.xyxy[:, 3] <= height).all()


def test_postprocess_applies_the_score_threshold_and_caps_detections(mbv3, frame):
    knobs = DetectorKnobs(224, 50)
    threshold = float(np.median(mbv3.detect(frame, knobs).confidence))
    config = PostprocessConfig(score_threshold=threshold, max_detections=7)
    torch.manual_seed(0)  # the fixture's weights
    detector = FrcnnMobileNetV3("random", config, device="cpu")
    detections = detector.detect(frame, knobs)
    assert 0 < len(detections) <= 7
    assert (detections.confidence > threshold).all()
    assert (np.diff(detections.confidence) <= 0).all()


def test_a_zero_area_frame_gives_no_detections(mbv3):
    empty = np.zeros((0, 480, 3), np.uint8)
    assert len(mbv3.detect(empty, DetectorKnobs(224, 5))) == 0


def test_weights_loaded_from_a_saved_state_dict_equal_the_saved_parameters(
    mbv3, tmp_path
):
    path = tmp_path / "mbv3.pth"
    torch.save(mbv3.model.state_dict(), path)
    loaded = FrcnnMobileNetV3(path, device="cpu")
    assert loaded.weights == "pretrained" and loaded.weights_path == path
    saved = mbv3.model.state_dict()
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_pretrained_weights_are_found_through_the_model_registry(
    mbv3, monkeypatch, tmp_path, no_weights_anywhere
):
    path = tmp_path / "frcnn.pth"
    torch.save({"model": mbv3.model.state_dict()}, path)  # a training checkpoint
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    spec = ModelSpec("frcnn_mbv3", "frcnn.pth", "http://127.0.0.1:9/x", digest, "test")
    monkeypatch.setitem(models.MODELS, "frcnn_mbv3", spec)
    loaded = FrcnnMobileNetV3(models_dir=tmp_path, download=False, device="cpu")
    assert loaded.weights == "pretrained" and loaded.weights_path == path
    head = "roi_heads.box_predictor.cls_score.weight"
    assert torch.equal(loaded.model.state_dict()[head], mbv3.model.state_dict()[head])


def test_missing_unreadable_truncated_or_foreign_weights_files_are_clear_errors(
    mbv3, tmp_path
):
    good = tmp_path / "good.pth"
    torch.save(mbv3.model.state_dict(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    foreign = tmp_path / "foreign.pth"
    torch.save({"backbone.body.extra.weight": torch.zeros(3)}, foreign)
    cases = [
        (tmp_path / "absent.pth", "does not exist"),
        (truncated, "not a readable"),
        (garbage, "not a readable"),
        (foreign, "does not fit"),
    ]
    for path, reason in cases:
        with pytest.raises(ValueError, match=reason) as error:
            FrcnnMobileNetV3(path, device="cpu")
        assert str(path) in str(error.value)


def test_no_weights_and_random_not_asked_is_an_error_saying_how_to_get_them(
    no_weights_anywhere,
):
    with pytest.raises(ModelNotFoundError) as error:
        FrcnnMobileNetV3(download=False, device="cpu")
    message = str(error.value)
    filename = models.MODELS["frcnn_mbv3"].filename
    for hint in (filename, "APPROXRT_MODELS", "weights='random'", "download=True"):
        assert hint in message


@pytest.mark.parametrize(
    ("knobs", "expectation"),
    [
        (DetectorKnobs(224, 1), does_not_raise()),
        (DetectorKnobs(576, 100), does_not_raise()),
        (DetectorKnobs(800, 1000), does_not_raise()),
        (DetectorKnobs(224, None), pytest.raises(ValueError, match="proposals knob")),
        (DetectorKnobs(230, 5), pytest.raises(ValueError, match="multiple of 32")),
        (DetectorKnobs(96, 5), pytest.raises(ValueError, match="multiple of 32")),
        (DetectorKnobs(224, 0), pytest.raises(ValueError, match="proposals 0")),
        (DetectorKnobs(224, 1001), pytest.raises(ValueError, match="proposals 1001")),
    ],
)
def test_knob_problem_admits_approxdet_values_and_rejects_the_rest(
    mbv3, frame, knobs, expectation
):
    with expectation:
        mbv3.check_knobs(knobs)
    problem = FrcnnMobileNetV3.knob_problem(knobs)
    assert (problem is None) == isinstance(expectation, does_not_raise)


def test_every_approxdet_knob_value_is_admitted():
    for size in (224, 320, 448, 576):
        for proposals in (1, 3, 5, 10, 20, 50, 100):
            assert FrcnnResNet50.knob_problem(DetectorKnobs(size, proposals)) is None


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cpu:0", "", 0])
def test_device_strings_outside_auto_cpu_cuda_are_rejected(device):
    with pytest.raises(ValueError, match="device"):
        torch_device(device)


def test_auto_device_follows_torch_and_absent_cuda_is_refused():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert torch_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA device"):
            torch_device("cuda:0")


def test_resnet50_family_keeps_proposals_and_matches_its_forward(frame):
    torch.manual_seed(0)
    detector = FrcnnResNet50("random", LOW, device="cpu")
    counts, handle = rpn_counter(detector)
    try:
        detections = detector.detect(frame, DetectorKnobs(224, 3))
    finally:
        handle.remove()
    assert counts == [3]
    boxes, scores, class_id = forward_detections(detector, frame)
    assert len(detections) > 0
    np.testing.assert_array_equal(detections.xyxy, boxes)
    np.testing.assert_array_equal(detections.class_id, class_id)
    np.testing.assert_array_equal(detections.confidence, scores)
