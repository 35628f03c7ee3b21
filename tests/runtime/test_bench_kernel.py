"""`approxrt bench kernel` on a slice of the real PETS video, and the Pareto front."""

import json

from click.testing import CliRunner

from approxrt.bench.kernel_report import pareto_front
from approxrt.cli import main


def test_pareto_front_keeps_only_points_nothing_beats_on_both_axes():
    points = [(10.0, 0.8), (5.0, 0.6), (7.0, 0.5), (20.0, 0.9), (12.0, 0.7)]
    # (7, 0.5) loses to (5, 0.6); (12, 0.7) loses to (10, 0.8).
    assert pareto_front(points) == [1, 0, 3]


def test_bench_kernel_measures_accuracy_latency_and_switching(
    pets_video, pets_gt, models_dir, tmp_path
):
    config = tmp_path / "small.yaml"
    config.write_text(
        "input_sizes: {yolox_nano: [224], frcnn_mbv3: [224]}\n"
        "proposals: [10]\n"
        "trackers: [medianflow, mosse]\n"
    )
    out = tmp_path / "bench"
    args = [
        "bench", "kernel", "--video", pets_video, "--gt", pets_gt,
        "--models", models_dir, "--out", out, "--config", config,
        "--detectors", "yolox_nano", "--sampling-intervals", "4",
        "--downsamples", "2", "--extra", "", "--random-detectors", "frcnn_mbv3",
        "--random-frames", "3", "--max-frames", "170", "--repeats", "2",
    ]  # fmt: skip
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output

    results = json.loads((out / "kernel.json").read_text())
    rows = {r["branch"]: r for r in results["rows"]}
    assert set(rows) == {
        "yolox_nano/s224/si1",
        "yolox_nano/s416/si4/medianflow/ds2",
        "yolox_nano/s416/si4/mosse/ds2",
    }
    assert results["frames"] == 170 and results["repeats"] == 2
    # Real accuracy on real video, scored by both scorers, which agree.
    every_frame = rows["yolox_nano/s224/si1"]
    assert every_frame["ap50"] > 0.6
    assert abs(every_frame["ap50"] - every_frame["coco_ap50"]) < 0.02
    for row in rows.values():
        low, high = row["mean_ms_range"]
        assert row["rounds"] == 2 and low <= row["mean_ms"] <= high
        parts_ms = (
            row["detector_ms_per_frame"]
            + row["associate_ms_per_frame"]
            + row["tracker_ms_per_frame"]
            + row["overhead_ms"]
        )
        assert 0 <= row["overhead_ms"] < row["mean_ms"]
        assert abs(parts_ms - row["mean_ms"]) < 0.05 * row["mean_ms"]
    tracked = rows["yolox_nano/s416/si4/medianflow/ds2"]
    assert tracked["tracker_ms_per_frame"] > 0
    # Association is its own stage: a branch with no tracker spends none on "track".
    assert every_frame["tracker_ms_per_frame"] == 0
    assert every_frame["associate_ms_per_frame"] > 0

    (random_row,) = results["random_weight_rows"]
    assert random_row["branch"] == "frcnn_mbv3/s224/p10/si1"
    assert random_row["weights"] == "random" and random_row["ap50"] is None

    # Every branch of the switching schedule got at least one switch into it.
    switching = results["switching"]["per_branch"]
    assert len(switching) == 4 and all(s["switches"] >= 1 for s in switching.values())

    report = (out / "kernel.md").read_text()
    assert "RANDOM WEIGHTS" in report and "`yolox_nano/s224/si1`" in report
    # The report names the command that reruns it, with exactly the options given.
    assert "\napproxrt bench kernel --video " in report
    assert "--extra '' " in report and "--max-frames 170 --repeats 2 " in report
    assert (out / "kernel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
