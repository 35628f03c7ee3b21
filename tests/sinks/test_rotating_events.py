"""The daemon's events file rotates at its size limit and loses no line."""

import json

import numpy as np

from approxrt.branch import Branch
from approxrt.detections import Detections
from approxrt.frame import Frame
from approxrt.result import STAGES, FrameResult
from approxrt.sinks.rotating_events import RotatingJsonlEventSink

BRANCH = Branch.parse("yolox_nano/s320/si4/kcf/ds2")


def _result(index):
    boxes = Detections(
        np.array([[1, 2, 30, 40], [5, 5, 9, 9]], np.float32),
        np.array([0.9, 0.5], np.float32),
        np.array([0, 2], np.int64),
        np.array([1, 2], np.int64),
    )
    return FrameResult(
        Frame(np.zeros((8, 8, 3), np.uint8), index, index / 10, "cam"),
        boxes,
        BRANCH,
        index % 4 == 0,
        dict.fromkeys(STAGES, 1.0),
        3.0,
    )


def test_events_rotate_into_numbered_files_keeping_the_newest(tmp_path):
    path = tmp_path / "gate" / "events.jsonl"
    sink = RotatingJsonlEventSink(path, max_bytes=20_000, backups=3, classes=["person"])
    for index in range(200):
        sink.write(_result(index))
        if index == 10:  # every line is on disk as soon as it is written
            assert len(path.read_text().splitlines()) == 11
    sink.close()
    files = [path.with_name(f"events.jsonl.{n}") for n in (3, 2, 1)] + [path]
    assert all(f.exists() for f in files)
    assert not path.with_name("events.jsonl.4").exists()
    assert all(f.stat().st_size <= 20_000 for f in files)
    events = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    indices = [e["frame_index"] for e in events]
    assert indices == list(range(indices[0], 200))  # the newest, none missing
    assert all([d["class_name"] for d in e["detections"]] == ["person"] for e in events)
