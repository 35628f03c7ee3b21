"""Detector families by name, imported lazily so listing a space loads no framework."""

from __future__ import annotations

import importlib

from approxrt.branches.detectors.base import Detector

# name -> (module, class). Faster R-CNN families share one class, told apart by name.
_FAMILIES: dict[str, tuple[str, str]] = {
    "yolox_nano": ("approxrt.branches.detectors.yolox", "YoloxDetector"),
    "fastestdet": ("approxrt.branches.detectors.fastestdet", "FastestDetDetector"),
    "nanodet_m": ("approxrt.branches.detectors.nanodet", "NanoDetDetector"),
    "frcnn_mbv3": ("approxrt.branches.detectors.torchvision_frcnn", "FrcnnMobileNetV3"),
    "frcnn_r50": ("approxrt.branches.detectors.torchvision_frcnn", "FrcnnResNet50"),
}

DETECTOR_NAMES: tuple[str, ...] = tuple(_FAMILIES)


def detector_class(name: str) -> type[Detector]:
    """The class of detector family ``name``; unknown names list the valid ones."""
    if name not in _FAMILIES:
        raise ValueError(
            f"unknown detector {name!r}; valid detectors: {', '.join(DETECTOR_NAMES)}"
        )
    module, attribute = _FAMILIES[name]
    return getattr(importlib.import_module(module), attribute)
