"""Which route runs an ONNX detector family on a device.

``onnxruntime``: ONNX Runtime with the best providers for the device (CPU; CUDA
or TensorRT when onnxruntime-gpu is installed, as on a Jetson with JetPack).
``torch-cuda``: the same file through onnx2torch and torch on CUDA, with a CUDA
graph per setting (`cuda_detector`), for GPUs without onnxruntime-gpu.

Deciding never imports torch unless the torch route is taken: on a CPU the ONNX
families run without torch (``auto`` looks for an NVIDIA driver first).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import onnxruntime as ort

ONNXRUNTIME = "onnxruntime"
TORCH_CUDA = "torch-cuda"
_ORT_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
# One entry per GPU the NVIDIA kernel driver sees (desktop and datacentre GPUs;
# a Jetson has no such folder and takes ONNX Runtime's route).
_NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def _ort_has_gpu() -> bool:
    return any(p in ort.get_available_providers() for p in _ORT_GPU_PROVIDERS)


def _nvidia_gpu_present() -> bool:
    try:
        return any(_NVIDIA_GPUS.iterdir())
    except OSError:
        return False


def onnx_route(device: str) -> str:
    """The route for ``device`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``).

    ``cpu`` is ONNX Runtime's. ``cuda`` is ONNX Runtime's when it has a GPU
    provider, else torch's (which says clearly when torch sees no GPU). ``auto``
    takes ONNX Runtime's GPU providers, then torch's route when an NVIDIA GPU
    and onnx2torch are present, else ONNX Runtime on the CPU.
    """
    kind = device.strip().lower().split(":")[0] if isinstance(device, str) else ""
    if kind == "cpu" or _ort_has_gpu():
        return ONNXRUNTIME
    if kind == "cuda":
        return TORCH_CUDA
    if kind == "auto" and _nvidia_gpu_present():
        if importlib.util.find_spec("onnx2torch") and _torch_sees_cuda():
            return TORCH_CUDA
    return ONNXRUNTIME


def _torch_sees_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def torch_device(device: str) -> str:
    """``device`` as torch names it on the torch route (``auto`` is ``cuda``)."""
    return "cuda" if device.strip().lower() == "auto" else device


def route_name(detector) -> str:
    """What ran a loaded detector, for ``summary.json``: e.g. ``"onnxruntime
    (CPUExecutionProvider)"``, ``"torch-cuda (graph, fp32, cuda:0)"``,
    ``"torch (cuda:0, graphs)"`` for torchvision's Faster R-CNN."""
    detail = getattr(detector, "route_detail", None)
    if detail is not None:
        return detail
    providers = getattr(detector, "providers", None)
    if providers is not None:
        return f"{ONNXRUNTIME} ({', '.join(providers)})"
    device = getattr(detector, "device", None)
    return f"torch ({device})" if device is not None else type(detector).__name__
