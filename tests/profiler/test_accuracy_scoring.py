"""AP50 per segment: the same numbers `approxrt eval` gives a real run of the branch."""

import itertools

import numpy as np
import pytest

from approxrt.branch import Branch
from approxrt.branches.space import BranchSpace
from approxrt.config import load_config
from approxrt.detections import Detections
from approxrt.evaluation import evaluate_ap, read_mot_gt
from approxrt.evaluation.report import evaluate
from approxrt.loop import FixedBranch, run_loop
from approxrt.pipeline import build_kernel
from approxrt.profile_schema import TABLES
from approxrt.profiler import detection_cache
from approxrt.profiler.accuracy import profile_accuracy, reference_branch
from approxrt.profiler.replay import segment_bounds
from approxrt.profiler.videos import VideoSpec
from approxrt.runner import run_source
from approxrt.sources import SyntheticScene, open_source
from approxrt.sources.scene_io import DEFAULT_MIN_VISIBILITY

FRAMES = 60
SEGMENT_FRAMES = 30
SCENE = "synthetic:objects=4,size=100-160,speed=1-3,frames=60,seed=3"
TRACKED = "yolox_nano/s224/si4/medianflow/ds2"


@pytest.fixture(scope="module")
def config(models_dir):
    settings = load_config(
        models_dir=str(models_dir),
        classes=["person"],
        download=False,
        detectors=["yolox_nano"],
        input_sizes={"yolox_nano": [224]},
        sampling_intervals=[1, 4],
        trackers=["medianflow"],
        downsamples=[2],
    )
    profile = settings.profile.model_copy(update={"segment_frames": SEGMENT_FRAMES})
    return settings.replace(profile=profile.model_dump())


@pytest.fixture(scope="module")
def videos(pets_video, pets_gt):
    return [
        VideoSpec("pets", str(pets_video), str(pets_gt), max_frames=FRAMES),
        VideoSpec("pets_unlabelled", str(pets_video), max_frames=FRAMES),
        VideoSpec("scene", SCENE),
    ]


@pytest.fixture(scope="module")
def segments(config, videos, tmp_path_factory):
    tables = profile_accuracy(
        config,
        BranchSpace.from_config(config),
        videos,
        tmp_path_factory.mktemp("cache"),
        workers=1,
        progress=False,
    )
    return tables["accuracy/segments"]


def ap50(segments, video, branch):
    rows = segments[(segments.video == video) & (segments.branch == branch)]
    return rows.sort_values("segment").ap50.to_numpy()


@pytest.mark.parametrize(
    ("frames", "segment_frames", "expected"),
    [
        (795, 100, [(i * 100, i * 100 + 99) for i in range(7)] + [(700, 794)]),
        (120, 100, [(0, 119)]),  # a 20-frame tail joins the segment before
        (150, 100, [(0, 99), (100, 149)]),  # half a segment is kept
        (40, 100, [(0, 39)]),
        (1, 100, [(0, 0)]),
    ],
)
def test_segments_keep_a_last_short_one_of_at_least_half_a_segment(
    frames, segment_frames, expected
):
    assert segment_bounds(frames, segment_frames) == expected


def test_rows_have_the_schema_columns_one_per_video_segment_and_branch(segments):
    assert tuple(segments.columns) == TABLES["accuracy/segments"]
    assert len(segments) == 3 * 2 * 2  # videos x segments x branches
    every_frame = segments[segments.sampling_interval == 1]
    assert set(every_frame.tracker) == {""} and set(every_frame.proposals) == {0}
    pets = segments[segments.video == "pets"]
    assert sorted(set(zip(pets.first_frame, pets.last_frame, strict=True))) == [
        (0, 29),
        (30, 59),
    ]
    assert (pets.truth == "gt").all() and (pets.truth_boxes > 100).all()


def test_replayed_ap50_per_segment_equals_scoring_a_live_run_of_the_branch(
    config, segments, pets_video, pets_gt
):
    branch = Branch.parse(TRACKED)
    job_config = detection_cache.job_config(config.model_dump())
    with open_source(str(pets_video)) as source:
        frames = list(itertools.islice(source, FRAMES))
    live = run_loop(frames, build_kernel(job_config, [branch]), FixedBranch(branch))
    found = Detections.stack((r.frame.index + 1, r.detections) for r in live)
    gt = read_mot_gt(pets_gt)
    expected = []
    for first in (1, 31):
        frames_in = (first, first + SEGMENT_FRAMES - 1)
        in_gt = (gt.frame >= frames_in[0]) & (gt.frame <= frames_in[1])
        in_found = (found.frame >= frames_in[0]) & (found.frame <= frames_in[1])
        expected.append(evaluate_ap(gt[in_gt], found[in_found], [0]).mean_ap50)
    np.testing.assert_array_equal(ap50(segments, "pets", TRACKED), expected)
    assert 0.3 < min(expected) < max(expected) < 1.0


def test_replayed_ap50_matches_approxrt_eval_of_a_real_run(
    config, segments, pets_video, pets_gt, tmp_path
):
    # `approxrt run` writes boxes rounded to 0.01 px and scores to 1e-4, so a
    # run's files score within a hair of the unrounded replay.
    out = tmp_path / "run"
    branch = Branch.parse(TRACKED)
    run_config = config.replace(max_frames=SEGMENT_FRAMES, num_threads=1)
    run_source(
        str(pets_video), FixedBranch(branch), [branch], out, run_config, progress=False
    )
    report = evaluate(pets_gt, out)
    assert report.num_frames == SEGMENT_FRAMES
    first_segment = ap50(segments, "pets", TRACKED)[0]
    assert report.per_class["person"].ap50 == pytest.approx(first_segment, abs=0.005)


def test_an_unlabelled_video_is_scored_against_the_reference_branch(config, segments):
    reference = reference_branch(config, BranchSpace.from_config(config))
    unlabelled = segments[segments.video == "pets_unlabelled"]
    assert set(unlabelled.truth) == {str(reference)} == {"yolox_nano/s224/si1"}
    # The reference against itself: every truth box is its own top-ranked hit.
    np.testing.assert_array_equal(ap50(segments, "pets_unlabelled", str(reference)), 1)
    assert (ap50(segments, "pets_unlabelled", TRACKED) < 1).all()
    assert (unlabelled.truth_boxes > 60).all()


def test_a_synthetic_scene_is_scored_against_its_exact_ground_truth(segments):
    scene = SyntheticScene.from_spec(SCENE)
    scored = [
        int((scene.ground_truth(i).data["visibility"] >= DEFAULT_MIN_VISIBILITY).sum())
        for i in range(len(scene))
    ]
    rows = segments[(segments.video == "scene") & (segments.sampling_interval == 1)]
    assert set(rows.truth) == {"gt"}
    assert rows.sort_values("segment").truth_boxes.tolist() == [
        sum(scored[:SEGMENT_FRAMES]),
        sum(scored[SEGMENT_FRAMES:]),
    ]
    assert (rows.ap50 > 0.5).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "/no/such/video.avi"}, "video 'v': source '/no/such/video.avi'"),
        ({"truth": "/no/such/gt.txt"}, "video 'v': truth: .*does not exist"),
        ({"source": "synthetic:objcts=3"}, "did you mean 'objects'"),
        ({"name": "a b"}, "VideoSpec.name"),
        ({"max_frames": 0}, "VideoSpec.max_frames"),
    ],
)
def test_bad_videos_are_refused_with_what_is_wrong(
    change, message, config, pets_video, tmp_path
):
    values = {"name": "v", "source": str(pets_video)} | change
    with pytest.raises(ValueError, match=message):
        video = VideoSpec(**values)
        profile_accuracy(
            config, BranchSpace.from_config(config), [video], tmp_path, progress=False
        )
    assert not any(tmp_path.iterdir()), "nothing is cached before inputs are checked"


def test_videos_from_the_command_line_are_named(pets_video, pets_gt):
    pets = VideoSpec.parse(str(pets_video), max_frames=10)
    assert (pets.name, pets.truth, pets.max_frames) == ("pets09_s2l1", str(pets_gt), 10)
    assert VideoSpec.parse(f"mine={pets_video}").name == "mine"
    assert VideoSpec.parse(f"mine={pets_video}").truth == str(pets_gt)
    scene = VideoSpec.parse(SCENE)
    assert scene.source == SCENE and scene.truth is None
    assert (
        scene.name.startswith("synthetic_")
        and scene.name == VideoSpec.parse(SCENE).name
    )
    assert VideoSpec.parse(f"crowd={SCENE}") == VideoSpec("crowd", SCENE)


def test_a_file_that_is_no_video_is_refused_before_any_work(config, tmp_path):
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF not really a video")
    video = VideoSpec("broken", str(broken))
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=r"video 'broken': video file .*cannot open"):
        profile_accuracy(
            config, BranchSpace.from_config(config), [video], cache, progress=False
        )
    assert not cache.exists()


def test_bad_profile_settings_are_refused(config, pets_video, tmp_path):
    space = BranchSpace.from_config(config)
    video = VideoSpec("v", str(pets_video))
    with pytest.raises(ValueError, match="unique, repeated: \\['v'\\]"):
        profile_accuracy(config, space, [video, video], tmp_path, progress=False)
    heavy = config.profile.model_copy(update={"heavy_features": ["hog", "sift"]})
    with pytest.raises(ValueError, match="unknown \\['sift'\\]; valid: hog"):
        profile_accuracy(
            config.replace(profile=heavy.model_dump()), space, [video], tmp_path
        )
    tracked = config.profile.model_copy(update={"reference_branch": TRACKED})
    with pytest.raises(ValueError, match="must detect every frame"):
        reference_branch(config.replace(profile=tracked.model_dump()), space)
