"""`approxrt` commands end to end on the real PETS video, good input and bad."""

import json

import pytest
from click.testing import CliRunner

from approxrt.branches.space import BranchSpace
from approxrt.cli import main
from approxrt.config import load_config
from approxrt.evaluation.mot_io import read_mot_results


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_run_writes_every_output_for_the_frames_it_read(
    pets_video, models_dir, tmp_path
):
    out = tmp_path / "run"
    result = invoke(
        "run",
        pets_video,
        "--branch",
        "yolox_nano/s320/si4/medianflow/ds2",
        "--models",
        models_dir,
        "--classes",
        "person",
        "--max-frames",
        24,
        "--sla-ms",
        50,
        "--out",
        out,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert "24 frames (6 detected)" in result.output
    events = [
        json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()
    ]
    assert [e["frame_index"] for e in events] == list(range(24))
    assert [e["mode"] for e in events[:5]] == [
        "detect",
        "track",
        "track",
        "track",
        "detect",
    ]
    assert all(e["sla_ms"] == 50 for e in events)
    assert all(d["class_name"] == "person" for e in events for d in e["detections"])
    results = read_mot_results(out / "results.txt")
    assert set(results.frame.tolist()) <= set(range(1, 25)) and len(results) > 24 * 3
    coco = json.loads((out / "results.coco.json").read_text())
    assert {r["category_id"] for r in coco} == {1}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 24 and summary["weights"] == "pretrained"


def test_run_can_switch_branches_mid_video(pets_video, models_dir, tmp_path):
    out = tmp_path / "switch"
    result = invoke(
        "run",
        pets_video,
        "--branch",
        "yolox_nano/s416/si1",
        "--switch",
        "6=yolox_nano/s320/si4/kcf/ds1",
        "--models",
        models_dir,
        "--max-frames",
        14,
        "--out",
        out,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    events = [
        json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()
    ]
    assert [e["branch"] for e in events] == (
        ["yolox_nano/s416/si1"] * 6 + ["yolox_nano/s320/si4/kcf/ds1"] * 8
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--branch", "yolox_nano/s416"], "does not have the shape"),
        (["--branch", "yolo/s416/si1"], "unknown detector 'yolo'"),
        (["--branch", "yolox_nano/s400/si1"], "multiple of 32"),
        (["--branch", "yolox_nano/s416/si4/kfc/ds1"], "unknown tracker 'kfc'"),
        (
            ["--branch", "yolox_nano/s416/si1", "--classes", "persn"],
            "did you mean person",
        ),
        (["--branch", "yolox_nano/s416/si1", "--switch", "x=1"], "FRAME=BRANCH"),
    ],
)
def test_bad_arguments_exit_non_zero_with_the_reason_and_write_nothing(
    pets_video, models_dir, tmp_path, args, message
):
    out = tmp_path / "never"
    result = invoke("run", pets_video, *args, "--models", models_dir, "--out", out)
    assert result.exit_code != 0
    assert message in result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_missing_video_is_refused_before_any_output(models_dir, tmp_path):
    out = tmp_path / "never"
    result = invoke(
        "run",
        tmp_path / "nope.avi",
        "--branch",
        "yolox_nano/s416/si1",
        "--models",
        models_dir,
        "--out",
        out,
    )
    assert result.exit_code != 0 and "nope.avi" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_model_is_refused_before_any_output(pets_video, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "yolox_nano.onnx").write_bytes(b"not a model" * 100)
    out = tmp_path / "never"
    result = invoke(
        "run",
        pets_video,
        "--branch",
        "yolox_nano/s416/si1",
        "--models",
        models,
        "--out",
        out,
    )
    assert result.exit_code != 0
    assert "yolox_nano" in result.output
    assert not out.exists()


def test_a_non_empty_output_folder_is_not_clobbered(pets_video, models_dir, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = invoke(
        "run",
        pets_video,
        "--branch",
        "yolox_nano/s320/si1",
        "--models",
        models_dir,
        "--max-frames",
        2,
        "--out",
        out,
    )
    assert result.exit_code != 0 and "not empty" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_eval_scores_a_run_against_the_ground_truth(
    pets_video, pets_gt, models_dir, tmp_path
):
    out = tmp_path / "run"
    invoke(
        "run",
        pets_video,
        "--branch",
        "yolox_nano/s320/si1",
        "--models",
        models_dir,
        "--classes",
        "person",
        "--max-frames",
        30,
        "--out",
        out,
        "--no-progress",
    )
    report = tmp_path / "report.json"
    result = invoke("eval", pets_gt, out, "--json", report)
    assert result.exit_code == 0, result.output
    scores = json.loads(report.read_text())
    assert "person" in result.output and "MOTA" in result.output
    # Only the 30 frames the run read are scored (summary.json's frame_range).
    assert scores["num_frames"] == 30
    assert scores["per_class"]["person"]["ap50"] > 0.75
    assert 0 < scores["mot"]["mota"] <= 1


def test_branches_lists_the_configured_space():
    result = invoke("branches", "--detector", "yolox_nano")
    names = result.stdout.strip().splitlines()
    space = BranchSpace.from_config(load_config(), ["yolox_nano"])
    assert names == [str(b) for b in space]
    assert invoke("branches", "--count").stdout.strip() == str(
        len(BranchSpace.from_config(load_config()))
    )


def test_a_model_that_cannot_be_downloaded_is_refused_with_the_url(
    pets_video, monkeypatch, tmp_path
):
    monkeypatch.delenv("APPROXRT_MODELS", raising=False)
    monkeypatch.setenv("APPROXRT_CACHE", str(tmp_path / "cache"))
    # Nothing listens on the discard port: the connection is refused at once.
    url = "http://127.0.0.1:9/yolox_nano.onnx"
    monkeypatch.setenv("APPROXRT_MODEL_URL_YOLOX_NANO", url)
    out = tmp_path / "never"
    result = invoke("run", pets_video, "--branch", "yolox_nano/s416/si1", "--out", out)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "'yolox_nano'" in result.output and url in result.output
    assert "--models" in result.output
    assert not out.exists()
