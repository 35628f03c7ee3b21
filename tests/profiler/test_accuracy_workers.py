"""Profiling jobs: plain data in, results in job order out, failures named."""

import os

import pytest

from approxrt.profiler.replay import segment_bounds
from approxrt.profiler.workers import (
    Job,
    JobError,
    JobRunner,
    resolve_workers,
    run_jobs,
)

TASK = "approxrt.profiler.replay:segment_bounds"


def bounds_job(frames: int, cost: float = 1.0) -> Job:
    args = {"frames": frames, "segment_frames": 10}
    return Job(TASK, args, f"bounds {frames}", cost)


def test_results_come_back_in_job_order_though_the_costliest_start_first():
    jobs = [bounds_job(frames, cost=frames) for frames in (5, 40, 25, 12)]
    expected = [segment_bounds(frames, 10) for frames in (5, 40, 25, 12)]
    failing = [bounds_job(30), bounds_job(0), bounds_job(12)]
    with JobRunner(workers=2, progress=False) as runner:
        # Batches on the same two worker processes; a failed batch leaves them
        # usable.
        assert runner.run(jobs) == expected
        with pytest.raises(JobError, match="job bounds 0 failed: segment_bounds"):
            runner.run(failing)
        assert runner.run(jobs[::-1]) == expected[::-1]
    assert run_jobs(jobs, workers=1, progress=False) == expected


def test_a_failing_job_in_this_process_is_named():
    jobs = [bounds_job(30), bounds_job(0), bounds_job(12)]
    with pytest.raises(JobError, match="job bounds 0 failed: segment_bounds: expected"):
        run_jobs(jobs, workers=1, progress=False)


@pytest.mark.parametrize(
    "task", ["os:system", "approxrt.profiler.replay", "builtins:eval", ":x"]
)
def test_a_job_names_a_function_of_approxrt_or_is_refused(task):
    with pytest.raises(ValueError, match=r"Job\.task"):
        Job(task, {})


def test_zero_workers_means_one_per_core_and_negative_is_refused():
    assert resolve_workers(0) == (os.cpu_count() or 1)
    assert resolve_workers(3) == 3
    with pytest.raises(ValueError, match="workers: expected an integer >= 0"):
        resolve_workers(-1)
