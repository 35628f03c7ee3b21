"""The daemon as a user meets it: a subprocess, its HTTP API, real video, signals."""

import json

import pytest
from serve_parts import BRANCH, free_port, wait_until

OTHER_BRANCH = "yolox_nano/s256/si2/kcf/ds2"


def _file_stream(stream_id, pets_video, out, **extra):
    return {
        "id": stream_id,
        "source": str(pets_video),
        "branch": BRANCH,
        "classes": ["person"],
        "out": str(out / stream_id),
        "loop": True,
        **extra,
    }


def _processed(daemon, stream_id):
    return daemon.stream(stream_id)["frames_processed"]


def _grows(daemon, stream_id, by=3, timeout_s=20.0):
    start = _processed(daemon, stream_id)
    wait_until(
        lambda: _processed(daemon, stream_id) >= start + by,
        timeout_s,
        f"stream {stream_id} to process {by} more frames",
    )


@pytest.fixture
def daemon(daemons, pets_video, models_dir, tmp_path):
    return daemons(
        {
            "models": str(models_dir),
            "streams": [_file_stream("a", pets_video, tmp_path)],
        }
    )


def test_streams_are_added_changed_and_removed_without_touching_the_others(
    daemon, pets_video, tmp_path
):
    api = daemon.client
    assert api.get("/health").json() == {"status": "ok"}
    assert "/streams/{stream_id}" in api.get("/openapi.json").json()["paths"]
    _grows(daemon, "a")

    added = api.post("/streams", json=_file_stream("b", pets_video, tmp_path))
    assert added.status_code == 201, added.text
    assert {s["id"] for s in api.get("/streams").json()} == {"a", "b"}
    _grows(daemon, "b")

    paused = api.post("/streams/a/pause").json()
    assert paused["state"] == "paused"
    held = _processed(daemon, "a")
    _grows(daemon, "b")
    assert _processed(daemon, "a") <= held + 1  # at most the frame in hand
    assert api.post("/streams/a/resume").json()["state"] != "paused"
    _grows(daemon, "a")

    switched = api.put("/streams/a/branch", json={"branch": OTHER_BRANCH})
    assert switched.status_code == 200 and switched.json()["branch"] == OTHER_BRANCH
    assert api.put("/streams/a/sla", json={"sla_ms": 33}).json()["sla_ms"] == 33
    wait_until(
        lambda: (
            f'approxrt_stream_branch{{branch="{OTHER_BRANCH}",stream="a"}} 1.0'
            in api.get("/metrics").text
        ),
        20,
        "the new branch in /metrics",
    )

    removed = api.delete("/streams/b")
    assert removed.status_code == 200
    assert api.get("/streams/b").status_code == 404
    _grows(daemon, "a")
    metrics = api.get("/metrics").text
    assert 'approxrt_frames_processed_total{stream="a"}' in metrics
    assert 'stream="b"' not in metrics


def test_bad_requests_get_clear_errors_and_disturb_no_stream(
    daemon, pets_video, tmp_path
):
    api = daemon.client
    _grows(daemon, "a")
    cases = {
        "repeated id": (
            api.post("/streams", json=_file_stream("a", pets_video, tmp_path)),
            409,
            "exists already",
        ),
        "unknown branch": (
            api.post(
                "/streams",
                json={
                    **_file_stream("c", pets_video, tmp_path),
                    "branch": "yolox_nano/s333/si4/kcf/ds2",
                },
            ),
            422,
            "input_size 333",
        ),
        "unknown class": (
            api.post(
                "/streams",
                json={**_file_stream("c", pets_video, tmp_path), "classes": ["persn"]},
            ),
            422,
            "persn",
        ),
        "missing file": (
            api.post(
                "/streams",
                json={
                    **_file_stream("c", pets_video, tmp_path),
                    "source": str(tmp_path / "none.mp4"),
                },
            ),
            422,
            "none.mp4",
        ),
        "unknown key": (
            api.post(
                "/streams", json={**_file_stream("c", pets_video, tmp_path), "fps": 3}
            ),
            422,
            "fps",
        ),
        "malformed json": (
            api.post(
                "/streams",
                content=b"{id: x",
                headers={"content-type": "application/json"},
            ),
            422,
            "JSON",
        ),
        "huge body": (
            api.post(
                "/streams",
                content=b"x" * 200_000,
                headers={"content-type": "application/json"},
            ),
            413,
            "too large",
        ),
        "no such stream": (api.delete("/streams/zzz"), 404, "zzz"),
        "bad branch change": (
            api.put("/streams/a/branch", json={"branch": "nope"}),
            422,
            "nope",
        ),
    }
    for name, (response, status, words) in cases.items():
        assert response.status_code == status, (name, response.text)
        assert words in response.text, (name, response.text)
    assert [s["id"] for s in api.get("/streams").json()] == ["a"]
    assert daemon.stream("a")["state"] == "running"
    _grows(daemon, "a")


def test_camera_credentials_never_show(daemon):
    api = daemon.client
    secret_source = f"rtsp://cam:s3cretpw@127.0.0.1:{free_port()}/live"
    added = api.post(
        "/streams", json={"id": "cam", "source": secret_source, "branch": BRANCH}
    )
    assert added.status_code == 201, added.text
    wait_until(
        lambda: daemon.stream("cam")["reconnects"] >= 2, 30, "reconnect attempts"
    )
    shown = [
        added.text,
        api.get("/streams").text,
        api.get("/streams/cam").text,
        api.get("/metrics").text,
        daemon.log(),
    ]
    assert "rtsp://***@127.0.0.1" in api.get("/streams/cam").text
    for text in shown:
        assert "s3cretpw" not in text
    assert 'approxrt_reconnects_total{stream="cam"}' in shown[3]


def test_sigterm_drains_every_stream_and_exits_0(daemon, tmp_path):
    _grows(daemon, "a", by=10)
    assert daemon.terminate() == 0
    lines = (tmp_path / "a" / "events.jsonl").read_text().splitlines()
    indices = [json.loads(line)["frame_index"] for line in lines]
    assert len(indices) >= 10
    assert indices == list(range(len(indices)))


def test_a_token_guards_everything_but_the_probes(daemons, tmp_path):
    daemon = daemons({"streams": []}, env={"APPROXRT_API_TOKEN": "tok-123"})
    api = daemon.client
    assert api.get("/health").status_code == 200
    assert api.get("/streams").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert api.get("/streams", headers=wrong).status_code == 401
    right = {"Authorization": "Bearer tok-123"}
    assert api.get("/streams", headers=right).json() == []
    assert api.get("/metrics", headers=right).status_code == 200


def test_a_file_read_once_leaves_scorable_results(
    daemons, pets_video, models_dir, tmp_path
):
    import cv2

    clip = tmp_path / "clip.avi"
    capture = cv2.VideoCapture(str(pets_video))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 20, (480, 360))
    for _ in range(30):
        writer.write(capture.read()[1])
    writer.release()
    capture.release()
    out = tmp_path / "once"
    stream = {
        "id": "once",
        "source": str(clip),
        "branch": BRANCH,
        "classes": ["person"],
        "out": str(out),
    }
    daemon = daemons({"models": str(models_dir), "streams": [stream]})
    wait_until(lambda: daemon.stream("once")["state"] == "finished", 30, "the clip end")
    processed = daemon.stream("once")["frames_processed"]
    assert processed == 30
    mot_frames = {int(line.split(",")[0]) for line in (out / "results.txt").open()}
    assert mot_frames <= set(range(1, 31)) and len(mot_frames) > 20
    coco = json.loads((out / "results.coco.json").read_text())
    assert {box["image_id"] for box in coco} == mot_frames
    assert len((out / "events.jsonl").read_text().splitlines()) == 30
