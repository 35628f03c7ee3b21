"""Accuracy workers end with the process that started them, even on SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil

PARENT = textwrap.dedent(
    """
    import json, sys
    from approxrt.config import load_config
    from approxrt.profiler.workers import Job, JobRunner

    if __name__ == "__main__":
        config = load_config(models_dir=sys.argv[1], download=False).model_dump()
        # A job that keeps a worker busy for minutes: a long synthetic scene.
        busy = Job(
            "approxrt.profiler.detection_cache:detect_task",
            {
                "source": "synthetic:objects=5,frames=100000,width=640,height=480",
                "max_frames": None,
                "config": config,
                "detector": "yolox_nano",
                "input_size": 224,
                "proposals": None,
            },
            "busy",
        )
        print(json.dumps("started"), flush=True)
        with JobRunner(workers=2, progress=False) as runner:
            runner.run([busy, busy])
    """
)


def _workers_of(parent: psutil.Process) -> list[psutil.Process]:
    return [c for c in parent.children() if "spawn_main" in " ".join(c.cmdline())]


def test_busy_workers_end_after_a_sigkill_of_their_parent(models_dir, tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script), str(models_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert json.loads(parent.stdout.readline()) == "started"
        process = psutil.Process(parent.pid)
        deadline = time.monotonic() + 60
        workers = []
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = _workers_of(process)
            time.sleep(0.2)
        assert len(workers) == 2, "the pool started no workers"
        time.sleep(3)  # let them load the model and start on the long scene
        assert all(w.is_running() for w in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"workers outlived their parent: {[w.pid for w in alive]}"
    finally:
        if parent.poll() is None:
            parent.kill()
        for child in psutil.Process().children(recursive=True):
            child.kill()
