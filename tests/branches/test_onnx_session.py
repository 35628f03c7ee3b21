"""`OnnxSession`: loading, the size-baked graph rewrite, and provider choice."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from approxrt.branches.detectors.onnx_graph import load_model, prepare_dynamic_model
from approxrt.branches.detectors.onnx_session import OnnxSession, choose_providers

REWRITTEN = ["fastestdet.onnx", "nanodet_m.onnx"]
ALL_MODELS = ["yolox_nano.onnx", *REWRITTEN]


def _session(model, optimisation: ort.GraphOptimizationLevel) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = optimisation
    options.log_severity_level = 3
    source = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("file", REWRITTEN)
def test_the_graph_rewrite_is_exact_at_the_native_size(file, models_dir):
    path = str(models_dir / file)
    rewritten, count = prepare_dynamic_model(load_model(path))
    assert count > 0
    # Optimisations off on both sides: the same kernels run, so outputs must be
    # bit-identical; with them on, fusion order alone moves results by ~1e-6.
    original = _session(path, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    dynamic = _session(rewritten, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    name = original.get_inputs()[0].name
    height, width = original.get_inputs()[0].shape[2:]
    image = np.random.default_rng(0).random((1, 3, height, width), np.float32)
    expected = original.run(None, {name: image})
    got = dynamic.run(None, {name: image})
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a, b)


def test_a_fully_convolutional_export_needs_no_rewrite(models_dir):
    session = OnnxSession(models_dir / "yolox_nano.onnx", device="cpu")
    assert session.rewritten_nodes == 0


@pytest.mark.parametrize("file", ALL_MODELS)
@pytest.mark.parametrize("height_width", [(224, 224), (320, 416), (640, 480)])
def test_one_session_runs_at_other_sizes_with_outputs_that_follow(
    file, height_width, models_dir
):
    session = OnnxSession(models_dir / file, device="cpu")
    height, width = height_width
    outputs = session.run(np.zeros((1, 3, height, width), np.float32))
    cells = sum(height // s * (width // s) for s in (8, 16, 32))
    if file == "fastestdet.onnx":
        assert outputs[0].shape == (1, 85, height // 16, width // 16)
    elif file == "yolox_nano.onnx":
        assert outputs[0].shape == (1, cells, 85)
    else:
        assert sum(o.shape[1] for o in outputs if o.shape[2] == 80) == cells


def test_a_missing_model_file_raises_a_clear_value_error(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ValueError, match=r"nope\.onnx.*does not exist"):
        OnnxSession(missing)
    with pytest.raises(ValueError, match="is a directory"):
        OnnxSession(tmp_path)


@pytest.mark.parametrize(
    ("make_bytes", "what"),
    [
        (lambda data: np.random.default_rng(0).bytes(4096), "corrupt or truncated"),
        (lambda data: data[: len(data) // 2], "corrupt or truncated"),
        (lambda data: data[:-64], "corrupt or truncated"),
        (lambda data: b"", "is empty"),
    ],
    ids=["random-bytes", "truncated-half", "truncated-tail", "empty-file"],
)
def test_a_corrupt_or_truncated_model_file_raises_a_clear_value_error(
    make_bytes, what, models_dir, tmp_path
):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(make_bytes((models_dir / "fastestdet.onnx").read_bytes()))
    with pytest.raises(ValueError, match=rf"bad\.onnx.*{what}"):
        OnnxSession(bad, device="cpu")


@pytest.mark.parametrize("threads", [-1, 1.5, "2"])
def test_a_bad_thread_count_is_rejected(threads, models_dir):
    with pytest.raises(ValueError, match="threads"):
        OnnxSession(models_dir / "yolox_nano.onnx", device="cpu", threads=threads)


GPU_HOST = [
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CPUExecutionProvider",
]


@pytest.mark.parametrize(
    ("device", "available", "expected"),
    [
        (
            "auto",
            GPU_HOST,
            [
                ("TensorrtExecutionProvider", {"device_id": 0}),
                ("CUDAExecutionProvider", {"device_id": 0}),
                "CPUExecutionProvider",
            ],
        ),
        (
            "auto",
            GPU_HOST[1:],
            [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"],
        ),
        ("auto", ["CPUExecutionProvider"], ["CPUExecutionProvider"]),
        ("cpu", GPU_HOST, ["CPUExecutionProvider"]),
        (
            "cuda",
            GPU_HOST,
            [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"],
        ),
        (
            "CUDA:1",
            GPU_HOST,
            [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"],
        ),
    ],
)
def test_devices_map_to_providers_best_first(device, available, expected):
    assert choose_providers(device, available=available) == expected


@pytest.mark.parametrize(
    ("device", "providers", "message"),
    [
        ("cuda", None, "CUDAExecutionProvider is not available"),
        ("gpu", None, "expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ("cuda:x", None, "expected 'auto'"),
        ("auto", ["CUDAExecutionProvider"], "not available"),
        ("auto", [], "empty list"),
    ],
)
def test_unavailable_or_malformed_devices_are_rejected(device, providers, message):
    with pytest.raises(ValueError, match=message):
        choose_providers(device, providers, available=["CPUExecutionProvider"])


def test_explicit_providers_override_the_device():
    options = {"arena_extend_strategy": "kSameAsRequested"}
    providers = [("CPUExecutionProvider", options)]
    assert choose_providers("cuda", providers, ["CPUExecutionProvider"]) == providers


def test_the_session_reports_the_providers_it_uses(models_dir):
    session = OnnxSession(models_dir / "nanodet_m.onnx", device="cpu")
    assert session.providers == ["CPUExecutionProvider"]
    assert session.native_hw == (416, 416)
