"""The synthetic: spec, and a scene written as video + MOT gt + COCO gt."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest
from pycocotools.coco import COCO

from approxrt.classes import COCO_CATEGORY_IDS, COCO_CLASSES
from approxrt.sources import SceneConfig, SyntheticScene, VideoFileSource


def test_a_spec_sets_every_knob_and_round_trips():
    config = SceneConfig.from_spec(
        "synthetic:objects=7,size=30-90,speed=0.5-2.5,frames=12,width=320,height=200,"
        "seed=9,enter_rate=0.05,bounce=yes,fps=25,classes=person+cat,"
        "background=gravel,noise=2"
    )
    assert config == SceneConfig(
        objects=7,
        size_px=(30, 90),
        speed_px=(0.5, 2.5),
        frames=12,
        width=320,
        height=200,
        seed=9,
        enter_rate=0.05,
        bounce=True,
        fps=25.0,
        classes=("person", "cat"),
        background="gravel",
        noise=2.0,
    )
    assert SceneConfig.from_spec(config.to_spec()) == config


def test_a_single_value_is_a_range_of_one():
    assert SceneConfig.from_spec("synthetic:size=64,speed=2").size_px == (64, 64)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("synthetic:colour=red", "unknown key 'colour'.*valid keys: objects, size"),
        ("synthetic:size=90-30", "size: expected"),
        ("synthetic:size=big", "size='big' is not a valid range"),
        ("synthetic:objects=-1", "objects: expected an integer >= 0"),
        ("synthetic:classes=dog", "no cut-out photo of 'dog'; available: cat, cup"),
        ("synthetic:background=sky", "background: expected one of grass"),
        ("synthetic:bounce=maybe", "bounce='maybe'"),
        ("synthetic:frames", "needs a value"),
        ("synthetic:size=10-600", r"size: expected \(min, max\)"),
    ],
)
def test_a_bad_spec_says_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        SceneConfig.from_spec(spec)


def test_bouncing_defaults_to_on_only_without_arrivals():
    assert SceneConfig().bounces
    assert not SceneConfig(enter_rate=0.1).bounces
    assert SceneConfig(enter_rate=0.1, bounce=True).bounces


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    scene = SyntheticScene(
        SceneConfig(
            objects=8, frames=15, width=320, height=240, size_px=(60, 100), seed=11
        )
    )
    return scene, scene.write(tmp_path_factory.mktemp("scene"))


def test_the_written_video_reads_back_as_the_rendered_frames(written):
    scene, paths = written
    with VideoFileSource(paths["video"]) as source:
        assert (source.frame_count, source.width, source.height) == (15, 320, 240)
        frames = list(source)
    assert len(frames) == 15
    for index in (0, 14):
        error = np.abs(frames[index].image.astype(int) - scene.frame(index)).mean()
        assert error < 12  # mp4v is lossy, not different


def test_an_mjpg_video_can_be_written_too(written, tmp_path):
    scene, _ = written
    path = scene.write_video(tmp_path / "scene.avi", codec="MJPG")
    with VideoFileSource(path) as source:
        assert len(list(source)) == 15
    with pytest.raises(ValueError, match="codec"):
        scene.write_video(tmp_path / "x.mkv", codec="H265")


def test_mot_gt_has_one_row_per_box_with_hidden_boxes_flagged_zero(written):
    scene, paths = written
    rows = np.loadtxt(paths["mot_gt"], delimiter=",", ndmin=2)
    truths = [scene.ground_truth(i) for i in range(15)]
    assert len(rows) == sum(len(t) for t in truths)
    assert set(rows[:, 0].astype(int)) <= set(range(1, 16))
    first = rows[rows[:, 0] == 1]
    expected = truths[0].xyxy.copy()
    expected[:, 2:] -= expected[:, :2]
    assert np.allclose(first[:, 2:6], expected)
    assert np.array_equal(first[:, 1], truths[0].tracker_id)
    visibility = np.concatenate([t.data["visibility"] for t in truths])
    assert np.array_equal(rows[:, 6] == 0, visibility < 0.5)
    assert (rows[:, 6] == 0).any(), "this crowded scene should hide some boxes"
    assert np.all(rows[:, 7:] == -1)


def test_coco_gt_loads_in_pycocotools_with_classes_and_ignore_regions(written):
    scene, paths = written
    with redirect_stdout(io.StringIO()):
        coco = COCO(str(paths["coco_gt"]))
    assert sorted(coco.getImgIds()) == list(range(1, 16))
    person = COCO_CATEGORY_IDS[COCO_CLASSES.index("person")]
    assert coco.loadCats(person)[0]["name"] == "person"
    annotations = coco.loadAnns(coco.getAnnIds())
    assert {a["category_id"] for a in annotations} == {person}
    assert len(annotations) == sum(len(scene.ground_truth(i)) for i in range(15))
    hidden = [a for a in annotations if a["visibility"] < 0.5]
    assert hidden and all(a["iscrowd"] == 1 for a in hidden)
    data = json.loads(paths["coco_gt"].read_text())
    assert data["info"]["description"] == scene.config.to_spec()


def test_seqinfo_records_the_rate_and_the_spec(written):
    scene, paths = written
    text = paths["seqinfo"].read_text()
    assert "frameRate=30" in text and "seqLength=15" in text
    assert scene.config.to_spec() in text
