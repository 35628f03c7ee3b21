"""Shared fixtures: the real models and video in ../shared/data, skipped when absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from approxrt.detections import Detections

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(
    os.environ.get("APPROXRT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")
)


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(
            f"real test data not found at {path} (set APPROXRT_SHARED_DATA to the "
            "folder "
            "holding models/ and video/)"
        )
    return path


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return _require(SHARED_DATA / "models")


@pytest.fixture(scope="session")
def pets_video() -> Path:
    return _require(SHARED_DATA / "video" / "pets09_s2l1" / "video.avi")


@pytest.fixture(scope="session")
def pets_gt() -> Path:
    return _require(SHARED_DATA / "video" / "pets09_s2l1" / "gt" / "gt.txt")


def make_detections(
    xyxy, confidence=None, class_id=None, tracker_id=None
) -> Detections:
    """Detections from plain lists; confidence 0.9 and class 0 (person) by default."""
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    n = len(xyxy)
    return Detections(
        xyxy,
        np.full(n, 0.9, np.float32) if confidence is None else confidence,
        np.zeros(n, np.int64) if class_id is None else class_id,
        tracker_id,
    )
