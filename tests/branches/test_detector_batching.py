"""Streams' frames batched on one detector (`DetectorBatcher` through `ModelPool`),
with the real YOLOX-nano torch route on the CPU (no graphs) and real PETS frames;
the same checks on CUDA graphs run where a GPU is present."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("onnx2torch", reason="onnx2torch not installed (approxrt[gpu])")

import torch

from approxrt.branch import DetectorKnobs
from approxrt.branches.batching import BatchSettings
from approxrt.branches.detectors.cuda_detector import CudaOnnxDetector
from approxrt.branches.detectors.fastestdet import FastestDetDetector
from approxrt.branches.detectors.yolox import YoloxDetector
from approxrt.branches.model_pool import ModelPool

KNOBS = DetectorKnobs(224)
SETTINGS = BatchSettings(max_frames=4, wait_ms=1.0, timeout_s=60.0)


@pytest.fixture(scope="module")
def frames(pets_video):
    capture = cv2.VideoCapture(str(pets_video))
    images = [capture.read()[1] for _ in range(121)]
    capture.release()
    return images[::40]  # 4 frames, 40 apart: different people in each


@pytest.fixture(scope="module")
def yolox(models_dir):
    return CudaOnnxDetector(
        YoloxDetector, models_dir / "yolox_nano.onnx", device="cpu", mode="eager"
    )


@pytest.fixture
def pool(yolox):
    return ModelPool({"yolox_nano": yolox}, batching=SETTINGS)


def _in_threads(call, count: int, timeout_s: float = 120.0) -> list:
    """``call(i)`` in ``count`` threads; each one's result or exception, by index."""
    outcomes: list = [None] * count

    def worker(index: int) -> None:
        try:
            outcomes[index] = call(index)
        except Exception as error:
            outcomes[index] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    return outcomes


def _arriving_together(pool: ModelPool, images: list, queued: int) -> list:
    """Every image's ``pool.detect`` from its own thread, all arriving while the
    detector is busy (its lock held here) until ``queued`` frames wait: as
    streams do while a batch runs on the GPU."""
    batcher = pool.batcher("yolox_nano")
    results: list = []
    with batcher.run_lock:
        runner = threading.Thread(
            target=lambda: results.extend(
                _in_threads(
                    lambda i: pool.detect("yolox_nano", images[i], KNOBS), len(images)
                )
            )
        )
        runner.start()
        deadline_s = time.perf_counter() + 30
        while batcher.queued_frames() < queued and time.perf_counter() < deadline_s:
            time.sleep(0.01)
    runner.join(120)
    return results


def _assert_same_boxes(found, expected) -> None:
    assert len(found) == len(expected) > 0
    # A batch of 4 runs other CPU kernels than a batch of 1: rounding only.
    np.testing.assert_allclose(found.xyxy, expected.xyxy, atol=1e-2)
    np.testing.assert_array_equal(found.class_id, expected.class_id)


def test_concurrent_streams_get_their_own_frames_boxes_from_one_call(
    pool, yolox, frames
):
    expected = [yolox.detect(frame, KNOBS) for frame in frames]
    outcomes = _arriving_together(pool, frames, queued=4)
    assert pool.batcher("yolox_nano").calls == 1  # four streams, one call
    for (found, stage_ms), alone in zip(outcomes, expected, strict=True):
        _assert_same_boxes(found, alone)
        assert set(stage_ms) == {"preprocess", "infer", "postprocess"}


def test_a_stream_alone_on_its_kernel_does_not_wait(yolox, frames):
    pool = ModelPool(
        {"yolox_nano": yolox}, batching=BatchSettings(wait_ms=5000.0, timeout_s=60.0)
    )
    started = time.perf_counter()
    for frame in frames:
        found, _ = pool.detect("yolox_nano", frame, KNOBS)
        _assert_same_boxes(found, yolox.detect(frame, KNOBS))
    # Four frames, each with its own reference run: far below one 5 s wait.
    assert time.perf_counter() - started < 5.0
    assert pool.batcher("yolox_nano").calls == len(frames)


def test_a_stream_waits_for_the_other_stream_active_on_its_kernel(yolox, frames):
    pool = ModelPool(
        {"yolox_nano": yolox}, batching=BatchSettings(wait_ms=5000.0, timeout_s=60.0)
    )

    def stream(index: int):
        if index == 0:  # asks, then asks again half a second later
            pool.detect("yolox_nano", frames[0], KNOBS)
            time.sleep(0.5)
            return pool.detect("yolox_nano", frames[0], KNOBS)
        time.sleep(0.1)  # asks while the first stream counts as active
        return pool.detect("yolox_nano", frames[1], KNOBS)

    outcomes = _in_threads(stream, 2)
    # The second stream's frame waited for the first stream's next one: two
    # calls for three frames.
    assert pool.batcher("yolox_nano").calls == 2
    for (found, _), frame in zip(outcomes, frames, strict=False):
        _assert_same_boxes(found, yolox.detect(frame, KNOBS))


def test_a_failed_batched_call_raises_in_every_caller(pool, yolox, frames, monkeypatch):
    def broken(images, knobs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(yolox, "detect_batch_timed", broken)
    outcomes = _arriving_together(pool, frames[:3], queued=3)
    assert [type(o) for o in outcomes] == [RuntimeError] * 3
    monkeypatch.undo()
    found, _ = pool.detect("yolox_nano", frames[0], KNOBS)  # the next call works
    _assert_same_boxes(found, yolox.detect(frames[0], KNOBS))


def test_a_bad_frame_fails_alone_and_the_others_are_served(pool, yolox, frames):
    gray = cv2.cvtColor(frames[2], cv2.COLOR_BGR2GRAY)
    outcomes = _arriving_together(pool, [frames[0], frames[1], gray], queued=2)
    assert isinstance(outcomes[2], ValueError) and "image" in str(outcomes[2])
    for (found, _), frame in zip(outcomes[:2], frames, strict=False):
        _assert_same_boxes(found, yolox.detect(frame, KNOBS))


def test_a_caller_stuck_behind_a_busy_detector_times_out_then_recovers(yolox, frames):
    pool = ModelPool(
        {"yolox_nano": yolox}, batching=BatchSettings(wait_ms=1.0, timeout_s=0.3)
    )
    batcher = pool.batcher("yolox_nano")
    with batcher.run_lock:  # another call holds the detector
        started = time.perf_counter()
        with pytest.raises(TimeoutError, match="batch_timeout_s"):
            pool.detect("yolox_nano", frames[0], KNOBS)
        assert time.perf_counter() - started < 2.0
    assert batcher.queued_frames() == 0
    found, _ = pool.detect("yolox_nano", frames[0], KNOBS)
    _assert_same_boxes(found, yolox.detect(frames[0], KNOBS))


def test_three_frames_run_as_a_batch_of_four(pool, yolox, frames, monkeypatch):
    assert pool.batcher("yolox_nano").batch_sizes == [1, 2, 4]
    sizes = []
    original = yolox.detect_batch_timed

    def recording(images, knobs):
        sizes.append(len(images))
        return original(images, knobs)

    monkeypatch.setattr(yolox, "detect_batch_timed", recording)
    outcomes = _arriving_together(pool, frames[:3], queued=3)
    assert sizes == [4]  # padded: one graph per power of two
    for (found, _), frame in zip(outcomes, frames, strict=False):
        _assert_same_boxes(found, yolox.detect(frame, KNOBS))


def test_detectors_that_cannot_batch_run_frame_by_frame(models_dir, frames):
    onnxruntime = YoloxDetector(models_dir / "yolox_nano.onnx", device="cpu")
    fastestdet = CudaOnnxDetector(
        FastestDetDetector, models_dir / "fastestdet.onnx", device="cpu", mode="eager"
    )
    detectors = {"yolox_nano": onnxruntime, "fastestdet": fastestdet}
    batched = ModelPool(detectors, batching=BatchSettings())
    plain = ModelPool(detectors)
    assert batched.batcher("yolox_nano") is None
    assert batched.batcher("fastestdet") is None
    for name, size in (("yolox_nano", 416), ("fastestdet", 352)):
        found, _ = batched.detect(name, frames[0], DetectorKnobs(size))
        alone, _ = plain.detect(name, frames[0], DetectorKnobs(size))
        np.testing.assert_array_equal(found.xyxy, alone.xyxy)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_streams_batched_on_cuda_graphs_get_their_single_frame_boxes(
    models_dir, frames
):
    detector = CudaOnnxDetector(YoloxDetector, models_dir / "yolox_nano.onnx")
    knobs = DetectorKnobs(416)
    expected = [detector.detect(frame, knobs) for frame in frames]
    pool = ModelPool({"yolox_nano": detector}, batching=BatchSettings(wait_ms=500.0))
    pool.warmup([("yolox_nano", knobs)], frames[0])
    batcher = pool.batcher("yolox_nano")
    outcomes = _in_threads(
        lambda i: [pool.detect("yolox_nano", frames[i], knobs) for _ in range(20)],
        len(frames),
    )
    assert batcher.frames == 20 * len(frames)
    assert batcher.calls < batcher.frames  # some frames shared a call
    for results, alone in zip(outcomes, expected, strict=True):
        for found, _ in results:
            sure, sure_alone = (
                found[found.confidence > 0.3],
                alone[alone.confidence > 0.3],
            )
            assert len(sure) == len(sure_alone) > 0
            np.testing.assert_allclose(sure.xyxy, sure_alone.xyxy, atol=0.5)
