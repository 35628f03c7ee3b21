"""`approxrt bench adaptive` on a tiny scenario: every policy scored alike."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hand_profile import SPACE_YAML, write_profile

from approxrt.bench.scenario import load_scenario
from approxrt.cli import main
from approxrt.config import load_config

SPIN = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"

CROWD = (
    "synthetic:objects=2,enter_rate=0.6,enter_until=20,speed=3-6,size=40-90,"
    "bounce=false,frames=45,seed=3"
)
SCENARIO = {
    "videos": [{"name": "crowd", "source": CROWD}],
    "slas_ms": [15],
    "camera_fps": 30,
    "contention": {
        "none": {"slas_ms": [6, 15]},
        "spinner": {
            "program": {
                "command": [sys.executable, "-c", SPIN],
                "at_s": 0.3,
                "until_s": 1.2,
            }
        },
    },
    "default_branch": "yolox_nano/s416/si1",
    "fixed": ["yolox_nano/s224/si1"],
    "segment_frames": 15,
    "settle_s": 0.1,
}


@pytest.fixture
def bench_inputs(tmp_path):
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO))
    (tmp_path / "space.yaml").write_text(SPACE_YAML)
    write_profile(tmp_path / "profile")
    return tmp_path


def test_every_policy_is_scored_on_every_scenario_and_sla(bench_inputs, models_dir):
    out = bench_inputs / "out"
    args = ["bench", "adaptive", bench_inputs / "scenario.yaml", "--out", out]
    args += ["--profile", bench_inputs / "profile", "--models", models_dir]
    args += ["--config", bench_inputs / "space.yaml"]
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out / "results.csv")
    cells = rows.groupby(["contention", "sla_ms"]).policy.apply(set).to_dict()
    assert set(cells) == {("none", 6), ("none", 15), ("spinner", 15)}
    for policies in cells.values():
        assert {"adaptive", "approxdet-style", "oracle"} <= policies
        assert {"fixed:yolox_nano/s416/si1", "fixed:yolox_nano/s224/si1"} <= policies
    assert rows.frames.eq(45).all() or (rows.dropped_frames > 0).any()
    assert rows.ap50.between(0, 1).all() and rows.streaming_ap50.between(0, 1).all()
    # Timings depend on the machine; what holds anywhere: one decision per
    # group, a real scheduler time for the live policies, none for the oracle.
    oracle = rows[rows.policy == "oracle"]
    assert (oracle.scheduler_ms == 0).all() and (oracle.dropped_frames == 0).all()
    adaptive = rows[rows.policy == "adaptive"]
    assert (adaptive.scheduler_ms > 0).all()
    # Which branches ran: a fixed policy ran its one branch on every frame.
    fixed = rows[rows.policy == "fixed:yolox_nano/s416/si1"]
    assert (fixed.top_branches == "yolox_nano/s416/si1 100%").all()
    assert adaptive.top_branches.str.contains("%").all()
    report = (out / "adaptive.md").read_text()
    assert "approxrt bench adaptive" in report and "## Checks" in report
    assert (
        list(out.glob("timeline_*.png"))
        and (out / "accuracy_vs_violations.png").exists()
    )


def test_a_bad_scenario_names_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("videos: []\nslas_ms: [10]\ncontention: {none: {}}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: videos: .*at least 1"):
        load_scenario(path)
    path.write_text("videos: [{name: a, source: x}]\nslas_ms: [10]\ncontention: {}\n")
    with pytest.raises(ValueError, match="contention"):
        load_scenario(path)
    path.write_text(
        "videos: [{name: a, source: x}]\nslas_ms: [10]\ncontention: {none: {}}\n"
        "default_branch: yolox/s416\n"
    )
    with pytest.raises(ValueError, match="yolox/s416"):
        load_scenario(path)


class RecordingGenerator:
    """Stands in for `ContentionGenerator`: records what the bench asks of it."""

    def __init__(self, settle_s: float = 2.0, backend: str = "auto") -> None:
        self.backend = backend
        self.started: list = []
        self.levels: list = []

    def start_loads(self, levels) -> None:
        self.started += levels

    def set(self, levels) -> None:
        self.levels.append(levels)

    def close(self) -> None:
        pass


def test_gpu_steps_start_the_gpu_load_first_and_reach_the_generator(
    tmp_path, monkeypatch
):
    from approxrt.bench import adaptive
    from approxrt.bench.contention_driver import ContentionDriver
    from approxrt.contention import ContentionLevels
    from approxrt.profiler import contention

    scenario = {
        **SCENARIO,
        "contention": {
            "none": {},
            "gpu_steps": {
                "steps": [{"at_s": 0}, {"at_s": 1, "gpu_pct": 25}, {"at_s": 2}]
            },
        },
    }
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    loaded, _ = load_scenario(tmp_path / "scenario.yaml")
    monkeypatch.setattr(contention, "ContentionGenerator", RecordingGenerator)
    generator = adaptive._generator(loaded, "builtin")
    assert generator.backend == "builtin"  # the CPU load the profile had
    assert ContentionLevels(gpu_pct=25) in generator.started
    with ContentionDriver(loaded.contention["gpu_steps"], generator) as driver:
        driver.advance(1.5)
    assert generator.levels == [
        ContentionLevels(),
        ContentionLevels(gpu_pct=25),
        ContentionLevels(),  # the driver idles the generator when it closes
    ]


def test_the_bench_loads_the_cpu_as_the_profile_did(tmp_path):
    from approxrt.adaptive import settings_from_profile

    store = write_profile(tmp_path / "profile")
    config = load_config()
    assert settings_from_profile(config, store.path) == config  # none recorded
    other = "builtin" if config.profile.cpu_backend != "builtin" else "stress-ng"
    store.record_step("latency", 1.0, cpu_backend=other)
    loaded = settings_from_profile(config, store.path)
    assert loaded.profile.cpu_backend == other


def test_a_run_takes_the_thread_count_its_profile_was_timed_on(tmp_path, caplog):
    from approxrt.adaptive import settings_from_profile

    store = write_profile(tmp_path / "profile", num_threads=1)
    config = load_config()
    assert config.num_threads == 0  # the library's default, unlike the profile
    with caplog.at_level("WARNING", logger="approxrt.adaptive"):
        loaded = settings_from_profile(config, store.path)
    assert loaded.num_threads == 1
    assert "num_threads 0 -> 1" in caplog.text
    assert loaded.replace(num_threads=0) == config  # nothing else changed
