"""Detector cells (`latency/detector`) and switching cost (`latency/switching`).

Detector: every kernel x frame size at every level, ``detector_samples`` timed
`MultiBranchKernel.run_detector` calls each, after one untimed call that absorbs
the switch from the previous cell's kernel (first-call costs per input shape are
paid at start-up, see `warm_kernel`).

Switching: for a pair (a -> b), run a once, then b twice on one frame; the extra
ms is the first b call minus the second (same frame, so the same detections).
At the idle level every ordered pair is measured; at other fitted levels each
kernel is switched to from two others (its neighbour in the space's order and
the kernel half-way round); the switching model pools levels.
"""

from __future__ import annotations

from collections.abc import Sequence

from approxrt.branch import DetectorKnobs
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.frame import Frame
from approxrt.profiler.latency_cells import (
    Cell,
    Row,
    Visit,
    guess_detector_ms,
    kernel_branch,
    kernel_columns,
    run_detector_ms,
)
from approxrt.profiler.latency_frames import FrameBank

Kernel = tuple[str, DetectorKnobs]


def warm_kernel(
    kernel: MultiBranchKernel,
    kernels: Sequence[Kernel],
    bank: FrameBank,
    frame_sizes: Sequence[tuple[int, int]],
    trackers: Sequence[tuple[str, int]],
    runs: int,
) -> None:
    """Every kernel ``runs`` times at every frame size; trackers at the first size.

    A new input shape costs extra on its first calls, so each (kernel, frame
    size) pays that here, never in a measured cell.
    """
    for index, (width, height) in enumerate(frame_sizes):
        image = bank.detector_frames(width, height)[0].image
        kernel.warmup(kernels, image, trackers if index == 0 else (), runs=runs)


def detector_cells(
    kernel: MultiBranchKernel,
    kernels: Sequence[Kernel],
    bank: FrameBank,
    frame_sizes: Sequence[tuple[int, int]],
    samples: int,
) -> list[Cell]:
    """One cell per kernel x frame size (a kernel's sizes back to back, so a
    moment's drift weighs on both alike)."""
    return [
        Cell(
            "latency/detector",
            f"{name}/{knobs} {width}x{height}",
            lambda name=name, knobs=knobs, width=width, height=height: _detector_rows(
                kernel, name, knobs, bank.detector_frames(width, height), samples
            ),
            guess_ms=(samples + 1) * guess_detector_ms(knobs),
        )
        for name, knobs in kernels
        for width, height in frame_sizes
    ]


def _detector_rows(
    kernel: MultiBranchKernel,
    name: str,
    knobs: DetectorKnobs,
    frames: list[Frame],
    samples: int,
) -> list[Row]:
    branch = kernel_branch(name, knobs)
    kernel.run_detector(frames[-1], branch)  # the switch into this kernel
    base = {
        **kernel_columns(name, knobs),
        "frame_w": frames[0].width,
        "frame_h": frames[0].height,
    }
    rows = []
    for index in range(samples):
        stage_ms = run_detector_ms(kernel, frames[index % len(frames)], branch)
        rows.append({**base, **{f"{k}_ms": v for k, v in stage_ms.items()}})
    return rows


def switching_pairs(kernels: Sequence[Kernel], full: bool) -> list[tuple[int, int]]:
    """(from, to) indices into ``kernels``: all ordered pairs, or two per target."""
    count = len(kernels)
    if full:
        return [(a, b) for b in range(count) for a in range(count) if a != b]
    pairs = []
    for b in range(count):
        sources = dict.fromkeys(((b - 1) % count, (b + count // 2) % count))
        pairs += [(a, b) for a in sources if a != b]
    return pairs


def switching_cells(
    kernel: MultiBranchKernel,
    kernels: Sequence[Kernel],
    frames: list[Frame],
    visit: Visit,
) -> list[Cell]:
    """One cell per target kernel, holding its pairs of this visit."""
    by_target: dict[int, list[int]] = {}
    for a, b in switching_pairs(kernels, visit.full):
        by_target.setdefault(b, []).append(a)
    return [
        _switching_cell(kernel, kernels, a_list, b, frames)
        for b, a_list in by_target.items()
    ]


def _switching_cell(
    kernel: MultiBranchKernel,
    kernels: Sequence[Kernel],
    sources: list[int],
    target: int,
    frames: list[Frame],
) -> Cell:
    def measure() -> list[Row]:
        return [
            _switch_row(
                kernel, kernels[a], kernels[target], frames[(a + target) % len(frames)]
            )
            for a in sources
        ]

    # Two of each pair's three calls follow a switch, which makes them slower
    # than steady calls (about twice, measured here on a busy 2-core CPU).
    to_ms = guess_detector_ms(kernels[target][1])
    calls_ms = [2 * to_ms + guess_detector_ms(kernels[a][1]) for a in sources]
    return Cell(
        "latency/switching",
        f"-> {kernels[target][0]}/{kernels[target][1]}",
        measure,
        guess_ms=2 * sum(calls_ms),
    )


def _switch_row(
    kernel: MultiBranchKernel, source: Kernel, target: Kernel, frame: Frame
) -> Row:
    kernel.run_detector(frame, kernel_branch(*source))
    to_branch = kernel_branch(*target)
    first = run_detector_ms(kernel, frame, to_branch)["total"]
    steady = run_detector_ms(kernel, frame, to_branch)["total"]
    return {
        **kernel_columns(*source, prefix="from_"),
        **kernel_columns(*target, prefix="to_"),
        "extra_ms": first - steady,
    }
