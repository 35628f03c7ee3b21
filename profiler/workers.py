"""Running profiling jobs: in this process, on local worker processes, or on Ray.

A `Job` is plain data: the task to call, named ``"module:function"``, and its
keyword arguments (paths, branch names, a config dict, numbers). Nothing live (no
model, no open video, no kernel) crosses a process boundary, so the same job runs
in a `concurrent.futures.ProcessPoolExecutor` on this machine or as a Ray task on
any node of a cluster that sees the same files, and gives the same result.

    results = run_jobs(jobs, workers=2)                        # local processes
    results = run_jobs(jobs, ray_address="10.0.0.5:6379")      # a Ray cluster
    with JobRunner(workers=2) as runner:                       # workers kept for
        first, second = runner.run(jobs), runner.run(more)     # several batches

Results come back in the order of ``jobs``; jobs are *started* longest first (by
their ``cost`` estimate) so that no worker is left with one long job at the end.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

# Tasks must live in our own package: a job names code, it never carries it.
_TASK_PACKAGE = "approxrt."


class JobError(RuntimeError):
    """A job raised; the message names the job and the original error."""


@dataclass(frozen=True)
class Job:
    """One unit of profiling work, as plain data.

    Attributes:
        task: ``"approxrt.profiler.<module>:<function>"``, called with ``args``.
        args: keyword arguments of the task: only plain values (str, int, float,
            bool, None, lists and dicts of them).
        label: what the job is, for progress and error messages.
        cost: relative cost estimate (e.g. frames times replays); only the order
            jobs start in depends on it.
    """

    task: str
    args: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    cost: float = 1.0

    def __post_init__(self) -> None:
        module, sep, function = self.task.partition(":")
        if not sep or not function or not module.startswith(_TASK_PACKAGE):
            raise ValueError(
                f"Job.task: expected 'approxrt.<module>:<function>', got {self.task!r}"
            )


def execute(job: Job) -> Any:
    """Run ``job`` here and return what its task returns."""
    module, _, function = job.task.partition(":")
    task: Callable[..., Any] = getattr(importlib.import_module(module), function)
    return task(**job.args)


def resolve_workers(workers: int) -> int:
    """``workers`` itself, or one per CPU core when it is 0."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers: expected an integer >= 0, got {workers!r}")
    return workers or os.cpu_count() or 1


def run_jobs(
    jobs: Sequence[Job],
    workers: int = 0,
    ray_address: str | None = None,
    progress: bool = True,
    description: str = "jobs",
) -> list[Any]:
    """Run every job and return their results in the order of ``jobs``.

    One batch on fresh workers; see `JobRunner` for the arguments, and to keep
    the workers for several batches.

    Raises:
        JobError: a job raised (the jobs not yet started are cancelled).
        ValueError: a bad ``workers`` value.
    """
    with JobRunner(workers, ray_address, progress) as runner:
        return runner.run(jobs, description)


class JobRunner:
    """Runs batches of jobs on one set of workers, started once for all batches.

    Args:
        workers: local worker processes (0 = one per CPU core; 1 runs the jobs in
            this process, one after the other). Ignored with ``ray_address``.
        ray_address: ``host:port`` of a running Ray cluster (or ``"auto"``): the
            jobs become Ray tasks of one CPU each. Files the jobs name must be
            readable at the same paths on every node.
        progress: show a progress bar over each batch's jobs, with the time left.

    Use as a context manager: leaving it stops the worker processes (and
    disconnects from Ray, if it connected).
    """

    def __init__(
        self, workers: int = 0, ray_address: str | None = None, progress: bool = True
    ) -> None:
        self.workers = resolve_workers(workers)
        self.ray_address = ray_address
        self.progress = progress
        self._pool: ProcessPoolExecutor | None = None
        self._ray_task: Any = None
        self._ray_started_here = False

    def __enter__(self) -> JobRunner:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._ray_started_here:
            import ray

            ray.shutdown()
            self._ray_started_here = False

    def run(self, jobs: Sequence[Job], description: str = "jobs") -> list[Any]:
        """Every job's result, in the order of ``jobs``.

        Raises:
            JobError: a job raised (the jobs not yet started are cancelled).
        """
        jobs = list(jobs)
        bar = tqdm(
            total=len(jobs), desc=description, unit="job", disable=not self.progress
        )
        with bar:
            if self.ray_address is not None:
                return self._run_on_ray(jobs, bar)
            if self.workers == 1 or len(jobs) <= 1:
                return [_run_here(job, bar) for job in jobs]
            return self._run_on_pool(jobs, bar)

    def _run_on_pool(self, jobs: Sequence[Job], bar: tqdm) -> list[Any]:
        if self._pool is None:
            # spawn, not fork: the parent may hold threads (ONNX Runtime, tqdm)
            # that a forked child would inherit mid-lock.
            self._pool = ProcessPoolExecutor(
                self.workers,
                multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
        futures: dict[Future, int] = {
            self._pool.submit(execute, jobs[i]): i for i in _longest_first(jobs)
        }
        results: list[Any] = [None] * len(jobs)
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = futures[future]
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise _job_error(jobs[index], error) from error
                results[index] = future.result()
                bar.update()
        return results

    def _run_on_ray(self, jobs: Sequence[Job], bar: tqdm) -> list[Any]:
        import ray  # only here: Ray is an optional extra

        if self._ray_task is None:
            if not ray.is_initialized():
                ray.init(
                    address=self.ray_address,
                    log_to_driver=False,
                    configure_logging=False,
                )
                self._ray_started_here = True
            self._ray_task = ray.remote(num_cpus=1)(_ray_execute)
        refs = {self._ray_task.remote(jobs[i]): i for i in _longest_first(jobs)}
        results: list[Any] = [None] * len(jobs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    results[refs[ref]] = ray.get(ref)
                except Exception as error:
                    for other in pending:
                        ray.cancel(other)
                    raise _job_error(jobs[refs[ref]], error) from error
                bar.update()
        return results


def _job_error(job: Job, error: BaseException) -> JobError:
    return JobError(f"job {job.label or job.task} failed: {error}")


def _longest_first(jobs: Sequence[Job]) -> list[int]:
    return sorted(range(len(jobs)), key=lambda i: -jobs[i].cost)


def _run_here(job: Job, bar: tqdm) -> Any:
    try:
        result = execute(job)
    except Exception as error:
        raise _job_error(job, error) from error
    bar.update()
    return result


def _start_worker(parent_pid: int) -> None:
    """Local worker start-up: die with the parent, and run single-threaded.

    A worker outliving its parent kept replaying for an hour after the profile
    that started it was killed, and loaded the cores under the next profile's
    latency measurements. (A watchdog rather than the kernel's death signal: the
    pool may start workers from a thread that ends before they do.)
    """
    from approxrt.profiler.contention.processes import exit_when_parent_exits

    exit_when_parent_exits(parent_pid)
    _single_threaded()


def _single_threaded() -> None:
    """One thread per process, since the pool is the parallelism.

    OpenCV's own thread pool in every worker would oversubscribe the cores and
    make each tracker frame slower, not faster.
    """
    import cv2

    cv2.setNumThreads(1)


def _ray_execute(job: Job) -> Any:
    _single_threaded()
    return execute(job)
