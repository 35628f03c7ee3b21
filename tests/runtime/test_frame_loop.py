"""The frame loop over real frames of PETS09-S2L1 with the real YOLOX-nano model."""

import itertools

import cv2
import numpy as np
import onnxruntime
import pytest

from approxrt.branch import Branch
from approxrt.config import load_config
from approxrt.frame import Frame
from approxrt.loop import BranchSchedule, FixedBranch, run_loop
from approxrt.pipeline import build_kernel
from approxrt.result import STAGES
from approxrt.stats import RunStats


@pytest.fixture(scope="module")
def pets_frames(pets_video):
    capture = cv2.VideoCapture(str(pets_video))
    frames = []
    for index in range(100):
        ok, image = capture.read()
        assert ok
        frames.append(Frame(image, index, index / 10.0, "pets", decode_ms=1.0))
    capture.release()
    return frames


@pytest.fixture
def config(models_dir):
    return load_config(models_dir=str(models_dir), classes=["person"], download=False)


def test_a_group_of_frames_detects_on_its_first_frame_and_tracks_the_rest(
    config, pets_frames
):
    branch = Branch.parse("yolox_nano/s320/si4/medianflow/ds2")
    kernel = build_kernel(config, [branch])
    results = list(run_loop(pets_frames[:12], kernel, FixedBranch(branch)))
    assert [r.detected for r in results] == [True, False, False, False] * 3
    assert all(r.branch == branch for r in results)
    for result in results:
        assert set(result.timings_ms) == set(STAGES)
        assert result.timings_ms["decode"] == 1.0
        stage_sum = sum(v for k, v in result.timings_ms.items() if k != "decode")
        assert 0 < stage_sum <= result.latency_ms
    assert all(r.timings_ms["infer"] > 0 for r in results if r.detected)
    assert all(r.timings_ms["infer"] == 0 for r in results if not r.detected)
    tracked = [len(r.detections) for r in results if not r.detected]
    assert min(tracked) >= 3, "PETS frames 1-12 show 4+ people; trackers must keep them"
    # Association is its own stage, on detection frames only.
    assert all(r.timings_ms["associate"] > 0 for r in results if r.detected)
    assert all(r.timings_ms["associate"] == 0 for r in results if not r.detected)


def test_cached_detections_seeded_without_the_detector_replay_the_same_stream(
    config, pets_frames
):
    branch = Branch.parse("yolox_nano/s320/si4/medianflow/ds1")
    kernel = build_kernel(config, [branch])
    frames = pets_frames[:16]
    live = list(run_loop(frames, kernel, FixedBranch(branch)))
    # What the profiler caches: the detector's own output on each detection frame.
    cache = {f.index: kernel.run_detector(f, branch)[0] for f in frames[::4]}

    kernel.reset()
    replayed = []
    for frame in frames:
        if frame.index in cache:
            detections, timings = kernel.seed(frame, branch, cache[frame.index])
            assert set(timings) == {"associate", "track"}
        else:
            detections, _ = kernel.track(frame)
        replayed.append(detections)

    for result, detections in zip(live, replayed, strict=True):
        np.testing.assert_allclose(result.detections.xyxy, detections.xyxy)
        np.testing.assert_array_equal(
            result.detections.tracker_id, detections.tracker_id
        )
    assert sum(len(d) for d in replayed) > 40


def test_track_ids_persist_across_groups_of_frames(config, pets_frames):
    branch = Branch.parse("yolox_nano/s416/si4/kcf/ds1")
    kernel = build_kernel(config, [branch])
    # Frames 74-90: people walk apart (earlier, three of them cross and swap places).
    results = list(run_loop(pets_frames[74:90], kernel, FixedBranch(branch)))
    confident = [
        set(r.detections.tracker_id[r.detections.confidence > 0.5].tolist())
        for r in results
        if r.detected
    ]
    # Most confident people at one detection frame keep their id at the next one.
    kept = [len(a & b) / max(len(a), 1) for a, b in itertools.pairwise(confident)]
    assert min(kept) >= 0.6


def test_switching_knobs_of_one_detector_never_reloads_weights(
    config, pets_frames, monkeypatch
):
    sessions = []
    original = onnxruntime.InferenceSession

    def counting_session(*args, **kwargs):
        sessions.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", counting_session)
    schedule = {
        0: Branch.parse("yolox_nano/s416/si1"),
        4: Branch.parse("yolox_nano/s320/si2/kcf/ds1"),
        8: Branch.parse("yolox_nano/s224/si4/medianflow/ds2"),
        16: Branch.parse("yolox_nano/s640/si1"),
    }
    kernel = build_kernel(config, schedule.values())
    detector = kernel.detectors["yolox_nano"]
    assert len(sessions) == 1
    shapes = []
    original_infer = detector.infer

    def recording_infer(prepared):
        shapes.append(prepared.inputs.shape)
        return original_infer(prepared)

    monkeypatch.setattr(detector, "infer", recording_infer)
    results = list(run_loop(pets_frames[:20], kernel, BranchSchedule(schedule)))
    assert len(sessions) == 1, "a knob switch built a new ONNX Runtime session"
    assert kernel.detectors["yolox_nano"] is detector
    assert [str(r.branch) for r in results][::4] == [
        "yolox_nano/s416/si1",
        "yolox_nano/s320/si2/kcf/ds1",
        "yolox_nano/s224/si4/medianflow/ds2",
        "yolox_nano/s224/si4/medianflow/ds2",
        "yolox_nano/s640/si1",
    ]
    # The network really ran at each size (rect input: long side = input size).
    assert {max(shape[2:]) for shape in shapes} == {416, 320, 224, 640}


def test_a_frame_that_fails_is_counted_and_skipped_and_the_stream_goes_on(
    config, pets_frames
):
    branch = Branch.parse("yolox_nano/s320/si2/medianflow/ds1")
    kernel = build_kernel(config, [branch])
    # A grey-only frame where a detection frame falls: the detector refuses it.
    broken = Frame(np.zeros((360, 480), np.uint8), 2, 0.2)
    frames = [*pets_frames[:2], broken, *pets_frames[3:8]]
    failed = []
    results = list(
        run_loop(
            frames,
            kernel,
            FixedBranch(branch),
            on_error=lambda frame, error: failed.append(frame.index),
        )
    )
    assert failed == [2]
    assert [r.frame.index for r in results] == [0, 1, 3, 4, 5, 6, 7]
    # After the bad frame a new group of frames starts with a detection.
    assert [r.detected for r in results] == [
        True,
        False,
        True,
        False,
        True,
        False,
        True,
    ]
    assert all(len(r.detections) for r in results)


def test_without_an_error_handler_a_failing_frame_raises(config, pets_frames):
    branch = Branch.parse("yolox_nano/s320/si1")
    kernel = build_kernel(config, [branch])
    broken = Frame(np.zeros((360, 480), np.uint8), 0, 0.0)
    with pytest.raises(ValueError):
        list(run_loop([broken], kernel, FixedBranch(branch)))


def test_the_class_filter_keeps_only_the_asked_classes(models_dir, pets_frames):
    config = load_config(models_dir=str(models_dir), classes=["car"], download=False)
    branch = Branch.parse("yolox_nano/s416/si1")
    results = list(
        run_loop(pets_frames[:3], build_kernel(config, [branch]), FixedBranch(branch))
    )
    assert all(set(r.detections.class_id.tolist()) <= {2} for r in results)
    people = load_config(models_dir=str(models_dir), classes=["person"], download=False)
    results = list(
        run_loop(pets_frames[:3], build_kernel(people, [branch]), FixedBranch(branch))
    )
    assert sum(len(r.detections) for r in results) >= 9


def test_warmup_runs_stay_out_of_the_statistics(config, pets_frames):
    branch = Branch.parse("yolox_nano/s320/si2/kcf/ds2")
    kernel = build_kernel(config, [branch])
    kernel.warmup([branch.kernel], pets_frames[0].image, [("kcf", 2)], runs=3)
    stats = RunStats()
    for result in run_loop(pets_frames[:10], kernel, FixedBranch(branch)):
        stats.add(result)
    summary = stats.summary()
    assert summary.frames == 10 and summary.detection_frames == 5
    assert summary.branches == {str(branch): 10}
    assert summary.overhead_ms >= 0


def test_reset_starts_track_ids_over_for_a_new_video(config, pets_frames):
    branch = Branch.parse("yolox_nano/s320/si2/kcf/ds2")
    kernel = build_kernel(config, [branch])
    first = list(run_loop(pets_frames[:4], kernel, FixedBranch(branch)))
    kernel.reset()
    again = list(run_loop(pets_frames[:4], kernel, FixedBranch(branch)))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.detections.tracker_id, b.detections.tracker_id)
        np.testing.assert_array_equal(a.detections.xyxy, b.detections.xyxy)
