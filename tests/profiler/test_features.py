"""Content features: light ones from boxes, heavy ones from pixels, and their cost."""

import itertools

import numpy as np
import pytest
from conftest import make_detections

from approxrt.config import load_config
from approxrt.profile_schema import LIGHT_FEATURES, TABLES
from approxrt.profiler import detection_cache
from approxrt.profiler.features import (
    SAMPLES_PER_SEGMENT,
    check_heavy_features,
    color_hist_vector,
    features_task,
    hog_vector,
    light_features,
)
from approxrt.sources import SyntheticScene, open_source

SCENES = {
    "crowd": "synthetic:objects=20,size=80-120,speed=0.5-1.5,seed=4,frames=40",
    "sparse": "synthetic:objects=3,size=80-120,speed=0.5-1.5,seed=4,frames=40",
    "fast": "synthetic:objects=3,size=80-120,speed=8-12,seed=4,frames=40",
}
SEGMENTS = [[0, 19], [20, 39]]


@pytest.fixture(scope="module")
def features(models_dir, tmp_path_factory):
    """Each scene's features, from the real detector's boxes as the reference."""
    config = load_config(models_dir=str(models_dir), classes=["person"])
    settings = config.replace(download=False).model_dump(mode="json")
    cache = tmp_path_factory.mktemp("cache")
    tables = {}
    for name, spec in SCENES.items():
        found = detection_cache.detect_task(
            spec, None, settings, "yolox_nano", 416, None
        )
        path = cache / f"{name}.parquet"
        detection_cache.write(path, found["table"], found["frames"], {})
        tables[name] = features_task(
            name,
            spec,
            None,
            str(path),
            SEGMENTS,
            ["hog", "color_hist"],
            0.3,
            0.3,
            kernels={"yolox_nano/s416": str(path)},
        )
    return tables


def test_light_features_count_size_and_motion_of_matched_boxes():
    frames = [
        make_detections([[0, 0, 10, 20], [100, 100, 130, 130]]),
        make_detections([[3, 0, 13, 20], [100, 104, 130, 134]]),
        # The second box turns into a car: a different object, not a continuation.
        make_detections([[6, 0, 16, 20], [100, 108, 130, 138]], class_id=[0, 2]),
    ]
    values = light_features(frames, iou_threshold=0.3)
    assert values["objects"] == pytest.approx(2.0)
    assert values["object_size_px"] == pytest.approx(np.sqrt((3 * 200 + 3 * 900) / 6))
    assert values["object_speed_px"] == pytest.approx((3 + 4 + 3) / 3)
    empty = light_features([make_detections([])] * 3, iou_threshold=0.3)
    assert empty == dict.fromkeys(LIGHT_FEATURES, 0.0)


def test_a_twenty_object_scene_has_twenty_objects_of_its_size_and_speed():
    scene = SyntheticScene.from_spec(SCENES["crowd"])
    truth = [scene.ground_truth(i) for i in range(len(scene))]
    values = light_features(truth, iou_threshold=0.3)
    assert values["objects"] == pytest.approx(20, abs=0.5)
    assert 80 <= values["object_size_px"] <= 120
    assert 0.5 <= values["object_speed_px"] <= 1.5 * 1.05


def test_detected_features_tell_crowded_sparse_and_fast_scenes_apart(features):
    light = {
        name: table["features"][list(LIGHT_FEATURES)].mean()
        for name, table in features.items()
    }
    # Measured (yolox_nano s416, 0.3 confidence): crowd 8.4 objects (the detector
    # merges or misses overlapping people), sparse 2.4, fast 2.7; speed 1.6 px per
    # frame for sparse, 10.7 for fast; sizes 104-119 px for 80-120 px objects.
    assert light["crowd"]["objects"] > 2 * light["sparse"]["objects"]
    assert 6 <= light["crowd"]["objects"] <= 20
    assert 1.5 <= light["sparse"]["objects"] <= 3.2
    assert light["fast"]["object_speed_px"] > 4 * light["sparse"]["object_speed_px"]
    assert 6 <= light["fast"]["object_speed_px"] <= 13
    for values in light.values():
        assert 70 <= values["object_size_px"] <= 150


def test_the_features_table_has_the_schema_columns_then_the_heavy_vectors(features):
    table = features["crowd"]["features"]
    heavy = [f"hog_{i}" for i in range(36)] + [f"color_hist_{i}" for i in range(36)]
    assert list(table.columns) == [*TABLES["accuracy/features"], *heavy]
    assert table.segment.tolist() == [0, 1]
    assert set(table.frame_w) == {640} and set(table.frame_h) == {480}
    assert np.isfinite(table[heavy].to_numpy()).all()
    # Different scenes (backgrounds, people) give different vectors.
    other = features["fast"]["features"]
    assert not np.allclose(table[heavy].to_numpy(), other[heavy].to_numpy())


def test_every_feature_cost_is_measured_per_frame(features):
    cost = features["crowd"]["cost"]
    assert tuple(cost.columns) == TABLES["accuracy/feature_cost"]
    assert set(cost.feature) == {"hog", "color_hist", *LIGHT_FEATURES}
    assert (cost.ms > 0).all() and (cost.ms < 1000).all()
    assert set(zip(cost.frame_w, cost.frame_h, strict=True)) == {(640, 480)}
    timed = cost.feature.value_counts()
    assert timed["hog"] == SAMPLES_PER_SEGMENT * len(SEGMENTS)
    assert timed["objects"] == len(SEGMENTS)


def test_heavy_vectors_describe_gradients_and_colours(pets_video):
    with open_source(str(pets_video)) as source:
        pets = next(itertools.islice(source, 1)).image
    grey = np.full_like(pets, 128)
    assert hog_vector(pets).shape == (36,) and hog_vector(pets).dtype == np.float32
    assert np.abs(hog_vector(grey)).sum() == 0, "no gradient, no orientation"
    assert hog_vector(pets).std() > 0.01
    colours = color_hist_vector(pets)
    assert colours.shape == (36,)
    assert colours[:32].sum() == pytest.approx(1) and colours[32:].sum() == (
        pytest.approx(1)
    )
    # A grey frame has no saturation: all of it in the lowest-saturation bins.
    assert color_hist_vector(grey)[:32].reshape(8, 4)[:, 0].sum() == pytest.approx(1)


def test_an_unknown_heavy_feature_is_refused_with_the_valid_names():
    assert check_heavy_features(["hog"]) == ["hog"]
    with pytest.raises(ValueError, match="unknown \\['cnn'\\]; valid: hog, color_hist"):
        check_heavy_features(["cnn"])


def test_hog_without_opencv_hog_is_refused_and_colour_still_works(monkeypatch):
    # OpenCV 5 without contrib (the GPU machine's) has no HOGDescriptor.
    from approxrt.profiler import features

    monkeypatch.setattr(features, "HOG_AVAILABLE", False)
    with pytest.raises(ValueError, match=r"'hog' needs cv2\.HOGDescriptor"):
        check_heavy_features(["color_hist", "hog"])
    assert check_heavy_features(["color_hist"]) == ["color_hist"]


def test_kernel_features_are_each_kernels_own_view_of_the_segments(features):
    """The reference's cache read as a kernel gives the reference's features;
    the table holds one row per (kernel, segment)."""
    table = features["crowd"]["kernel_features"]
    assert tuple(table.columns) == TABLES["accuracy/kernel_features"]
    assert table.kernel.tolist() == ["yolox_nano/s416"] * len(SEGMENTS)
    reference = features["crowd"]["features"]
    assert table.objects.tolist() == reference.objects.tolist()
    assert table.object_size_px.tolist() == reference.object_size_px.tolist()
    assert (table.object_size_px > 0).all()
