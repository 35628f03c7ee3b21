"""Importing approxrt keeps OpenBLAS to one thread unless the user chose."""

import os
import subprocess
import sys

CHECK = "import approxrt, os; print(os.environ['OPENBLAS_NUM_THREADS'])"


def run(env):
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True)
    return out.stdout.decode().strip()


def test_one_openblas_thread_by_default_and_the_users_choice_kept():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    assert run(env) == "1"
    assert run({**env, "OPENBLAS_NUM_THREADS": "4"}) == "4"
