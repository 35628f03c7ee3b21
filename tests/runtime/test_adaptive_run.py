"""`approxrt run --sla-ms` without a branch: the scheduler in the real loop."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hand_profile import SPACE_YAML, latency_model, space, write_profile

from approxrt.adaptive import calibration_config, load_run_models
from approxrt.cli import main
from approxrt.config import load_config


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def hand_profile_dir(tmp_path):
    return write_profile(tmp_path / "profile").path


@pytest.fixture
def small_config(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SPACE_YAML)
    return path


@pytest.fixture
def run_adaptive(pets_video, models_dir, hand_profile_dir, small_config):
    """``approxrt run`` over PETS with the hand profile; its events, once it passed."""

    def run(sla_ms, max_frames, out, *extra):
        args = ["run", pets_video, "--sla-ms", sla_ms, "--profile", hand_profile_dir]
        args += ["--config", small_config, "--models", models_dir, *extra]
        args += ["--max-frames", max_frames, "--out", out, "--no-progress"]
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in (out / "events.jsonl").open()]

    return run


def test_every_decision_is_logged_with_its_prediction_and_the_sla_holds_the_choice(
    run_adaptive, tmp_path
):
    out = tmp_path / "run"
    events = run_adaptive(6, 40, out, "--classes", "person")
    decisions = [e for e in events if e["mode"] == "detect"]
    candidates = {str(b) for b in space()}
    assert {e["branch"] for e in events} <= candidates
    for event in decisions[1:]:  # the first decision knows nothing of the scene
        predicted = event["predicted"]
        # Under load (measured latency feeds back) none may fit: the fastest runs.
        # (Events round to 4 decimals: a plan within 0.01 ms of the SLA is not judged.)
        planned_ms = predicted["latency_ms"] * predicted["margin"]
        if abs(planned_ms - 6) > 0.01:
            assert predicted["fits"] == float(planned_ms < 6)
        assert 0 < predicted["accuracy"] <= 1 and predicted["scheduler_ms"] > 0
        assert {"cpu", "slowdown_detect", "slowdown_track"} <= set(event["contention"])
    # The first group is a lone detection frame: nothing is known of the scene.
    assert events[0]["branch"].endswith("/si1") and events[1]["mode"] == "detect"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sla_ms"] == 6 and summary["gof_sla_violation_rate"] is not None
    assert sum(summary["branches"].values()) == 40


def test_a_changed_sla_changes_the_plan(run_adaptive, tmp_path):
    mean_ms = {}
    for sla_ms in (4, 30):
        events = run_adaptive(sla_ms, 30, tmp_path / f"sla{sla_ms}")
        mean_ms[sla_ms] = sum(
            e["predicted"]["latency_ms"] for e in events if e["mode"] == "detect"
        )
    # 30 ms fits s416 every frame (8.3 ms in the profile): the plan is dearer.
    assert mean_ms[30] > mean_ms[4]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-frames", 2], "give --branch NAME (fixed) or --sla-ms MS"),
        (["--branch", "yolox_nano/s320/si1", "--profile", "."], "drop --branch"),
        (["--sla-ms", 10, "--switch", "4=yolox_nano/s320/si1"], "give --branch too"),
    ],
)
def test_a_run_that_is_neither_fixed_nor_adaptive_is_refused(
    pets_video, models_dir, tmp_path, args, message
):
    out = tmp_path / "run"
    result = invoke("run", pets_video, "--models", models_dir, "--out", out, *args)
    assert result.exit_code != 0 and message in result.output
    assert not out.exists()


def test_a_cached_calibration_is_reused_with_the_shipped_accuracy(tmp_path):
    config = load_config().replace(cache_dir=str(tmp_path / "cache"))
    from approxrt.adaptive import _cache_root, _calibration_key

    key = _calibration_key(calibration_config(config))
    folder = _cache_root(config) / "calibration" / key / "models"
    folder.mkdir(parents=True)
    (folder / "branch_latency.json").write_text(json.dumps(latency_model().to_dict()))
    models, origin = load_run_models(config, None, None, progress=False)
    assert "calibration" in origin and "shipped accuracy profile" in origin
    # The shipped accuracy covers PETS-profiled branches of the default space.
    assert models.accuracy_table is not None and models.content_light is not None
    assert "yolox_nano/s416/si1" in models.accuracy_table.branches_


def test_a_calibration_is_kept_apart_per_detector_thread_count():
    from approxrt.adaptive import _calibration_key

    default = calibration_config(load_config())
    one_thread = calibration_config(load_config().replace(num_threads=1))
    # One thread took 0.52-1.33x the default's time here (threads.md).
    assert _calibration_key(default) != _calibration_key(one_thread)
    assert _calibration_key(default) == _calibration_key(
        calibration_config(load_config())
    )


def test_the_quick_calibration_narrows_the_profile_to_the_shipped_kernels():
    calibration = calibration_config(load_config())
    assert calibration.profile.cpu_levels == [0.0, 2.0]
    assert calibration.profile.validation_branches == 0
    assert set(calibration.detectors) <= {"yolox_nano", "nanodet_m", "fastestdet"}
    assert "frcnn_r50" not in calibration.detectors
