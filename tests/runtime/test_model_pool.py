"""One model pool shared by several streams' kernels (real YOLOX-nano, PETS frames)."""

import threading
import time

import cv2
import numpy as np
import pytest

from approxrt.branch import Branch
from approxrt.branches.detectors.yolox import YoloxDetector
from approxrt.config import load_config
from approxrt.frame import Frame
from approxrt.loop import FixedBranch, run_loop
from approxrt.pipeline import build_detector, build_kernel, build_model_pool

BRANCH = Branch.parse("yolox_nano/s320/si3/medianflow/ds2")


@pytest.fixture(scope="module")
def pets_frames(pets_video):
    capture = cv2.VideoCapture(str(pets_video))
    frames = []
    for index in range(12):
        ok, image = capture.read()
        assert ok
        frames.append(Frame(image, index, index / 10.0, "pets"))
    capture.release()
    return frames


@pytest.fixture
def config(models_dir):
    return load_config(models_dir=str(models_dir), classes=["person"], download=False)


def _boxes(kernel, frames):
    return [r.detections for r in run_loop(frames, kernel, FixedBranch(BRANCH))]


def test_kernels_over_one_pool_load_each_detector_once(config, pets_frames):
    loads = []
    pool = build_model_pool(config)
    pool._load = lambda name: loads.append(name) or build_detector(name, config)
    first = build_kernel(config, [BRANCH], pool)
    second = build_kernel(config, [BRANCH], pool)
    assert loads == ["yolox_nano"]
    assert first.detectors["yolox_nano"] is second.detectors["yolox_nano"]
    # Streams keep their own tracks: running one does not move the other.
    _boxes(first, pets_frames[:4])
    assert first.branch == BRANCH and second.branch is None


def test_streams_in_threads_get_what_each_gets_alone(config, pets_frames):
    pool = build_model_pool(config, [BRANCH])
    alone = _boxes(build_kernel(config, [BRANCH], pool), pets_frames)
    together: dict[int, list] = {}

    def stream(key: int) -> None:
        together[key] = _boxes(build_kernel(config, [BRANCH], pool), pets_frames)

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(d) for d in alone) > 20
    for boxes in together.values():
        for a, b in zip(alone, boxes, strict=True):
            np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-3)
            np.testing.assert_array_equal(a.tracker_id, b.tracker_id)


class _KnobsOnTheModel(YoloxDetector):
    """YOLOX declared not thread-safe, counting callers inside `infer` at once."""

    thread_safe = False
    inside = 0
    most_inside = 0

    def infer(self, prepared):
        type(self).inside += 1
        type(self).most_inside = max(type(self).most_inside, type(self).inside)
        time.sleep(0.005)  # widen the window two unlocked callers would overlap in
        try:
            return super().infer(prepared)
        finally:
            type(self).inside -= 1


def test_a_detector_that_is_not_thread_safe_serves_one_stream_at_a_time(
    config, models_dir, pets_frames
):
    from approxrt.branches.model_pool import ModelPool

    pool = ModelPool({"yolox_nano": _KnobsOnTheModel(models_dir / "yolox_nano.onnx")})
    kernels = [build_kernel(config, [BRANCH], pool) for _ in range(3)]
    threads = [
        threading.Thread(target=_boxes, args=(k, pets_frames * 2)) for k in kernels
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _KnobsOnTheModel.most_inside == 1


def test_warmup_runs_once_per_setting_and_image_shape(config, pets_frames):
    pool = build_model_pool(config, [BRANCH])
    detector = pool.get("yolox_nano")
    calls = []
    detector.warmup = lambda knobs, image, runs: calls.append(image.shape)
    image = pets_frames[0].image
    pool.warmup([BRANCH.kernel], image)
    pool.warmup([BRANCH.kernel], image)
    pool.warmup([BRANCH.kernel], image[:320])
    assert calls == [image.shape, image[:320].shape]


def test_an_unknown_detector_names_the_loaded_ones(config):
    pool = build_model_pool(config, [BRANCH])
    with pytest.raises(ValueError, match="'nanodet' is not loaded; loaded: yolox_nano"):
        pool.get("nanodet")


def test_loading_a_detector_does_not_hold_up_streams_on_others(config, pets_frames):
    pool = build_model_pool(config, [BRANCH])

    def slow_load(name):
        time.sleep(1.5)  # a big model from a slow disk
        return build_detector(name, config)

    pool._load = slow_load
    loader = threading.Thread(target=pool.require, args=(["nanodet_m"],))
    loader.start()
    time.sleep(0.2)
    start = time.perf_counter()
    pool.detect("yolox_nano", pets_frames[0].image, BRANCH.knobs)
    waited_s = time.perf_counter() - start
    loader.join()
    assert waited_s < 0.5, waited_s
    assert set(pool.detectors) == {"yolox_nano", "nanodet_m"}
