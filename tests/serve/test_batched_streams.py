"""Daemon streams sharing a detector kernel go through the pool's batcher (the
torch route of YOLOX-nano, run on the CPU without graphs, on real PETS frames)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from serve_parts import wait_until

pytest.importorskip("onnx2torch", reason="onnx2torch not installed (approxrt[gpu])")

from approxrt.branches.batching import BatchSettings
from approxrt.branches.detectors.cuda_detector import CudaOnnxDetector
from approxrt.branches.detectors.yolox import YoloxDetector
from approxrt.branches.model_pool import ModelPool
from approxrt.config import load_config
from approxrt.pipeline import batch_settings
from approxrt.serve.manager import StreamManager
from approxrt.serve.spec import ServeSettings, StreamSpec

FRAMES = 6
BRANCH = "yolox_nano/s224/si1"


@pytest.fixture
def pets_folder(tmp_path, pets_video):
    folder = tmp_path / "pets"
    folder.mkdir()
    capture = cv2.VideoCapture(str(pets_video))
    for index in range(FRAMES):
        cv2.imwrite(str(folder / f"{index + 1:06d}.png"), capture.read()[1])
    capture.release()
    return folder


def test_the_daemon_batches_by_default_and_can_be_told_not_to(models_dir):
    config = load_config(models_dir=str(models_dir), download=False)
    assert StreamManager(ServeSettings(), config).pool.batching == BatchSettings(
        max_frames=8, wait_ms=0.0, timeout_s=10.0
    )
    unbatched = config.replace(batch_streams=False)
    assert batch_settings(unbatched) is None
    assert StreamManager(ServeSettings(), unbatched).pool.batching is None


def test_two_streams_on_one_kernel_detect_through_the_batcher(
    models_dir, pets_folder, tmp_path
):
    config = load_config(
        models_dir=str(models_dir), download=False, device="cpu", warmup_runs=1
    )
    manager = StreamManager(ServeSettings(), config)
    detector = CudaOnnxDetector(
        YoloxDetector, models_dir / "yolox_nano.onnx", device="cpu", mode="eager"
    )
    manager.pool = ModelPool({"yolox_nano": detector}, batching=manager.pool.batching)
    try:
        workers = [
            manager.add(
                StreamSpec(
                    id=name,
                    source=str(pets_folder),
                    branch=BRANCH,
                    out=str(tmp_path / name),
                )
            )
            for name in ("a", "b")
        ]
        wait_until(
            lambda: all(w.state == "finished" for w in workers), 120, "both streams"
        )
    finally:
        manager.shutdown()
    assert [w.counts.processed for w in workers] == [FRAMES, FRAMES]
    assert [w.counts.frame_errors for w in workers] == [0, 0]
    # Every frame, and the one detection each stream's warm-up seeds trackers with.
    assert manager.pool.batcher("yolox_nano").frames == 2 * (FRAMES + 1)
    rows = [np.loadtxt(tmp_path / name / "results.txt", delimiter=",") for name in "ab"]
    assert len(rows[0]) == len(rows[1]) > FRAMES
    # Same frames, same boxes, whether a frame ran alone or in a batch.
    np.testing.assert_allclose(rows[0][:, 2:6], rows[1][:, 2:6], atol=0.05)
