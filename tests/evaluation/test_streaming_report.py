"""Finish times written by the sinks, read back, and scored by `evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from approxrt.branch import Branch
from approxrt.detections import Detections
from approxrt.evaluation import evaluate, ignored, read_mot_gt, write_coco_results
from approxrt.evaluation.timing import read_timing
from approxrt.frame import Frame
from approxrt.result import FrameResult
from approxrt.sinks import JsonlEventSink, TimingSink
from approxrt.sources import SyntheticScene
from approxrt.sources.scene_io import write_mot_gt

FPS = 10.0
FRAMES = 40
BRANCH = Branch.parse("yolox_nano/s320/si1")


def frame_result(index: int, arrival_s, finish_s) -> FrameResult:
    frame = Frame(
        np.zeros((4, 4, 3), np.uint8), index, index / FPS, "s", 0.5, arrival_s
    )
    return FrameResult(
        frame, Detections.empty(), BRANCH, True, {}, 1.0, finish_s=finish_s
    )


def test_timing_csv_and_events_carry_arrival_and_finish_times(tmp_path):
    written = [
        frame_result(0, 0.0, 0.0123456),
        frame_result(3, 0.3, 0.41),
        frame_result(4, None, 0.52),  # a frame no stream clock stamped
    ]
    with (
        TimingSink(tmp_path / "timing.csv") as timing,
        JsonlEventSink(tmp_path / "events.jsonl") as events,
    ):
        for result in written:
            timing.write(result)
            events.write(result)
    times = read_timing(tmp_path / "timing.csv")
    assert times.frame.tolist() == [1, 4, 5]
    assert times.finish_s.tolist() == [0.012346, 0.41, 0.52]
    assert times.arrival_s[:2].tolist() == [0.0, 0.3] and np.isnan(times.arrival_s[2])
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    event = json.loads(lines[1])
    assert (event["arrival_s"], event["finish_s"]) == (0.3, 0.41)
    assert json.loads(lines[2])["arrival_s"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frame,finish_s\n1,0.1\n", "timing.csv:1: expected the header"),
        (
            "frame,timestamp_s,arrival_s,finish_s\n1,0,0,0.1\n2,0.1,0.1\n",
            ":3: expected 4",
        ),
        ("frame,timestamp_s,arrival_s,finish_s\n1,0,0,\n", ":2: expected an integer"),
        ("frame,timestamp_s,arrival_s,finish_s\n0,0,0,0.1\n", ":2: frame must be >= 1"),
    ],
)
def test_a_bad_timing_file_names_the_line(tmp_path, text, message):
    (tmp_path / "timing.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_timing(tmp_path / "timing.csv")


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    """A synthetic scene's MOT gt; the 'run' outputs that gt on even frames only."""
    folder = tmp_path_factory.mktemp("seq")
    scene = SyntheticScene.from_spec(
        f"synthetic:objects=4,size=40-70,speed=6-10,frames={FRAMES},seed=5,"
        "width=320,height=240"
    )
    write_mot_gt(scene, folder / "gt" / "gt.txt")
    return folder


def write_run(folder, gt, processed: np.ndarray, delay_s: float, fps=FPS):
    """A realtime run's files: its boxes are the gt of the frames processed."""
    folder.mkdir()
    scored = gt[~ignored(gt) & np.isin(gt.frame, processed)]
    write_coco_results(folder / "results.coco.json", scored)
    rows = [
        f"{f},{(f - 1) / FPS:.6f},{(f - 1) / FPS:.6f},{(f - 1) / FPS + delay_s:.6f}"
        for f in processed.tolist()
    ]
    (folder / "timing.csv").write_text(
        "frame,timestamp_s,arrival_s,finish_s\n" + "\n".join(rows) + "\n"
    )
    summary = {"fps": fps, "realtime": True, "stream_first_frame_index": 0}
    (folder / "summary.json").write_text(json.dumps(summary))


def test_eval_reports_streaming_beside_offline_and_charges_drops_to_streaming_only(
    sequence, tmp_path
):
    gt = read_mot_gt(sequence / "gt" / "gt.txt")
    # A realtime replay that processed every other frame, each within 30 ms.
    write_run(tmp_path / "run", gt, np.arange(1, FRAMES + 1, 2), 0.03)
    report = evaluate(sequence, tmp_path / "run", eta_frames=-1)
    assert report.mean_ap50 == 1.0  # offline: only the frames processed
    assert report.streaming.frames_scored == FRAMES - 1
    assert report.streaming.frames_in_time == FRAMES // 2
    assert report.streaming.mean_ap50 < 1.0  # dropped frames shown stale boxes
    assert not report.streaming.queued
    text = report.format()
    assert "sAP50" in text
    assert f"streaming AP50 {report.streaming.mean_ap50:.3f} vs offline AP50 1.000" in (
        text
    )
    assert report.to_dict()["streaming"]["eta_frames"] == -1


def test_eval_times_the_stream_from_its_first_frame_even_when_it_was_dropped(
    sequence, tmp_path
):
    gt = read_mot_gt(sequence / "gt" / "gt.txt")
    write_run(tmp_path / "run", gt, np.arange(3, FRAMES + 1), 0.03)
    report = evaluate(sequence, tmp_path / "run", eta_frames=-1)
    assert report.streaming.frames_scored == FRAMES
    assert report.streaming.frames_without_output == 2
    assert report.streaming.mean_lag_frames == 0


def test_eval_says_why_streaming_is_absent(sequence, tmp_path):
    gt = read_mot_gt(sequence / "gt" / "gt.txt")
    write_run(tmp_path / "run", gt, np.arange(1, FRAMES + 1), 0.03, fps=None)
    report = evaluate(sequence, tmp_path / "run")
    assert report.streaming is None
    assert "no frame rate" in report.format()
    (tmp_path / "run" / "timing.csv").unlink()
    report = evaluate(sequence, tmp_path / "run")
    assert "streaming AP50: not scored (no timing.csv" in report.format()
