"""The detection cache: exact round trips, and never a stale entry reused."""

import itertools
import json

import numpy as np
import pytest
from conftest import make_detections

from approxrt.branch import Branch, DetectorKnobs
from approxrt.branches.space import BranchSpace
from approxrt.config import load_config
from approxrt.pipeline import build_kernel
from approxrt.profiler import detection_cache
from approxrt.profiler.accuracy import profile_accuracy
from approxrt.profiler.videos import VideoSpec
from approxrt.sources import open_source

KNOBS = DetectorKnobs(224)
FRAMES = 24


@pytest.fixture(scope="module")
def config(models_dir):
    return load_config(
        models_dir=str(models_dir),
        classes=["person"],
        download=False,
        detectors=["yolox_nano"],
        input_sizes={"yolox_nano": [224]},
        sampling_intervals=[1],
    )


@pytest.fixture(scope="module")
def detected(config, pets_video):
    return detection_cache.detect_task(
        str(pets_video),
        FRAMES,
        config.model_dump(mode="json"),
        "yolox_nano",
        KNOBS.input_size,
        None,
    )


def test_cached_detections_reload_exactly_as_the_runtime_kernel_found_them(
    config, detected, pets_video, tmp_path
):
    path = detection_cache.cache_path(tmp_path, "pets", "yolox_nano", KNOBS)
    detection_cache.write(path, detected["table"], detected["frames"], {"made": 1})
    reloaded = detection_cache.read(path)

    branch = Branch("yolox_nano", KNOBS.input_size)
    kernel = build_kernel(detection_cache.job_config(config.model_dump()), [branch])
    with open_source(str(pets_video)) as frames:
        live = [
            kernel.run_detector(frame, branch)[0]
            for frame in itertools.islice(frames, FRAMES)
        ]
    assert path == tmp_path / "pets" / "yolox_nano_s224.parquet"
    assert path.with_suffix(".json").is_file()
    assert len(reloaded) == FRAMES
    assert sum(len(d) for d in reloaded) > 4 * FRAMES, "PETS shows 4+ people"
    for found, cached in zip(live, reloaded, strict=True):
        np.testing.assert_array_equal(cached.xyxy, found.xyxy)
        np.testing.assert_array_equal(cached.confidence, found.confidence)
        np.testing.assert_array_equal(cached.class_id, found.class_id)
        assert cached.xyxy.dtype == np.float32


def test_frames_without_boxes_keep_their_place_including_trailing_ones(tmp_path):
    frames = [
        make_detections([[1.5, 2.25, 30.125, 40.0]], confidence=[0.7]),
        make_detections([]),
        make_detections([[0, 0, 5, 5], [10, 10, 20, 30]], class_id=[0, 41]),
        make_detections([]),
        make_detections([]),
    ]
    path = tmp_path / "v" / "x.parquet"
    table = detection_cache.detections_table(list(enumerate(frames)))
    detection_cache.write(path, table, len(frames), {})
    reloaded = detection_cache.read(path)
    assert [len(d) for d in reloaded] == [1, 0, 2, 0, 0]
    for original, cached in zip(frames, reloaded, strict=True):
        np.testing.assert_array_equal(cached.xyxy, original.xyxy)
        np.testing.assert_array_equal(cached.confidence, original.confidence)
        np.testing.assert_array_equal(cached.class_id, original.class_id)


def test_an_entry_is_fresh_only_for_the_same_model_settings_and_video(
    config, pets_video
):
    identity = detection_cache.video_identity(str(pets_video), FRAMES)
    made = detection_cache.made_with(config, "yolox_nano", KNOBS, identity)
    assert made["model_sha256"].startswith("e8af074932d4ed7e")
    same = detection_cache.made_with(config, "yolox_nano", KNOBS, identity)
    assert made == same
    others = [
        detection_cache.made_with(
            config.replace(score_threshold=0.2), "yolox_nano", KNOBS, identity
        ),
        detection_cache.made_with(config, "yolox_nano", DetectorKnobs(320), identity),
        detection_cache.made_with(
            config,
            "yolox_nano",
            KNOBS,
            detection_cache.video_identity(str(pets_video), FRAMES + 1),
        ),
        detection_cache.made_with(
            config.replace(classes=["person", "car"]), "yolox_nano", KNOBS, identity
        ),
    ]
    assert all(other != made for other in others)


def test_a_stale_entry_is_recomputed_and_a_fresh_one_reused(
    config, pets_video, tmp_path
):
    space = BranchSpace.from_config(config)
    video = VideoSpec("pets", str(pets_video), max_frames=FRAMES)
    profile_accuracy(config, space, [video], tmp_path, workers=1, progress=False)
    path = detection_cache.cache_path(tmp_path, "pets", "yolox_nano", KNOBS)
    meta = path.with_suffix(".json")
    good = detection_cache.read(path)

    # Reused: a fresh entry is not rewritten.
    written_ns = path.stat().st_mtime_ns
    profile_accuracy(config, space, [video], tmp_path, workers=1, progress=False)
    assert path.stat().st_mtime_ns == written_ns

    # Stale: the same boxes' record says another model made them; and the boxes
    # themselves are wrong. Both must be recomputed from the video.
    record = json.loads(meta.read_text())
    record["made_with"]["model_sha256"] = "0" * 64
    meta.write_text(json.dumps(record))
    detection_cache.write(
        path,
        detection_cache.detections_table([]),
        FRAMES,
        record["made_with"],
    )
    tables = profile_accuracy(
        config, space, [video], tmp_path, workers=1, progress=False
    )
    assert json.loads(meta.read_text())["made_with"]["model_sha256"].startswith(
        "e8af0749"
    )
    again = detection_cache.read(path)
    assert [len(d) for d in again] == [len(d) for d in good]
    assert (tables["accuracy/segments"]["ap50"] > 0.5).all()


def test_reading_a_missing_entry_names_it(tmp_path):
    with pytest.raises(ValueError, match="no such entry"):
        detection_cache.read(tmp_path / "nothing.parquet")
