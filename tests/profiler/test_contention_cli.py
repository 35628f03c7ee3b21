"""`approxrt contend`: readings printed while it runs, bad values named by option."""

import re

import pytest
from click.testing import CliRunner

from approxrt.cli import main
from approxrt.profiler.contention.processes import cores_from_last
from approxrt.profiler.contention.stressng import find_stress_ng

LINE = re.compile(
    r"^ +(?P<at_s>[\d.]+) s  asked cpu=(?P<asked_cpu>[\d.]+),membw=(?P<asked_membw>\d+)"
    r",gpu=0  reached cpu=(?P<cpu>[\d.]+) cores \(machine (?P<busy_pct>\d+)% busy\), "
    r"membw=(?P<membw>\d+) MB/s \(\+[\d.]+ cores\), gpu=0%$"
)


def invoke(*args):
    return CliRunner().invoke(main, ["contend", *map(str, args)])


def readings(output: str) -> list[dict[str, float]]:
    lines = [LINE.match(line) for line in output.splitlines() if " asked " in line]
    assert lines and all(lines), output
    return [{k: float(v) for k, v in m.groupdict().items()} for m in lines]


def test_contend_prints_asked_and_reached_levels_every_interval():
    result = invoke(
        "--cpu", 1, "--membw", 400, "--backend", "builtin", "--settle", 0.2,
        "--interval", 0.4, "--duration", 1.5,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = readings(result.stdout)
    assert len(printed) == 3 and printed[-1]["at_s"] <= 1.7
    assert all(r["asked_cpu"] == 1 and r["asked_membw"] == 400 for r in printed)
    assert all(r["cpu"] <= 1.2 and 300 <= r["membw"] <= 500 for r in printed)
    # Short windows on a shared machine: about one core, or a machine full.
    assert all(r["cpu"] >= 0.6 or r["busy_pct"] >= 95 for r in printed)
    assert "CPU load from builtin, settle 0.2 s" in result.stderr


def test_contend_plays_a_trace_file_to_its_end(tmp_path):
    trace = tmp_path / "steps.yaml"
    trace.write_text("- {at_s: 0, cpu: 0.5}\n- {at_s: 0.8, cpu: 1}\n- {at_s: 1.6}\n")
    result = invoke(
        "--trace", trace, "--backend", "builtin", "--settle", 0.1, "--interval", 0.35
    )
    assert result.exit_code == 0, result.output
    printed = readings(result.stdout)
    asked = [r["asked_cpu"] for r in printed]
    assert asked == sorted(asked) and set(asked) == {0.5, 1.0}
    assert 1.5 <= printed[-1]["at_s"] <= 1.9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cpu", -1], "Invalid value for '--cpu'"),
        (["--cpu", len(cores_from_last()) + 1], "Invalid value for --cpu: "),
        (["--membw", "fast"], "Invalid value for '--membw'"),
        (["--gpu", 101], "Invalid value for '--gpu'"),
        (["--backend", "stressng"], "Invalid value for '--backend'"),
        (["--interval", 0], "Invalid value for '--interval'"),
        (["--duration", 0], "Invalid value for '--duration'"),
        (["--trace", "missing.csv"], "Invalid value for '--trace'"),
    ],
)
def test_bad_values_are_click_errors_naming_the_option(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_bad_trace_file_is_named_with_its_line(tmp_path):
    trace = tmp_path / "steps.csv"
    trace.write_text("at_s,cpu\n0,1\n0,2\n")
    result = invoke("--trace", trace)
    assert result.exit_code == 2
    assert "Invalid value for --trace" in result.output
    assert "steps.csv:3: at_s=0 comes after at_s=0" in result.output


def test_a_trace_excludes_level_options(tmp_path):
    trace = tmp_path / "steps.csv"
    trace.write_text("at_s,cpu\n0,1\n")
    result = invoke("--trace", trace, "--cpu", 1, "--membw", 10)
    assert result.exit_code == 2
    assert "--trace sets the levels; drop --cpu, --membw" in result.output


def test_gpu_load_without_cuda_names_the_option():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    result = invoke("--gpu", 20, "--duration", 1)
    assert result.exit_code == 2
    assert "Invalid value for --gpu" in result.output
    assert "CUDA device" in result.output


@pytest.mark.skipif(find_stress_ng() is not None, reason="stress-ng is on PATH")
def test_the_stress_ng_backend_without_stress_ng_names_the_option():
    result = invoke("--backend", "stress-ng", "--cpu", 1, "--duration", 1)
    assert result.exit_code == 2
    assert "Invalid value for --backend: stress-ng is not on PATH" in result.output
