"""The ONNX families on the CPU never import torch (issue 8): a deployment needs
no torch, and a process that runs them pays none of its start-up or threads.

Checked in a fresh interpreter, since this test process has torch loaded already.
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import cv2
from approxrt.branch import DetectorKnobs
from approxrt.config import load_config
from approxrt.pipeline import build_detector

config = load_config(models_dir=sys.argv[1], device="cpu")
capture = cv2.VideoCapture(sys.argv[2])
frame = capture.read()[1]
boxes = {}
for name, size in (("yolox_nano", 416), ("nanodet_m", 320), ("fastestdet", 352)):
    detector = build_detector(name, config)
    boxes[name] = len(detector.detect(frame, DetectorKnobs(size)))
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print(json.dumps({"boxes": boxes, "torch_modules": loaded}))
"""


def test_onnx_detectors_build_and_detect_without_importing_torch(
    models_dir, pets_video
):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(models_dir), str(pets_video)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # The detectors really ran: PETS frame 1 has several persons in view.
    assert all(count > 0 for count in report["boxes"].values()), report
    assert report["torch_modules"] == [], report
