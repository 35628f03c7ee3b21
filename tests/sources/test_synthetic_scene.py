"""SyntheticScene: deterministic, exact ground truth, knobs that do what they say."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from approxrt.detections import box_iou
from approxrt.sources import SceneConfig, SyntheticScene, SyntheticSource
from approxrt.sources.cutouts import load_cutout


def scene_of(**knobs) -> SyntheticScene:
    return SyntheticScene(SceneConfig(**knobs))


def boxes_by_identity(scene: SyntheticScene) -> dict[int, list[tuple[int, np.ndarray]]]:
    tracks: dict[int, list[tuple[int, np.ndarray]]] = {}
    for index in range(len(scene)):
        truth = scene.ground_truth(index)
        for box, identity in zip(truth.xyxy, truth.tracker_id, strict=True):
            tracks.setdefault(int(identity), []).append((index, box))
    return tracks


def test_the_same_seed_gives_the_same_scene_and_another_seed_does_not():
    first, second = scene_of(frames=8, seed=3), scene_of(frames=8, seed=3)
    for index in (0, 7):
        assert np.array_equal(first.frame(index), second.frame(index))
        assert np.array_equal(
            first.ground_truth(index).xyxy, second.ground_truth(index).xyxy
        )
    other = scene_of(frames=8, seed=4)
    assert not np.array_equal(first.frame(0), other.frame(0))


@pytest.mark.parametrize("index", [0, 9, 19])
def test_ground_truth_boxes_are_exactly_where_objects_are_drawn(index):
    scene = scene_of(objects=6, frames=20, seed=2)
    image, truth = scene.frame(index), scene.ground_truth(index)
    drawn = np.any(image != scene.background, axis=2)
    inside_any = np.zeros_like(drawn)
    for x1, y1, x2, y2 in truth.xyxy.astype(int):
        inside_any[y1:y2, x1:x2] = True
    assert not np.any(drawn & ~inside_any), "pixels drawn outside every GT box"
    fully_visible = truth[truth.data["visibility"] >= 1.0]
    assert len(fully_visible) >= 2
    for x1, y1, x2, y2 in fully_visible.xyxy.astype(int):
        box = drawn[y1:y2, x1:x2]
        # Tight: every edge line of the box is photo, not background.
        for edge in (box[0], box[-1], box[:, 0], box[:, -1]):
            assert edge.mean() > 0.5
        assert box.mean() > 0.95


def test_a_fully_visible_object_shows_its_cutout_photo():
    scene = scene_of(objects=3, frames=1, seed=5)
    truth = scene.ground_truth(0)
    image = scene.frame(0)
    by_identity = {t.identity: t for t in scene.tracks}
    checked = 0
    for box, identity, seen in zip(
        truth.xyxy.astype(int), truth.tracker_id, truth.data["visibility"], strict=True
    ):
        if seen < 1.0:
            continue
        track = by_identity[int(identity)]
        x1, y1, x2, y2 = box
        photo = cv2.resize(
            load_cutout(track.cutout), (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA
        )
        photo = photo[:, ::-1] if track.flip else photo
        assert np.abs(image[y1:y2, x1:x2].astype(int) - photo).mean() < 1.0
        checked += 1
    assert checked >= 1


def test_visibility_is_below_one_exactly_when_a_later_object_covers_the_box():
    scene = scene_of(objects=10, frames=10, seed=1)
    covered_seen = 0
    for index in range(len(scene)):
        truth = scene.ground_truth(index)
        overlap = box_iou(truth.xyxy, truth.xyxy) > 0
        for k, identity in enumerate(truth.tracker_id):
            covered = np.any(overlap[k] & (truth.tracker_id > identity))
            assert (truth.data["visibility"][k] < 1.0) == covered
            covered_seen += covered
    assert covered_seen > 0


@pytest.mark.parametrize("objects", [1, 4, 9])
def test_the_object_count_is_what_was_asked_when_objects_bounce(objects):
    scene = scene_of(objects=objects, frames=40, seed=0, size_px=(40, 60))
    tracks = boxes_by_identity(scene)
    assert sorted(tracks) == list(range(1, objects + 1))
    assert all(len(boxes) == 40 for boxes in tracks.values())


def test_object_sizes_stay_inside_the_asked_range():
    small = scene_of(objects=6, frames=5, size_px=(50, 60), seed=1)
    large = scene_of(objects=6, frames=5, size_px=(150, 170), seed=1)
    for scene, (low, high) in ((small, (50, 60)), (large, (150, 170))):
        longer = [max(t.width, t.height) for t in scene.tracks]
        assert low <= min(longer) and max(longer) <= high
        truth = scene.ground_truth(0)
        whole = truth[truth.data["visibility"] >= 1.0]
        sides = np.maximum(
            whole.xyxy[:, 2] - whole.xyxy[:, 0], whole.xyxy[:, 3] - whole.xyxy[:, 1]
        )
        assert np.all((sides >= low) & (sides <= high))


@pytest.mark.parametrize("speed", [0.0, 3.0, 7.0])
def test_objects_move_at_the_asked_speed(speed):
    scene = scene_of(
        objects=4, frames=30, speed_px=(speed, speed), size_px=(40, 50), seed=6
    )
    steps = []
    for boxes in boxes_by_identity(scene).values():
        centres = np.array([(b[:2] + b[2:]) / 2 for _, b in boxes])
        steps.extend(np.linalg.norm(np.diff(centres, axis=0), axis=1))
    # Corners are rounded to whole pixels each frame; bounces shorten a few steps.
    assert np.median(steps) == pytest.approx(speed, abs=0.75)


def test_objects_enter_and_leave_through_the_borders_at_the_asked_rate():
    scene = scene_of(
        objects=0, enter_rate=0.2, frames=200, speed_px=(3, 5), size_px=(40, 60), seed=4
    )
    width, height = scene.config.width, scene.config.height
    tracks = boxes_by_identity(scene)
    # Poisson(0.2 per frame) over 199 frames: about 40 arrivals.
    assert 20 <= len(tracks) <= 60

    def on_border(box) -> bool:
        x1, y1, x2, y2 = box
        return x1 == 0 or y1 == 0 or x2 == width or y2 == height

    for boxes in tracks.values():
        first_index, first_box = boxes[0]
        assert first_index > 0 and on_border(first_box)
        last_index, last_box = boxes[-1]
        if last_index < len(scene) - 1:
            assert on_border(last_box)
    counts = [len(scene.ground_truth(i)) for i in range(len(scene))]
    assert counts[0] == 0 and max(counts) > 2
    assert len(set(counts)) > 3


def test_a_synthetic_source_yields_the_scene_frames_with_timestamps():
    scene = scene_of(frames=6, fps=12.0, seed=8)
    with SyntheticSource(scene) as source:
        assert (source.frame_count, source.fps) == (6, 12.0)
        frames = list(source)
    assert [f.index for f in frames] == list(range(6))
    assert np.allclose([f.timestamp_s for f in frames], np.arange(6) / 12.0)
    assert all(f.decode_ms > 0 for f in frames)
    assert np.array_equal(frames[5].image, scene.frame(5))


def test_a_crowd_that_stops_entering_rises_then_falls():
    spec = (
        "synthetic:objects=2,enter_rate=0.6,enter_until=130,speed=3-6,size=40-90,"
        "bounce=false,frames=300,seed=3"
    )
    scene = SyntheticScene.from_spec(spec)
    counts = [len(scene.ground_truth(i)) for i in range(300)]
    first_entry_after = [
        identity
        for identity, boxes in boxes_by_identity(scene).items()
        if boxes[0][0] >= 130
    ]
    assert first_entry_after == []  # nobody enters from enter_until on
    peak = int(np.argmax(counts))
    assert counts[peak] >= 30 and counts[0] <= 5 and counts[-1] <= counts[peak] / 4
    assert (
        SceneConfig.from_spec(spec).to_spec()
        == SceneConfig.from_spec(SceneConfig.from_spec(spec).to_spec()).to_spec()
    )
