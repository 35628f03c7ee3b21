"""GPU benchmark parts that take a detection frame apart (see gpu_benchmark.py).

`breakdown`: what a YOLOX-nano detection frame's time is made of, before (ONNX
preprocessing and decoding on the CPU around onnx2torch's eager module) and after
(`CudaOnnxDetector`'s graph), stage by stage and from the torch profiler.
`frcnn_graphs`: Faster R-CNN with its backbone in a CUDA graph (the part with
static shapes). `contention`: GPU load levels read through NVML, and a detector's
latency at each.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors.cuda_detector import CudaOnnxDetector
from approxrt.branches.detectors.gpu_timing import graphed, median_ms
from approxrt.branches.detectors.onnx_torch import as_list, convert_onnx
from approxrt.branches.detectors.yolox import YoloxDetector
from approxrt.branches.trackers.association import TrackIdAssigner

BREAKDOWN_SIZE = 416
PROFILED_FRAMES = 50
_LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel")
_SYNCS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")


class _Stages:
    """Per-stage wall times (synchronised), in ms."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}

    def run(self, name: str, call):
        start = time.perf_counter()
        with record_function(name):
            result = call()
            torch.cuda.synchronize()
        self.times.setdefault(name, []).append((time.perf_counter() - start) * 1e3)
        return result

    def medians(self) -> dict[str, float]:
        return {name: statistics.median(v) for name, v in self.times.items()}


def _before(path: Path):
    """The route before this work: numpy pre/post around onnx2torch's module."""
    cpu, network = YoloxDetector(path, device="cpu"), convert_onnx(path).cuda()
    knobs = DetectorKnobs(BREAKDOWN_SIZE)

    def frame(stages: _Stages, image: np.ndarray, assign):
        prepared = stages.run("preprocess (CPU)", lambda: cpu.preprocess(image, knobs))
        blob = stages.run("copy in", lambda: torch.from_numpy(prepared.inputs).cuda())
        with torch.no_grad():
            outputs = stages.run("network (eager)", lambda: as_list(network(blob)))
        raw = stages.run("copy out", lambda: [o.cpu().numpy() for o in outputs])
        found = stages.run("decode + NMS (CPU)", lambda: cpu.postprocess(raw, prepared))
        return stages.run("track ids", lambda: assign(found))

    return frame


def _after(path: Path):
    detector = CudaOnnxDetector(YoloxDetector, path)
    knobs = DetectorKnobs(BREAKDOWN_SIZE)

    def frame(stages: _Stages, image: np.ndarray, assign):
        prepared = stages.run(
            "copy in (pinned)", lambda: detector.preprocess(image, knobs)
        )
        raw = stages.run(
            "graph: resize+network+decode", lambda: detector.infer(prepared)
        )
        found = stages.run(
            "threshold + NMS (GPU) + copy out",
            lambda: detector.postprocess(raw, prepared),
        )
        return stages.run("track ids", lambda: assign(found))

    return frame


def id_assigner():
    """Track ids for a stream of detection frames, as the kernel hands them out."""
    assigner, state = TrackIdAssigner(), {"previous": None}

    def assign(found):
        previous = state["previous"]
        state["previous"] = assigner.assign(
            found, previous if previous is not None else found[:0]
        )
        return state["previous"]

    return assign


def _profile_counts(frame, frames: list[np.ndarray]) -> dict[str, float]:
    """Launches, syncs, kernel and copy time per frame from the torch profiler."""
    assign = id_assigner()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for image in frames[:PROFILED_FRAMES]:
            frame(_Stages(), image, assign)
    counts = {"launches": 0.0, "graph_launches": 0.0, "syncs": 0.0}
    kernel_us = copy_us = 0.0
    for event in prof.key_averages():
        if event.key in _LAUNCHES:
            counts["launches"] += event.count
        elif event.key == "cudaGraphLaunch":
            counts["graph_launches"] += event.count
        elif event.key in _SYNCS:
            counts["syncs"] += event.count
        device_us = getattr(event, "self_device_time_total", 0.0)
        if event.key.startswith("Memcpy") or event.key.startswith("Memset"):
            copy_us += device_us
        elif getattr(event, "device_type", None) == torch.autograd.DeviceType.CUDA:
            kernel_us += device_us
    per_frame = {k: v / PROFILED_FRAMES for k, v in counts.items()}
    per_frame["gpu_kernel_ms"] = kernel_us / 1e3 / PROFILED_FRAMES
    per_frame["gpu_copy_ms"] = copy_us / 1e3 / PROFILED_FRAMES
    return per_frame


def _stage_medians(frame, frames: list[np.ndarray]) -> dict[str, float]:
    assign = id_assigner()
    stages = _Stages()
    for image in frames[:10]:  # warm-up (graph capture, first NMS)
        frame(_Stages(), image, assign)
    for image in frames:
        frame(stages, image, assign)
    return stages.medians()


def breakdown(models: Path, frames: list[np.ndarray]) -> dict:
    path = models / "yolox_nano.onnx"
    result = {}
    for label, make in (("before", _before), ("after", _after)):
        frame = make(path)
        stages = _stage_medians(frame, frames)
        counts = _profile_counts(frame, frames)
        result[label] = {"stage_ms": stages, "per_frame": counts}
        print(f"breakdown {label} (yolox_nano {BREAKDOWN_SIZE}, median ms/frame):")
        for name, ms in stages.items():
            print(f"  {name:36s} {ms:7.3f}")
        print(
            "  profiler per frame: "
            + ", ".join(f"{k} {v:.2f}" for k, v in counts.items())
        )
    return result


def frcnn_graphs(frames: list[np.ndarray]) -> list[dict]:
    """Faster R-CNN (random weights): whole frame eager vs backbone+FPN graphed.

    The RPN (top-k, NMS, proposal filtering) and the box head's score filter
    and NMS produce data-dependent sizes, so only the backbone+FPN, whose input
    shape is fixed per size, is captured.
    """
    from approxrt.branches.detectors.torchvision_frcnn import (
        FrcnnMobileNetV3,
        FrcnnResNet50,
    )

    rows = []
    for family in (FrcnnMobileNetV3, FrcnnResNet50):
        detector = family(weights="random", device="cuda")
        for size in (224, 320, 448, 576):
            knobs = DetectorKnobs(size, 100)
            image = frames[0]
            tensors = detector.preprocess(image, knobs).inputs.tensors
            backbone = detector.model.backbone
            with torch.inference_mode():
                eager_backbone = median_ms(lambda b=backbone, x=tensors: b(x), 100, 10)
                static = tensors.clone()
                graph = graphed(lambda b=backbone, x=static: b(x))
                graph_backbone = median_ms(graph.replay, 100, 10)
            row = {
                "detector": family.name,
                "size": size,
                "network_hw": list(tensors.shape[2:]),
                "eager_frame_ms": median_ms(
                    lambda d=detector, i=image, k=knobs: d.detect(i, k), 100, 10
                ),
                "eager_backbone_ms": eager_backbone,
                "graph_backbone_ms": graph_backbone,
            }
            del graph
            row["frame_with_graphed_backbone_ms"] = (
                row["eager_frame_ms"] - eager_backbone + graph_backbone
            )
            rows.append(row)
            print("frcnn", row)
    return rows


def contention(models: Path, frames: list[np.ndarray]) -> list[dict]:
    """GPU load at 0/25/50/75%: NVML utilisation with the load alone, then YOLOX
    (416, graph) frame latency under it."""
    from approxrt.contention import ContentionLevels
    from approxrt.profiler.contention import ContentionGenerator

    detector = CudaOnnxDetector(YoloxDetector, models / "yolox_nano.onnx")
    knobs = DetectorKnobs(BREAKDOWN_SIZE)
    rows = []
    with ContentionGenerator(settle_s=2.0, backend="builtin") as generator:
        for pct in (0, 25, 50, 75):
            generator.set(ContentionLevels(gpu_pct=pct))
            time.sleep(4.0)
            alone = generator.measured(restart=True)
            index = iter(range(10**9))
            latency = _latencies(detector, frames, knobs, index)
            under = generator.measured()
            row = {
                "asked_gpu_pct": pct,
                "nvml_gpu_pct_load_alone": alone.gpu_pct if pct else 0.0,
                "nvml_gpu_pct_with_detector": under.gpu_pct if pct else None,
                "detector_median_ms": statistics.median(latency),
                "detector_p95_ms": float(np.percentile(latency, 95)),
            }
            rows.append(row)
            print("contention", row)
    base = rows[0]["detector_median_ms"]
    for row in rows:
        row["slowdown"] = row["detector_median_ms"] / base
    return rows


def _latencies(detector, frames, knobs, index, seconds: float = 4.0) -> list[float]:
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        frame = frames[next(index) % len(frames)]
        start = time.perf_counter()
        detector.detect(frame, knobs)
        times.append((time.perf_counter() - start) * 1e3)
    return times[5:]
