"""Every sink writes its exact format: parsed back, it matches the results fed in."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from approxrt.branch import Branch
from approxrt.classes import COCO_CATEGORY_IDS, COCO_CLASSES
from approxrt.detections import Detections
from approxrt.evaluation import (
    ignored,
    read_coco_results,
    read_mot_gt,
    read_mot_results,
)
from approxrt.frame import Frame
from approxrt.result import STAGES, FrameResult
from approxrt.sinks import (
    AnnotatedVideoSink,
    CocoResultsSink,
    JsonlEventSink,
    MotResultsSink,
    MultiSink,
    PngFramesSink,
    Sink,
    SinkClosedError,
    draw_result,
    open_sinks,
)

NUM_FRAMES = 8
CAR = COCO_CLASSES.index("car")
BRANCH = Branch.parse("yolox_nano/s320/si4/kcf/ds2")


@pytest.fixture(scope="module")
def results(pets_video, pets_gt) -> list[FrameResult]:
    """Real PETS frames; their gt persons as tracked boxes plus one untracked car."""
    gt = read_mot_gt(pets_gt)
    capture = cv2.VideoCapture(str(pets_video))
    out = []
    for index in range(NUM_FRAMES):
        ok, image = capture.read()
        assert ok
        people = gt[(gt.frame == index + 1) & ~ignored(gt)]
        detections = Detections(
            np.vstack([people.xyxy, [[300.25, 40.5, 360.75, 80.125]]]),
            np.append(np.linspace(0.9, 0.5, len(people)), 0.3),
            np.append(np.zeros(len(people), np.int64), CAR),
            np.append(people.tracker_id, -1),
        )
        out.append(
            FrameResult(
                Frame(image, index, index / 7.0, "pets"),
                detections,
                BRANCH,
                detected=index % 4 == 0,
                timings_ms={stage: 1.23456 * (i + 1) for i, stage in enumerate(STAGES)},
                latency_ms=40.0 + 5 * index,
                sla_ms=50.0,
                contention={"cpu": 0.25},
                predicted={"latency_ms": 33.33333},
            )
        )
    capture.release()
    return out


def feed(sink: Sink, results: list[FrameResult]) -> None:
    for result in results:
        sink.write(result)
    sink.close()


def test_event_lines_carry_every_field_of_the_frame_result(results, tmp_path):
    feed(JsonlEventSink(tmp_path / "events.jsonl"), results)
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == NUM_FRAMES
    for line, result in zip(lines, results, strict=True):
        event = json.loads(line)
        assert event["stream"] == "pets"
        assert event["frame_index"] == result.frame.index
        assert event["timestamp_s"] == pytest.approx(result.frame.timestamp_s, abs=1e-4)
        assert event["branch"] == str(BRANCH)
        assert event["mode"] == ("detect" if result.detected else "track")
        assert list(event["timings_ms"]) == list(STAGES)
        for stage in STAGES:
            assert event["timings_ms"][stage] == pytest.approx(
                result.timings_ms[stage], abs=1e-3
            )
        assert event["latency_ms"] == pytest.approx(result.latency_ms)
        assert (event["sla_ms"], event["sla_hit"]) == (50.0, result.sla_hit)
        assert event["contention"] == {"cpu": 0.25}
        assert event["predicted"] == {"latency_ms": 33.3333}
        assert event["weights"] == "pretrained"
        boxes = event["detections"]
        d = result.detections
        np.testing.assert_allclose([b["xyxy"] for b in boxes], d.xyxy, atol=0.05)
        np.testing.assert_allclose(
            [b["confidence"] for b in boxes], d.confidence, atol=5e-5
        )
        assert [b["class_id"] for b in boxes] == d.class_id.tolist()
        assert [b["class_name"] for b in boxes] == [COCO_CLASSES[c] for c in d.class_id]
        assert [b["track_id"] for b in boxes] == d.tracker_id.tolist()


def test_event_without_sla_or_sensor_writes_nulls(results, tmp_path):
    plain = FrameResult(
        results[0].frame, Detections.empty(), BRANCH, True, {"infer": float("nan")}, 3.0
    )
    feed(JsonlEventSink(tmp_path / "e.jsonl", stream="cam7"), [plain])
    event = json.loads((tmp_path / "e.jsonl").read_text())
    assert event["stream"] == "cam7"
    assert event["sla_ms"] is event["sla_hit"] is event["contention"] is None
    assert event["timings_ms"]["infer"] is None
    assert event["timings_ms"]["track"] == 0.0
    assert event["detections"] == []


def test_mot_results_file_reads_back_as_the_boxes_fed_in(results, tmp_path):
    feed(MotResultsSink(tmp_path / "results.txt"), results)
    back = read_mot_results(tmp_path / "results.txt")
    expected = Detections.merge(r.detections for r in results)
    frames = np.concatenate([[r.frame.index + 1] * len(r.detections) for r in results])
    assert back.frame.tolist() == frames.tolist()
    assert back.tracker_id.tolist() == expected.tracker_id.tolist()
    np.testing.assert_allclose(back.xyxy, expected.xyxy, atol=0.011)
    np.testing.assert_allclose(back.confidence, expected.confidence, atol=5e-5)


def test_coco_results_file_reads_back_with_classes_and_frame_numbers(results, tmp_path):
    sink = CocoResultsSink(tmp_path / "results.coco.json")
    for result in results:
        sink.write(result)
    assert not (tmp_path / "results.coco.json").exists()  # written on close
    sink.close()
    raw = json.loads((tmp_path / "results.coco.json").read_text())
    assert {entry["category_id"] for entry in raw} == {
        COCO_CATEGORY_IDS[0],
        COCO_CATEGORY_IDS[CAR],
    }
    back = read_coco_results(tmp_path / "results.coco.json")
    expected = Detections.merge(r.detections for r in results)
    assert back.class_id.tolist() == expected.class_id.tolist()
    assert back.frame.tolist() == [
        r.frame.index + 1 for r in results for _ in range(len(r.detections))
    ]
    np.testing.assert_allclose(back.xyxy, expected.xyxy, atol=0.011)


def test_annotated_video_has_every_frame_at_the_timestamps_rate(results, tmp_path):
    feed(AnnotatedVideoSink(tmp_path / "annotated.mp4"), results)
    capture = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(7.0, abs=0.01)
    frames = []
    while (frame := capture.read())[0]:
        frames.append(frame[1])
    assert len(frames) == NUM_FRAMES
    assert frames[0].shape == results[0].frame.image.shape
    # Drawing changed the picture: boxes and banner, not just codec noise.
    difference = np.abs(frames[0].astype(int) - results[0].frame.image).mean()
    assert difference > 1.0


def test_png_frames_are_named_by_frame_number_and_can_be_raw(results, tmp_path):
    feed(PngFramesSink(tmp_path / "annotated"), results[:3])
    feed(PngFramesSink(tmp_path / "raw", annotate=False), results[:3])
    names = sorted(p.name for p in (tmp_path / "annotated").iterdir())
    assert names == ["000001.png", "000002.png", "000003.png"]
    raw = cv2.imread(str(tmp_path / "raw" / "000002.png"))
    np.testing.assert_array_equal(raw, results[1].frame.image)  # PNG is lossless
    drawn = cv2.imread(str(tmp_path / "annotated" / "000002.png"))
    assert not np.array_equal(drawn, results[1].frame.image)


def car_region_change(video_path, results) -> float:
    """Mean change of the first frame around the car box (drawn or not)."""
    ok, frame = cv2.VideoCapture(str(video_path)).read()
    assert ok
    original = results[0].frame.image
    return float(
        np.abs(frame[34:86, 294:366].astype(int) - original[34:86, 294:366]).mean()
    )


def test_class_filter_applies_to_every_sink(results, tmp_path):
    outputs = ["events", "mot", "coco", "video", "frames"]
    (tmp_path / "all").mkdir()
    (tmp_path / "person").mkdir()
    everything = open_sinks(tmp_path / "all", outputs)
    persons = open_sinks(tmp_path / "person", outputs, classes="person")
    for result in results:
        everything.write(result)
        persons.write(result)
    everything.close()
    persons.close()
    out = tmp_path / "person"
    lines = (out / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert {b["class_name"] for e in events for b in e["detections"]} == {"person"}
    num_people = sum(int((r.detections.class_id == 0).sum()) for r in results)
    assert len(read_mot_results(out / "results.txt")) == num_people
    assert set(read_coco_results(out / "results.coco.json").class_id) == {0}
    first = results[0]
    people = first.detections[first.detections.class_id == 0]
    np.testing.assert_array_equal(
        cv2.imread(str(out / "frames" / "000001.png")),
        draw_result(first.frame.image, first, people),
    )
    filtered = car_region_change(out / "annotated.mp4", results)
    unfiltered = car_region_change(tmp_path / "all" / "annotated.mp4", results)
    assert unfiltered > 2 * filtered


def test_writing_after_close_is_an_error_and_closing_twice_is_not(results, tmp_path):
    sink = MotResultsSink(tmp_path / "results.txt")
    sink.close()
    sink.close()
    with pytest.raises(SinkClosedError):
        sink.write(results[0])


def test_multi_sink_closes_every_sink_even_when_one_fails(results, tmp_path):
    class Broken:
        def write(self, result):
            pass

        def close(self):
            raise OSError("disk full")

    events = JsonlEventSink(tmp_path / "events.jsonl")
    sinks = MultiSink([Broken(), events])
    sinks.write(results[0])
    with pytest.raises(OSError, match="disk full"):
        sinks.close()
    assert events.closed
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 1


def test_unknown_outputs_and_classes_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        open_sinks(tmp_path, ["events", "mqtt"])
    with pytest.raises(ValueError, match="unknown COCO class 'peron'"):
        MotResultsSink(tmp_path / "r.txt", classes=["peron"])
    with pytest.raises(ValueError, match=r"ids 0\.\.79"):
        MotResultsSink(tmp_path / "r.txt", classes=[80])
