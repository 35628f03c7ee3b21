"""The control API fuzzed from its own OpenAPI schema (schemathesis): no request,
however odd, gets a 500 from the running daemon."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hand_profile import write_profile
from serve_parts import BRANCH


def test_no_request_from_the_schema_gets_a_server_error(
    daemons, pets_video, models_dir, tmp_path
):
    cli = shutil.which("schemathesis") or str(Path(sys.executable).parent / "st")
    if not Path(cli).exists():
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    stream = {"id": "a", "source": str(pets_video), "branch": BRANCH, "loop": True}
    # Adaptive streams the fuzzer adds plan from a small profile: without one the
    # daemon's first adaptive stream would calibrate for a minute in the background.
    profile = write_profile(tmp_path / "profile").path
    daemon = daemons(
        {"models": str(models_dir), "profile": str(profile), "streams": [stream]}
    )
    run = subprocess.run(
        [
            cli,
            "run",
            f"http://127.0.0.1:{daemon.port}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "20",
            "--seed",
            "9",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # schemathesis keeps a cache folder where it runs
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert " passed" in run.stdout
    assert daemon.client.get("/health").status_code == 200
