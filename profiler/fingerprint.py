"""What a profile was measured on: the device, the libraries and the model files.

Latency depends on all three, accuracy on the model files alone; `meta.json`
keeps them so that loading a profile on another device can say why its latency
predictions may not hold. Nothing here imports an ML framework: library versions
come from package metadata and the GPU from ``nvidia-smi`` when it is on PATH.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import psutil

# Distributions whose version changes measured latency or the fitted models.
LIBRARIES = (
    "approxrt",
    "numpy",
    "onnxruntime",
    "onnxruntime-gpu",
    "opencv-contrib-python-headless",
    "torch",
    "torchvision",
    "scikit-learn",
    "pandas",
    "pyarrow",
)

# The device fields that must match for a profile's latency to apply here.
DEVICE_KEYS = ("cpu_model", "logical_cores", "gpus")


def device_fingerprint() -> dict:
    """CPU model, cores, memory, GPUs and OS of this machine."""
    return {
        "cpu_model": cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpus": _gpus(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def library_versions() -> dict[str, str]:
    """Installed versions of `LIBRARIES` (absent ones left out)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def device_mismatch(recorded: dict, here: dict) -> list[str]:
    """The `DEVICE_KEYS` on which ``recorded`` and ``here`` differ, as sentences."""
    return [
        f"{key}: profiled on {recorded.get(key)!r}, this device has {here.get(key)!r}"
        for key in DEVICE_KEYS
        if recorded.get(key) != here.get(key)
    ]


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    """``"name (driver X)"`` per NVIDIA GPU; [] without one or without nvidia-smi."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in filter(None, (line.strip() for line in out.splitlines())):
        name, _, driver = line.partition(",")
        gpus.append(f"{name.strip()} (driver {driver.strip()})")
    return gpus
