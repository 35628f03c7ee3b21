"""`python -m approxrt.serve.joint_bench` on a tiny run: two adaptive streams,
a few seconds in each mode, every stream scored from its events."""

from __future__ import annotations

import re

from click.testing import CliRunner
from hand_profile import write_profile

from approxrt.serve.joint_bench import main


def test_both_modes_run_and_every_stream_is_scored(tmp_path, models_dir, pets_video):
    profile = write_profile(tmp_path / "profile").path
    report = tmp_path / "joint.md"
    args = ["--models", str(models_dir), "--profile", str(profile)]
    args += ["--video", str(pets_video), "--streams", "2", "--sla-ms", "40"]
    args += ["--seconds", "4", "--report", str(report)]
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    rows = re.findall(
        r"^\| (together|alone) #1 \| (cam\d) \| (\d+) \|", report.read_text(), re.M
    )
    assert {(mode, cam) for mode, cam, _ in rows} == {
        (mode, cam) for mode in ("together", "alone") for cam in ("cam0", "cam1")
    }
    assert all(int(frames) > 0 for _, _, frames in rows)
    slowdowns = re.findall(
        r"^\| together #1 \| cam\d \|.*\| ([\d.]+) \| \d+ \|$", report.read_text(), re.M
    )
    assert [float(s) > 1.0 for s in slowdowns] == [True, True]  # each sees the other
