"""The ONNX families on CUDA through torch with CUDA graphs (skipped without a GPU).

The graph replays must give what the same chain gives without a graph, each knob
setting gets its own graph over the one set of weights, a batched call gives each
frame its own boxes, and the pipeline picks this route for ``--device cuda`` when
ONNX Runtime has no GPU provider.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx2torch", reason="onnx2torch not installed (approxrt[gpu])")
if not torch.cuda.is_available():
    pytest.skip(
        "no CUDA device: the CUDA-graph route is untested here", allow_module_level=True
    )

from approxrt.branch import DetectorKnobs  # noqa: E402
from approxrt.branches.detectors.cuda_detector import CudaOnnxDetector  # noqa: E402
from approxrt.branches.detectors.fastestdet import FastestDetDetector  # noqa: E402
from approxrt.branches.detectors.nanodet import NanoDetDetector  # noqa: E402
from approxrt.branches.detectors.routes import route_name  # noqa: E402
from approxrt.branches.detectors.yolox import YoloxDetector  # noqa: E402
from approxrt.config import load_config  # noqa: E402
from approxrt.detections import box_iou  # noqa: E402
from approxrt.pipeline import build_detector  # noqa: E402

FAMILIES = {
    "yolox_nano": (YoloxDetector, (224, 416)),
    "nanodet_m": (NanoDetDetector, (320, 416)),
    "fastestdet": (FastestDetDetector, (320, 352)),
}


@pytest.fixture(scope="module")
def frames(pets_video):
    capture = cv2.VideoCapture(str(pets_video))
    images = [capture.read()[1] for _ in range(41)]
    capture.release()
    return images[::10]


@pytest.mark.parametrize("name", FAMILIES)
def test_graph_replays_give_the_boxes_of_the_chain_without_graphs(
    models_dir, frames, name
):
    family, sizes = FAMILIES[name]
    path = models_dir / f"{name}.onnx"
    graphed = CudaOnnxDetector(family, path, mode="graph", precision="fp32")
    plain = CudaOnnxDetector(family, path, mode="traced", precision="fp32")
    weights = next(graphed.network.parameters()).data_ptr()
    for frame in frames:
        for size in sizes:  # switching sizes frame by frame replays two graphs
            expected = plain.detect(frame, DetectorKnobs(size))
            found = graphed.detect(frame, DetectorKnobs(size))
            assert len(found) == len(expected) > 0
            np.testing.assert_allclose(found.xyxy, expected.xyxy, atol=0.05)
    assert len(graphed._runners) == len(sizes)
    assert all(r.graph is not None for r in graphed._runners.values())
    assert next(graphed.network.parameters()).data_ptr() == weights


def assert_same_confident_boxes(expected, found, sure=0.35, loose=0.25):
    """Each box scored >= ``sure`` on one side has a box scored >= ``loose`` on the
    other, typically at IoU > 0.95: scores differ slightly between arithmetic
    routes, so a box near one threshold may sit on either side of it. FastestDet
    (tanh offsets on a coarse grid) moved one PETS box to IoU 0.82 between the
    GPU's bilinear resize and cv2's, hence the lower floor for single boxes."""
    for one, other in ((expected, found), (found, expected)):
        confident = one.xyxy[one.confidence >= sure]
        candidates = other.xyxy[other.confidence >= loose]
        assert len(confident) > 0
        assert len(candidates) > 0
        best = box_iou(confident, candidates).max(axis=1)
        assert np.median(best) > 0.95
        assert best.min() > 0.7


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
@pytest.mark.parametrize("name", FAMILIES)
def test_graph_route_finds_what_onnx_runtime_on_the_cpu_finds(
    models_dir, frames, name, precision
):
    family, sizes = FAMILIES[name]
    path = models_dir / f"{name}.onnx"
    reference = family(path, device="cpu")
    graphed = CudaOnnxDetector(family, path, precision=precision)
    knobs = DetectorKnobs(sizes[-1])
    for frame in frames:
        assert_same_confident_boxes(
            reference.detect(frame, knobs), graphed.detect(frame, knobs)
        )


@pytest.mark.parametrize("batch", [4, 8])
def test_batched_graph_gives_each_frame_its_own_boxes(models_dir, frames, batch):
    detector = CudaOnnxDetector(
        YoloxDetector, models_dir / "yolox_nano.onnx", precision="fp32"
    )
    knobs = DetectorKnobs(416)
    group = (frames * 2)[:batch]
    together = detector.detect_batch(group, knobs)
    assert len(together) == batch
    for frame, found in zip(group, together, strict=True):
        # cuDNN may pick other kernels at another batch size: rounding only.
        assert_same_confident_boxes(detector.detect(frame, knobs), found)


def test_pipeline_runs_onnx_families_on_cuda_through_torch(models_dir, frames):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed: --device cuda takes its route")
    config = load_config(models_dir=str(models_dir), device="cuda")
    detector = build_detector("yolox_nano", config)
    assert isinstance(detector, CudaOnnxDetector)
    assert route_name(detector) == "torch-cuda (graph, tf32, cuda:0)"
    assert len(detector.detect(frames[0], DetectorKnobs(416))) > 0
