"""The shared replay gives every branch exactly what a live run of it gives."""

import itertools

import numpy as np
import pytest

from approxrt.branch import Branch, DetectorKnobs
from approxrt.config import load_config
from approxrt.loop import FixedBranch, run_loop
from approxrt.pipeline import build_kernel
from approxrt.profiler import detection_cache
from approxrt.profiler.replay import (
    gof_level,
    replay_tracking,
    unshared_tracker_frames,
)
from approxrt.sources import open_source

FRAMES = 48
KNOBS = DetectorKnobs(224)
TRACKING = [("medianflow", 2), ("mosse", 1)]
INTERVALS = [2, 4, 8]


@pytest.fixture(scope="module")
def config(models_dir):
    settings = load_config(models_dir=str(models_dir), classes=["person"])
    return detection_cache.job_config(settings.replace(download=False).model_dump())


@pytest.fixture(scope="module")
def frames(pets_video):
    with open_source(str(pets_video)) as source:
        return list(itertools.islice(source, FRAMES))


@pytest.fixture(scope="module")
def cached(config, pets_video, tmp_path_factory):
    found = detection_cache.detect_task(
        str(pets_video), FRAMES, config.model_dump(), "yolox_nano", 224, None
    )
    path = tmp_path_factory.mktemp("cache") / "pets" / "yolox_nano_s224.parquet"
    detection_cache.write(path, found["table"], found["frames"], {})
    return detection_cache.read(path)


@pytest.fixture(scope="module")
def replay(config, frames, cached):
    return replay_tracking(
        frames, cached, config, ("yolox_nano", KNOBS), TRACKING, INTERVALS
    )


@pytest.mark.parametrize(
    "name",
    [
        "yolox_nano/s224/si2/medianflow/ds2",
        "yolox_nano/s224/si8/medianflow/ds2",
        "yolox_nano/s224/si4/mosse/ds1",
        "yolox_nano/s224/si8/mosse/ds1",
    ],
)
def test_replayed_boxes_equal_a_live_run_of_the_branch_frame_by_frame(
    name, config, frames, replay
):
    branch = Branch.parse(name)
    kernel = build_kernel(config, [branch])
    live = list(run_loop(frames, kernel, FixedBranch(branch)))
    key = (branch.tracker, branch.downsample, branch.sampling_interval)
    replayed = replay.outputs[key]
    assert replay.frame_index == list(range(FRAMES))
    assert sum(len(r.detections) for r in live if not r.detected) > 40
    for result, boxes in zip(live, replayed, strict=True):
        np.testing.assert_array_equal(boxes.xyxy, result.detections.xyxy)
        np.testing.assert_array_equal(boxes.confidence, result.detections.confidence)
        np.testing.assert_array_equal(boxes.class_id, result.detections.class_id)


def test_one_tracker_run_serves_every_interval_its_start_is_a_multiple_of(replay):
    # Per (tracker, downsample) over 48 frames: starts 0, 8, ..., 40 run 7 frames
    # (si8), 4, 12, ..., 44 run 3 (si4), 2, 6, ..., 46 run 1 (si2): 42 + 18 + 12.
    assert replay.tracker_frames == len(TRACKING) * 72
    # Alone, si2, si4 and si8 would track 24 + 36 + 42 frames.
    assert unshared_tracker_frames(FRAMES, INTERVALS) == 102
    assert [gof_level(p, INTERVALS) for p in range(5)] == [8, None, 2, None, 4]
    assert [gof_level(p, INTERVALS) for p in (10, 12, 16, 20)] == [2, 4, 8, 4]


def test_detection_frames_of_every_interval_are_the_cached_boxes(replay, cached):
    for (_, _, si), stream in replay.outputs.items():
        for position in range(0, FRAMES, si):
            assert stream[position] is cached[position]
