"""GPU benchmark of the ONNX detectors' torch route (docs/benchmarks/gpu.md).

    python -m approxrt.branches.detectors.gpu_benchmark --models DIR \\
        --video video.avi --gt gt.txt --out results.json [--parts a,b,...]

Parts: ``conversion`` (max abs difference from ONNX Runtime on the CPU, FP32 and
FP16), ``inference`` (YOLOX-nano network per size: eager, traced, graph; graph at
batch 1/4/8), ``frame`` (host frame -> detections with ids, per size; batched
calls), ``breakdown`` (torch profiler, before/after), ``accuracy`` (person AP50 on
PETS per family and size: ONNX Runtime CPU, torch FP32, torch FP16), ``frcnn``
(Faster R-CNN, backbone alone in a CUDA graph), ``frcnn_detector`` (the
detector's whole frame, graphed vs eager, see `gpu_frcnn`), ``contention``
(GPU load 25/50/75% read through NVML, and a detector's slowdown at each), and
from `gpu_streams`: ``daemon_streams``, ``paced_streams`` (streams sharing a
kernel, batched and not) and ``batch_precision`` (network batch ratios by
precision and layout). Each prints its rows and the JSON keeps every number.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

import click
import numpy as np
import torch
from tqdm import tqdm

from approxrt.branch import DetectorKnobs
from approxrt.branches.detectors import gpu_breakdown, gpu_frcnn, gpu_streams
from approxrt.branches.detectors.cuda_detector import CudaOnnxDetector
from approxrt.branches.detectors.fastestdet import FastestDetDetector
from approxrt.branches.detectors.gpu_timing import graphed, median_ms, read_frames
from approxrt.branches.detectors.nanodet import NanoDetDetector
from approxrt.branches.detectors.onnx_torch import (
    as_list,
    convert_onnx,
    cudnn_tf32,
    max_abs_difference,
    trace_for_shape,
)
from approxrt.branches.detectors.yolox import YoloxDetector

FAMILIES = {
    "yolox_nano": YoloxDetector,
    "nanodet_m": NanoDetDetector,
    "fastestdet": FastestDetDetector,
}
SIZES = {
    "yolox_nano": [224, 320, 416, 512, 640],
    "nanodet_m": [224, 320, 416, 512],
    "fastestdet": [288, 320, 352, 384, 416],
}
PARTS = (
    "conversion",
    "inference",
    "frame",
    "breakdown",
    "accuracy",
    "frcnn",
    "frcnn_detector",
    "contention",
    "daemon_streams",
    "paced_streams",
    "batch_precision",
)
BATCHES = (1, 4, 8)


def part_conversion(models: Path, frame: np.ndarray) -> list[dict]:
    rows = []
    for name, family in FAMILIES.items():
        path = models / f"{name}.onnx"
        cpu = family(path, device="cpu")
        network = convert_onnx(path).cuda()
        for size in SIZES[name]:
            blob = cpu.preprocess(frame, DetectorKnobs(size)).inputs
            example = torch.from_numpy(blob).cuda()
            traced = trace_for_shape(network, example)
            row = {"detector": name, "size": size, "network_hw": list(blob.shape[2:])}
            for precision, tf32 in (("fp32", False), ("tf32", True)):
                with cudnn_tf32(tf32):
                    difference, scale = max_abs_difference(traced, path, blob, "cuda")
                row[f"max_abs_diff_{precision}"] = difference
            half = HalfInput(trace_for_shape(network.half(), example.half()))
            row["max_abs_diff_fp16"], _ = max_abs_difference(half, path, blob, "cuda")
            network.float()
            row["max_abs_output"] = scale
            rows.append(row)
            print("conversion", json.dumps(row))
    return rows


class HalfInput(torch.nn.Module):
    """A half-precision module called with float32 input (for comparisons)."""

    def __init__(self, module) -> None:
        super().__init__()
        self.module = module

    def forward(self, blob: torch.Tensor):
        return [out.float() for out in as_list(self.module(blob.half()))]


def part_inference(models: Path, frame: np.ndarray) -> list[dict]:
    """YOLOX-nano's network alone: eager / traced / graph, and graph by batch."""
    path = models / "yolox_nano.onnx"
    cpu = YoloxDetector(path, device="cpu")
    network = convert_onnx(path).cuda()
    rows = []
    for size in tqdm(SIZES["yolox_nano"], desc="inference"):
        blob = torch.from_numpy(cpu.preprocess(frame, DetectorKnobs(size)).inputs)
        row = {"size": size, "network_hw": list(blob.shape[2:])}
        with torch.no_grad():
            for batch in BATCHES:
                example = blob.repeat(batch, 1, 1, 1).cuda()
                traced = trace_for_shape(network, example)
                if batch == 1:
                    row["eager_ms"] = median_ms(lambda x=example: network(x), runs=100)
                    row["traced_ms"] = median_ms(lambda t=traced, x=example: t(x))
                graph = graphed(lambda t=traced, x=example: t(x))
                row[f"graph_b{batch}_ms"] = median_ms(graph.replay)
        row["graph_speedup"] = row["eager_ms"] / row["graph_b1_ms"]
        rows.append(row)
        print(
            f"inference yolox {size}: eager {row['eager_ms']:.2f} traced "
            f"{row['traced_ms']:.2f} graph {row['graph_b1_ms']:.3f} ms "
            f"({row['graph_speedup']:.1f}x); b4 {row['graph_b4_ms']:.3f} "
            f"b8 {row['graph_b8_ms']:.3f}"
        )
    return rows


def frame_ms(detector, frames: list[np.ndarray], knobs: DetectorKnobs) -> float:
    """Median ms of host frame -> detections with track ids (real PETS frames)."""
    assign = gpu_breakdown.id_assigner()
    index = iter(range(10**9))
    return median_ms(
        lambda: assign(detector.detect(frames[next(index) % len(frames)], knobs)),
        runs=200,
    )


def part_frame(models: Path, frames: list[np.ndarray]) -> list[dict]:
    rows = []
    for name, family in FAMILIES.items():
        path = models / f"{name}.onnx"
        routes = {
            "graph": CudaOnnxDetector(family, path, mode="graph"),
            "eager": CudaOnnxDetector(family, path, mode="eager"),
            "onnxruntime_cpu": family(path, device="cpu"),
        }
        for size in tqdm(SIZES[name], desc=f"frame {name}"):
            knobs = DetectorKnobs(size)
            row = {"detector": name, "size": size}
            for route, detector in routes.items():
                row[f"{route}_frame_ms"] = frame_ms(detector, frames, knobs)
            graph = routes["graph"]
            if graph.gpu_family.batchable:
                for batch in BATCHES[1:]:
                    group = frames[:batch]
                    row[f"graph_b{batch}_call_ms"] = median_ms(
                        lambda d=graph, g=group, k=knobs: d.detect_batch(g, k),
                        runs=100,
                    )
            rows.append(row)
            print("frame", json.dumps(row))
    return rows


ROUTES = {
    "onnxruntime_cpu": lambda family, path: family(path, device="cpu"),
    **{
        f"torch_cuda_{precision}": (
            lambda family, path, p=precision: CudaOnnxDetector(
                family, path, precision=p
            )
        )
        for precision in ("tf32", "fp32", "fp16")
    },
}


def part_accuracy(
    models: Path,
    frames: list[np.ndarray],
    gt_path: Path,
    routes: list[str],
    kernels: set[str] | None = None,
) -> list[dict]:
    """Person AP50 on the whole video per route, and each pass's ms per frame;
    ``kernels`` (``"fastestdet/416"``, ...) limits the settings scored."""
    from approxrt.branches.detectors.gpu_accuracy import pets_ap50

    rows = []
    for name, family in FAMILIES.items():
        sizes = [s for s in SIZES[name] if not kernels or f"{name}/{s}" in kernels]
        if not sizes:
            continue
        path = models / f"{name}.onnx"
        detectors = {route: ROUTES[route](family, path) for route in routes}
        for size in sizes:
            row = {"detector": name, "size": size}
            for route, detector in detectors.items():
                started = time.perf_counter()
                row[route] = pets_ap50(detector, frames, DetectorKnobs(size), gt_path)
                row[f"{route}_ms_per_frame"] = (
                    (time.perf_counter() - started) * 1e3 / len(frames)
                )
            rows.append(row)
            print("accuracy", json.dumps(row))
    return rows


@click.command()
@click.option("--models", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--video", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--gt", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--parts", default=",".join(PARTS), help="Comma-separated parts.")
@click.option(
    "--accuracy-routes",
    default=",".join(ROUTES),
    help=f"Comma-separated routes the accuracy part scores ({', '.join(ROUTES)}).",
)
@click.option(
    "--accuracy-kernels",
    default="",
    help="Comma-separated detector/size settings the accuracy part scores, e.g. "
    "fastestdet/416; empty scores every one.",
)
def main(
    models: str,
    video: str,
    gt: str,
    out: str,
    parts: str,
    accuracy_routes: str,
    accuracy_kernels: str,
) -> None:
    """Run the chosen parts on CUDA device 0 and write every number to OUT."""
    chosen = [p.strip() for p in parts.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown:
        raise click.BadParameter(
            f"unknown parts {unknown}; valid: {PARTS}", param_hint="--parts"
        )
    if not torch.cuda.is_available():
        raise click.ClickException("no CUDA device: this benchmark runs on a GPU")
    routes = [r.strip() for r in accuracy_routes.split(",") if r.strip()]
    unknown_routes = sorted(set(routes) - set(ROUTES))
    if unknown_routes:
        raise click.BadParameter(
            f"unknown routes {unknown_routes}; valid: {list(ROUTES)}",
            param_hint="--accuracy-routes",
        )
    kernels = {k.strip() for k in accuracy_kernels.split(",") if k.strip()}
    models_dir, gt_path = Path(models), Path(gt)
    frames = read_frames(Path(video))
    run_part = {
        "conversion": lambda: part_conversion(models_dir, frames[0]),
        "inference": lambda: part_inference(models_dir, frames[0]),
        "frame": lambda: part_frame(models_dir, frames[:200]),
        "breakdown": lambda: gpu_breakdown.breakdown(models_dir, frames[:100]),
        "accuracy": lambda: part_accuracy(models_dir, frames, gt_path, routes, kernels),
        "frcnn": lambda: gpu_breakdown.frcnn_graphs(frames[:50]),
        "frcnn_detector": lambda: gpu_frcnn.frcnn_detector(frames[:50]),
        "contention": lambda: gpu_breakdown.contention(models_dir, frames[:200]),
        "daemon_streams": lambda: gpu_streams.daemon_streams(models_dir, frames[:400]),
        "paced_streams": lambda: gpu_streams.paced_streams(models_dir, frames[:200]),
        "batch_precision": lambda: gpu_streams.batch_precision(models_dir, frames[0]),
    }
    results: dict = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
    }
    for part in chosen:
        started = time.perf_counter()
        try:
            results[part] = run_part[part]()
        except Exception as error:  # one failed part still leaves the others' numbers
            traceback.print_exc()
            results[part] = {"error": repr(error)}
        results.setdefault("part_seconds", {})[part] = time.perf_counter() - started
        Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
