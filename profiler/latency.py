"""Latency profiling: every latency table of the profile, measured on this device.

    tables = profile_latency(config, space, video, generator)
    tables["latency/tracker"]   # one row per timed tracker call

What is measured (one row per timed sample, warm-up excluded; the fitter takes
medians and tails per cell):

- ``latency/detector``: every kernel of the space x frame size x level, held-out
  levels included (`latency_detector`). The video's frames, resized to each
  size (PETS 480x360 is native; 1280x720 is an upscaled real frame).
- ``latency/tracker``: every (tracker, downsample) of the space, seeding and
  per-frame update, against object count, object size and frame size on
  synthetic scenes with exact boxes (`latency_tracker`): the full grid at the
  idle level, its corners at the other fitted levels.
- ``latency/association``: track-id association, objects x previous objects, at
  every fitted level.
- ``latency/switching``: the first detection after a kernel switch beyond that
  kernel's steady cost: every ordered pair at the idle level, two sources per
  kernel at the other fitted levels.
- ``latency/overhead``: the loop's own ms per frame (wall time of the loop minus
  the kernel's stages; scheduling counts as overhead), at every level.
- ``latency/branches``: whole branches through `run_loop` at the held-out levels,
  on the video and on a crowded synthetic scene (`latency_branches`).

Measured and composed. No branch is timed to be predicted: a branch's latency is
composed by the fitted stage models ((detector + association + seed) / si +
update x (si - 1) / si + overhead + switching / stay), so the profile's
cost grows with kernels and (tracker, downsample) pairs, not with branches
(14 kernels and 9 tracker pairs make 770 branches). Within the stages, the idle
level gets the full tracker grid and all switching pairs, and every other fitted
level gets the tracker grid's corners and two switches per kernel; the fitted
models fill the rest (linear in objects, blended between levels). The
validation branches are the only whole-branch timings, and they only score the
composition.

Each contention level is visited once for everything planned for it (changing
levels costs the generator's settle time): the idle level first, then the other
fitted levels, then the held-out ones. The detector cells alone come back:
their samples are split over `DETECTOR_PASSES` passes through every level, the
later passes visiting only them, each starting further along the list of levels.
Without a generator only the idle level is measured, and the validation runs there.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from tqdm import tqdm

from approxrt.branch import Branch
from approxrt.branches.kernel import MultiBranchKernel
from approxrt.branches.space import BranchSpace
from approxrt.config import Config, ProfileConfig
from approxrt.contention import ContentionLevels
from approxrt.frame import Frame
from approxrt.pipeline import build_kernel
from approxrt.profile_schema import CONTENTION_COLUMNS, TABLES
from approxrt.profiler.latency_branches import (
    OVERHEAD_FRAMES,
    overhead_branch,
    overhead_cells,
    validation_branches,
    validation_cells,
    validation_frame_count,
)
from approxrt.profiler.latency_cells import Cell, Row, Visit
from approxrt.profiler.latency_detector import (
    detector_cells,
    switching_cells,
    warm_kernel,
)
from approxrt.profiler.latency_frames import (
    FrameBank,
    TrackerScenes,
    crowd_scene,
    read_video,
    render,
)
from approxrt.profiler.latency_tracker import (
    association_cells,
    tracker_cells,
    tracker_variants,
)

if TYPE_CHECKING:
    from approxrt.profiler.contention import ContentionGenerator

LATENCY_TABLES = tuple(name for name in TABLES if name.startswith("latency/"))
# Least frames of a validation run (whole GoFs, two of them where they fit).
VALIDATION_MIN_FRAMES = 40
# Passes through the levels each detector cell's samples are split over. On the
# shared 2-core VM this was measured on, the speed of the whole machine drifts (a
# level's cells moved 30-50% between passes minutes apart), so cells measured in
# one visit share one moment's error: on nine stored profiles the held-out
# detector cells of one level and frame size were off by one common -0.22..+0.44
# (log) beside a per-cell spread of 0.07-0.25. Coming back to every level makes a
# cell's mean stand for several moments. Held-out detector MAPE with three passes:
# 9.7%, 18.7%, 41.3%, 16.4% (four runs); with six, 9.6% and 8.8% (a latency step
# and a whole run; 77 s more, as each pass settles at every level again).
# profiler.md, stops 16-17.
DETECTOR_PASSES = 6
# Rounds a pass's share is split into, spread over the first pass's visits.
DETECTOR_ROUNDS = 3


def contention_visits(
    profile: ProfileConfig, contended: bool, gpu_present: bool = False
) -> list[Visit]:
    """The levels to visit, in order: the fitted grid (idle first), then held out.

    Without a generator (``contended`` False) only the idle level, which then
    also hosts the validation runs. Levels with GPU load are left out when no
    GPU is present (``profile.gpu_levels_pct`` is measured only with one).
    """
    if not contended:
        return [Visit(ContentionLevels(), fitted=True, full=True, validate=True)]
    grid = itertools.product(
        profile.cpu_levels, profile.membw_levels_mbps, profile.gpu_levels_pct
    )
    fitted = sorted(
        {ContentionLevels(cpu=c, membw_mbps=m, gpu_pct=g) for c, m, g in grid},
        key=lambda lv: (lv.cpu + lv.membw_mbps / 1e3 + lv.gpu_pct / 10, str(lv)),
    )
    heldout = [ContentionLevels.parse(spec) for spec in profile.heldout_levels]
    overlap = [str(lv) for lv in heldout if lv in fitted]
    if overlap:
        raise ValueError(
            f"profile.heldout_levels: {overlap} are also on the fitted grid; a "
            "held-out level must never be fitted on"
        )
    if not gpu_present:
        fitted = [lv for lv in fitted if lv.gpu_pct == 0]
        heldout = [lv for lv in heldout if lv.gpu_pct == 0]
    return [
        Visit(lv, fitted=True, full=i == 0, validate=False)
        for i, lv in enumerate(fitted)
    ] + [Visit(lv, fitted=False, full=False, validate=True) for lv in heldout]


def _gpu_present(profile: ProfileConfig) -> bool:
    """Whether a CUDA GPU can take GPU load (asked only when a level needs one)."""
    heldout = [ContentionLevels.parse(spec) for spec in profile.heldout_levels]
    gpu_levels = [*profile.gpu_levels_pct, *(lv.gpu_pct for lv in heldout)]
    if not any(level > 0 for level in gpu_levels):
        return False
    import torch

    return torch.cuda.is_available()


def profile_latency(
    config: Config,
    space: BranchSpace,
    video: Path | None = None,
    generator: ContentionGenerator | None = None,
    progress: bool = True,
    *,
    validation_min_frames: int = VALIDATION_MIN_FRAMES,
) -> dict[str, pd.DataFrame]:
    """Measure every latency table of the profile for ``space`` on this device.

    Args:
        config: knobs of the kernel and the ``profile`` section (levels, frame
            sizes, samples, object counts and sizes, validation branches).
        space: the branches profiled; its kernels and (tracker, downsample) pairs
            are what the detector and tracker cells cover.
        video: a real clip (e.g. PETS): detector frames and one validation scene;
            None measures on synthetic scenes only.
        generator: applies contention levels; None measures the idle level only.
        progress: show a progress bar over all cells with the time left.
        validation_min_frames: least frames per validation run (whole GoFs, at
            least two); raising it steadies ``gof_mean_ms`` and costs time.

    Returns:
        One DataFrame per ``latency/*`` table of `approxrt.profile_schema.TABLES`,
        with exactly its columns, one row per timed sample.

    Raises:
        ValueError: an empty space, a video that can't be read or gives no
            frames, or a held-out level that is also on the fitted grid.
    """
    if len(space) == 0:
        raise ValueError("space: no branches to profile")
    visits = contention_visits(
        config.profile, generator is not None, _gpu_present(config.profile)
    )
    checks = validation_branches(space, config.profile.validation_branches)
    clip_frames = max(
        [
            validation_frame_count(b.sampling_interval, validation_min_frames)
            for b in checks
        ]
        + [validation_min_frames, OVERHEAD_FRAMES]
    )
    bank = FrameBank(read_video(Path(video), clip_frames) if video else [])
    kernel = build_kernel(config, space.branches)
    warm_kernel(
        kernel,
        space.kernels,
        bank,
        config.profile.frame_sizes,
        tracker_variants(space),
        max(config.warmup_runs, 1),
    )
    plan = _plan(
        config, space, kernel, bank, video, visits, checks, validation_min_frames
    )
    rows = _measure(plan, generator, progress)
    return {
        name: pd.DataFrame(rows[name], columns=list(TABLES[name]))
        for name in LATENCY_TABLES
    }


def _plan(
    config: Config,
    space: BranchSpace,
    kernel: MultiBranchKernel,
    bank: FrameBank,
    video: Path | None,
    visits: list[Visit],
    checks: list[Branch],
    validation_min_frames: int,
) -> list[tuple[Visit, list[Cell]]]:
    """Every visit with its cells, in the order they run."""
    profile = config.profile
    scenes = TrackerScenes()
    small = profile.frame_sizes[0]
    stream = bank.stream(*small, OVERHEAD_FRAMES)
    clips = _validation_clips(bank, profile, video, checks, validation_min_frames)
    shares = split_samples(profile.detector_samples, DETECTOR_PASSES)
    plan = []
    for visit in visits:
        cells = []
        if visit.fitted:
            cells += switching_cells(
                kernel, space.kernels, bank.detector_frames(*small), visit
            )
            cells += tracker_cells(
                kernel.make_tracker, tracker_variants(space), profile, scenes, visit
            )
            cells += association_cells(kernel.assigner, profile, scenes)
        cells += overhead_cells(kernel, overhead_branch(space), stream)
        if visit.validate:
            cells += validation_cells(
                kernel,
                checks,
                clips,
                validation_min_frames,
                config.tracker_min_confidence,
            )
        detector_rounds = [
            detector_cells(kernel, space.kernels, bank, profile.frame_sizes, samples)
            for samples in split_samples(shares[0], DETECTOR_ROUNDS)
        ]
        plan.append((visit, spread_rounds(detector_rounds, cells)))
    return plan + detector_passes(kernel, space, bank, profile, visits, shares[1:])


def detector_passes(
    kernel: MultiBranchKernel,
    space: BranchSpace,
    bank: FrameBank,
    profile: ProfileConfig,
    visits: list[Visit],
    shares: list[int],
) -> list[tuple[Visit, list[Cell]]]:
    """The later passes: every level again, detector cells only, each pass
    starting further along ``visits`` (the first pass runs them in order).

    So no level is visited twice in a row where one pass ends and the next
    begins: every visit of a level is a moment of its own. Passes that
    alternated forward and reversed orders did that to the levels at both ends
    of the list, the held-out ones among them: 3 distinct moments in their 6
    passes, so the cells scored against the fit averaged less of the machine's
    drift than the cells fitted (profiler.md, stop 20).
    """
    passes = []
    for index, samples in enumerate(shares):
        start = (index + 1) * len(visits) // (len(shares) + 1)
        order = visits[start:] + visits[:start]
        passes += [
            (
                Visit(visit.levels, visit.fitted, full=False, validate=False),
                detector_cells(
                    kernel, space.kernels, bank, profile.frame_sizes, samples
                ),
            )
            for visit in order
        ]
    return passes


def split_samples(total: int, parts: int) -> list[int]:
    """``total`` as up to ``parts`` near-equal positive shares: 15, 3 -> [5, 5, 5]."""
    parts = max(1, min(parts, total))
    return [total // parts + (i < total % parts) for i in range(parts)]


def spread_rounds(rounds: list[list[Cell]], others: list[Cell]) -> list[Cell]:
    """The detector's rounds at the start, evenly among ``others``, and at the end.

    On the shared 2-core VM this was measured on, a detector's latency moved up to
    2x over seconds with no change of level, so samples taken back to back catch
    one moment. Spreading a cell's samples over the visit makes its median stand
    for the whole visit. Measured on the benchmark profile (docs/benchmarks/
    profiler.md), held-out detector error was 21.5% back to back and 18.5% spread,
    one run each: a gain no larger than the run-to-run noise.
    """
    if len(rounds) == 1:
        return rounds[0] + others
    step = len(others) / (len(rounds) - 1)
    cells: list[Cell] = []
    for index, round_cells in enumerate(rounds):
        start = round(step * (index - 1)) if index else 0
        cells += others[start : round(step * index)] + round_cells
    return cells


def _validation_clips(
    bank: FrameBank,
    profile: ProfileConfig,
    video: Path | None,
    checks: list[Branch],
    min_frames: int,
) -> dict[str, Callable[[], list[Frame]]]:
    """Validation scenes by name, each rendered on its first use (only validating
    visits need them, and the crowded scene is the largest thing kept)."""
    count = max(
        [validation_frame_count(b.sampling_interval, min_frames) for b in checks] + [1]
    )
    width, height = max(profile.frame_sizes, key=lambda wh: wh[0] * wh[1])
    clips: dict[str, Callable[[], list[Frame]]] = {}
    if video is not None:
        clips[str(video)] = lambda: bank.video_frames
    crowd = crowd_scene(width, height, count)
    clips[crowd.config.to_spec()] = functools.cache(lambda: render(crowd, count))
    return clips


def _measure(
    plan: list[tuple[Visit, list[Cell]]],
    generator: ContentionGenerator | None,
    progress: bool,
) -> dict[str, list[Row]]:
    rows: dict[str, list[Row]] = {name: [] for name in LATENCY_TABLES}
    total = sum(cell.guess_ms for _, cells in plan for cell in cells)
    with tqdm(
        total=total,
        desc="latency",
        bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}",
        disable=not progress,
    ) as bar:
        for visit, cells in plan:
            bar.set_postfix_str(f"settling at {visit.levels}")
            if generator is not None:
                generator.set(visit.levels)
            for cell in cells:
                bar.set_postfix_str(f"{visit.levels} {cell.label}", refresh=False)
                measured = cell.measure()
                contention = _contention_columns(visit.levels, generator)
                rows[cell.table] += [{**row, **contention} for row in measured]
                bar.update(cell.guess_ms)
    return rows


def _contention_columns(
    levels: ContentionLevels, generator: ContentionGenerator | None
) -> Row:
    """The level asked and, after the cell's samples, the level reached."""
    reading = generator.measured() if generator is not None else None
    values = (
        levels.cpu,
        levels.membw_mbps,
        levels.gpu_pct,
        reading.cpu if reading else 0.0,
        reading.membw_mbps if reading else 0.0,
    )
    return dict(zip(CONTENTION_COLUMNS, values, strict=True))
