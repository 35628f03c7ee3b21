"""`approxrt bench threads`: detector latency per CPU thread count under contention.

ONNX Runtime's default pool takes one thread per core and spins between
operators. Beside another program that keeps a core busy, every operator then
waits for the thread that shares its core, so the default can lose to a single
thread exactly when the device is contended. This benchmark measures that trade
on the device at hand: every kernel at every thread count, at every contention
level, in interleaved rounds (the level order reversed every other round), so a
slow stretch of a shared machine weighs on every cell alike.

    rows = measure_threads(config, kernels, [0, 1], levels, frames, generator)
    summary = summarise(rows)        # mean ms per kernel x level x threads
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from time import perf_counter

import pandas as pd
from tqdm import tqdm

from approxrt.branch import Branch
from approxrt.config import Config
from approxrt.contention import ContentionLevels
from approxrt.frame import Frame
from approxrt.pipeline import build_kernel
from approxrt.profiler.contention import ContentionGenerator

# Calls before a kernel's first timed one at a thread count (new shapes, pools).
WARMUP_CALLS = 3
COLUMNS = ("kernel", "threads", "level", "round", "ms", "reached_cpu")


def measure_threads(
    config: Config,
    kernels: Sequence[Branch],
    thread_counts: Sequence[int],
    levels: Sequence[ContentionLevels],
    frames: Sequence[Frame],
    generator: ContentionGenerator,
    rounds: int = 4,
    calls: int = 5,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per kernel x thread count x level x round: the mean ms of
    ``calls`` detector calls, and the CPU the generator's load reached there.

    Raises:
        ValueError: no kernels, thread counts, levels or frames; a thread count
            below 0 (0 is the library's default); rounds or calls below 1.
    """
    _check(kernels, thread_counts, levels, frames, rounds, calls)
    runners = {
        threads: build_kernel(config.replace(num_threads=threads), list(kernels))
        for threads in thread_counts
    }
    for runner in runners.values():
        for branch in kernels:
            for index in range(WARMUP_CALLS):
                runner.run_detector(frames[index % len(frames)], branch)
    rows = []
    total = rounds * len(levels) * len(runners) * len(kernels)
    with tqdm(total=total, desc="threads", disable=not progress) as bar:
        for round_index in range(rounds):
            order = levels if round_index % 2 == 0 else levels[::-1]
            for level in order:
                bar.set_postfix_str(f"settling at {level}")
                generator.set(level)
                measured = []
                for threads, runner in runners.items():
                    for branch in kernels:
                        ms = _mean_call_ms(runner, branch, frames, calls)
                        measured.append((_kernel(branch), threads, ms))
                        bar.update()
                reached = generator.measured().cpu
                rows += [
                    (kernel, threads, str(level), round_index, ms, reached)
                    for kernel, threads, ms in measured
                ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per kernel x level: mean ms at each thread count (``ms_t<n>``), the
    fastest count, and each count's ms over the library default's (``t<n>_vs_t0``)."""
    table = rows.pivot_table(
        index=["kernel", "level"], columns="threads", values="ms", aggfunc="mean"
    )
    summary = table.rename(columns=lambda t: f"ms_t{t}")
    summary["fastest_threads"] = table.idxmin(axis=1)
    if 0 in table.columns:
        for threads in table.columns.drop(0):
            summary[f"t{threads}_vs_t0"] = table[threads] / table[0]
    summary["reached_cpu"] = rows.groupby(["kernel", "level"])["reached_cpu"].mean()
    order = pd.MultiIndex.from_product(
        [list(dict.fromkeys(rows[name])) for name in ("kernel", "level")],
        names=["kernel", "level"],
    )
    return summary.reindex(order.intersection(summary.index, sort=False)).reset_index()


def write_report(rows: pd.DataFrame, out_dir: Path, command: str) -> Path:
    """``threads.md`` (the summary and the command), ``threads.csv`` (every
    row) and ``threads.png`` (ms per level, one line per thread count) in
    ``out_dir``; returns the Markdown's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out_dir / "threads.csv", index=False)
    summary = summarise(rows)
    markdown = out_dir / "threads.md"
    markdown.write_text(
        "# Detector latency per thread count under contention\n\n"
        f"Made by `{command}`.\n\n"
        "Threads 0 is the library's default (one per core). Mean ms of the "
        "rounds; `reached_cpu` is the cores the generator's load really took.\n\n"
        + summary.to_markdown(index=False, floatfmt=".2f")
        + "\n\n![threads](threads.png)\n"
    )
    _plot(rows, out_dir / "threads.png")
    return markdown


def _plot(rows: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    kernels = list(dict.fromkeys(rows["kernel"]))
    levels = list(dict.fromkeys(rows["level"]))
    figure, axes = plt.subplots(
        1, len(kernels), figsize=(4.5 * len(kernels), 3.6), squeeze=False
    )
    for axis, kernel in zip(axes[0], kernels, strict=True):
        own = rows[rows["kernel"] == kernel]
        for threads, cells in own.groupby("threads"):
            means = cells.groupby("level")["ms"].mean().reindex(levels)
            label = "default" if threads == 0 else f"{threads} thread(s)"
            axis.plot(range(len(levels)), means.to_numpy(), marker="o", label=label)
        axis.set_xticks(range(len(levels)), [lv.replace(",", "\n") for lv in levels])
        axis.set_title(kernel)
        axis.set_ylabel("ms per detector call")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _mean_call_ms(runner, branch: Branch, frames: Sequence[Frame], calls: int) -> float:
    total_s = 0.0
    for index in range(calls):
        start = perf_counter()
        runner.run_detector(frames[index % len(frames)], branch)
        total_s += perf_counter() - start
    return 1e3 * total_s / calls


def _kernel(branch: Branch) -> str:
    return str(branch).rsplit("/si", 1)[0]


def _check(kernels, thread_counts, levels, frames, rounds, calls) -> None:
    for name, values in (
        ("kernels", kernels),
        ("thread counts", thread_counts),
        ("levels", levels),
        ("frames", frames),
    ):
        if len(values) == 0:
            raise ValueError(f"bench threads: no {name} given")
    bad = [t for t in thread_counts if not isinstance(t, int) or t < 0]
    if bad:
        raise ValueError(
            f"bench threads: thread counts {bad}: expected ints >= 0 (0 = default)"
        )
    if len(set(thread_counts)) != len(thread_counts):
        raise ValueError(f"bench threads: thread counts {list(thread_counts)} repeat")
    for name, value in (("rounds", rounds), ("calls", calls)):
        if value < 1:
            raise ValueError(f"bench threads: {name} {value}: expected >= 1")
