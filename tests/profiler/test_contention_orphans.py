"""No load process outlives its parent: SIGKILL, SIGTERM and Ctrl-C, for real."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from approxrt.profiler.contention.stressng import find_stress_ng

PARENT = """
import json, sys, time
import psutil
from approxrt.contention import ContentionLevels
from approxrt.profiler.contention import ContentionGenerator

generator = ContentionGenerator(settle_s=0.2, backend=sys.argv[1])
generator.set(ContentionLevels(cpu=1.5, membw_mbps=300))
children = [p.pid for p in psutil.Process().children(recursive=True)]
print(json.dumps({"children": children, "loads": generator.pids()}), flush=True)
time.sleep(120)
"""
CLI = "from approxrt.cli import main; main(prog_name='approxrt')"
BACKENDS = [
    "builtin",
    pytest.param(
        "stress-ng",
        marks=pytest.mark.skipif(
            find_stress_ng() is None,
            reason="stress-ng is not on PATH (apt-get install stress-ng)",
        ),
    ),
]


def running(pid: int) -> bool:
    """Alive and not a zombie (an ended process its new parent hasn't reaped)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_all_end(pids: list[int], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in pids if running(pid)]
    for pid in left:  # don't leave them to the rest of the test session
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running {within_s:g} s after the parent ended: {left}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_of_the_parent_ends_every_load_process(backend):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, backend], stdout=subprocess.PIPE, text=True
    )
    try:
        started = json.loads(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait(10)
    children = started["children"]
    # CPU workers (2 builtin; stress-ng: 2 instances + 2 workers) and memory.
    assert set(started["loads"]) <= set(children) and len(started["loads"]) >= 3
    assert_all_end(children, within_s=5)


def start_contend(*extra: str) -> tuple[subprocess.Popen, list[int]]:
    """`approxrt contend` with CPU and memory load, once it prints a reading."""
    levels = ["--cpu", "1", "--membw", "300", "--settle", "0.2", "--interval", "0.3"]
    cli = subprocess.Popen(
        [sys.executable, "-c", CLI, "contend", *levels, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = cli.stdout.readline()
    assert "reached cpu=" in line, line + cli.stderr.read()
    return cli, [p.pid for p in psutil.Process(cli.pid).children(recursive=True)]


@pytest.mark.parametrize(
    ("signum", "by"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")]
)
def test_contend_ends_every_load_process_on_sigterm_and_ctrl_c(signum, by):
    cli, children = start_contend("--backend", "builtin")
    assert len(children) >= 2
    cli.send_signal(signum)
    _, stderr = cli.communicate(timeout=15)
    assert cli.returncode == 128 + signum
    assert f"stopped by {by}; every load process ended" in stderr
    assert "Traceback" not in stderr
    assert_all_end(children, within_s=5)


def test_a_killed_contend_leaves_no_load_process_behind():
    cli, children = start_contend()
    cli.kill()
    cli.wait(10)
    assert_all_end(children, within_s=5)
