"""Tracker cells (`latency/tracker`) and association cells (`latency/association`).

A tracker cell is one (tracker, downsample) on one synthetic scene with an exact
object count and size: the scene's true boxes seed the tracker on its first
frame (phase ``seed``), then it follows them (phase ``update``). Each cell seeds
`SEED_ROUNDS` times and takes ``tracker_samples`` updates in all, so both phases
get repeated samples.

Which cells are measured, and which the fitted model composes:

- The idle level gets the full grid: ``tracker_objects`` x
  ``tracker_object_sizes_px`` x ``frame_sizes``.
- Every other fitted level gets its corners only: the fewest and most objects x
  the smallest and largest size x every frame size. The fitted tracker model
  (linear in objects, with per-object terms in size and frame area, weights
  blended between levels) has five coefficients per level; the eight corners pin
  them, and the idle grid checks that cost is linear in objects in between.
- CSRT (about 20-35 ms per object per frame here) is measured up to
  `MAX_OBJECTS` objects; the linear model extrapolates past it.
- A cell stops taking updates once it has run `CELL_BUDGET_S` (keeping at least
  `MIN_UPDATES` per round), so a slow tracker at many objects under contention
  cannot eat the profile's time.
- Sizes are given at 1280x720 and scaled with the frame (so 40 and 120 px become
  20 and 60 px at 480x360); ``object_size_px`` records the seeded boxes' real
  size (square root of their mean area), ``objects`` their real count: the
  seeded boxes on a seeding row, those still tracked before it on an update row
  (a lost object costs nothing after it is lost).

Association: `TrackIdAssigner.assign` of n detections against m previous boxes
(the true boxes of two consecutive frames of the most crowded scene), for every
(n, m) of ``tracker_objects``, at every fitted level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter

from approxrt.branches.kernel import TrackerFactory
from approxrt.branches.space import BranchSpace
from approxrt.branches.trackers.association import TrackIdAssigner
from approxrt.branches.trackers.base import Tracker
from approxrt.config import ProfileConfig
from approxrt.profiler.latency_cells import (
    Cell,
    Row,
    Visit,
    guess_tracker_ms,
    object_size_px,
    timed,
    timed_ms,
)
from approxrt.profiler.latency_frames import TrackerScene, TrackerScenes, scaled_size_px

SEED_ROUNDS = 2
MIN_UPDATES = 2
CELL_BUDGET_S = 1.5
# Trackers too slow to time at every count: the most objects they are timed at.
MAX_OBJECTS = {"csrt": 15}


@dataclass(frozen=True)
class Workload:
    """What a tracker cell runs on: objects of one size in frames of one size."""

    objects: int
    size_px: int  # longer side of each object, at this frame size
    width: int
    height: int


def tracker_variants(space: BranchSpace) -> list[tuple[str, int]]:
    """Distinct (tracker, downsample) of the space, in its order."""
    return list(dict.fromkeys((b.tracker, b.downsample) for b in space if b.tracker))


def objects_for(tracker: str, objects: Sequence[int], full: bool) -> list[int]:
    """Object counts ``tracker`` is timed at: all, or the fewest and most."""
    counts = sorted(set(objects))
    cap = MAX_OBJECTS.get(tracker)
    if cap is not None:
        counts = [n for n in counts if n <= cap] or counts[:1]
    return counts if full else sorted({counts[0], counts[-1]})


def tracker_cells(
    make_tracker: TrackerFactory,
    variants: Sequence[tuple[str, int]],
    profile: ProfileConfig,
    scenes: TrackerScenes,
    visit: Visit,
) -> list[Cell]:
    """Cells of one visit, scene by scene (every tracker on a scene, then the next)."""
    sizes = sorted(set(profile.tracker_object_sizes_px))
    if not visit.full:
        sizes = sorted({sizes[0], sizes[-1]})
    rounds = _rounds(profile.tracker_samples)
    cells = []
    for width, height in profile.frame_sizes:
        for size in sizes:
            for objects in sorted(set(profile.tracker_objects)):
                work = Workload(
                    objects, scaled_size_px(size, width, height), width, height
                )
                cells += [
                    _tracker_cell(make_tracker, kind, ds, work, scenes, rounds)
                    for kind, ds in variants
                    if objects in objects_for(kind, profile.tracker_objects, visit.full)
                ]
    return cells


def _tracker_cell(
    make_tracker: TrackerFactory,
    kind: str,
    downsample: int,
    work: Workload,
    scenes: TrackerScenes,
    rounds: list[int],
) -> Cell:
    def measure() -> list[Row]:
        scene = scenes.get(
            work.objects, work.size_px, work.width, work.height, rounds[0] + 1
        )
        return _tracker_rows(
            make_tracker(kind, downsample), kind, downsample, scene, rounds
        )

    calls = len(rounds) + sum(rounds)
    return Cell(
        "latency/tracker",
        f"{kind}/ds{downsample} n={work.objects} {work.size_px}px "
        f"{work.width}x{work.height}",
        measure,
        guess_ms=calls * guess_tracker_ms(work.objects, work.size_px, downsample),
    )


def _rounds(samples: int) -> list[int]:
    """Updates per seeding round: ``samples`` split over `SEED_ROUNDS` rounds."""
    count = min(SEED_ROUNDS, samples)
    return [samples // count + (i < samples % count) for i in range(count)]


def _tracker_rows(
    tracker: Tracker, kind: str, downsample: int, scene: TrackerScene, rounds: list[int]
) -> list[Row]:
    seeds = scene.truth[0]
    base = {
        "tracker": kind,
        "downsample": downsample,
        "objects": len(seeds),
        "object_size_px": object_size_px(seeds),
        "frame_w": scene.frames[0].width,
        "frame_h": scene.frames[0].height,
    }
    rows = []
    start = perf_counter()
    for updates in rounds:
        tracked, ms = timed(tracker.update, seeds, scene.frames[0].fresh())
        rows.append({**base, "phase": "seed", "ms": ms})
        for index in range(1, updates + 1):
            # An update costs the objects still tracked: a lost one is dropped for
            # good (MOSSE at ds2 loses most 13-px boxes when seeded: 40 of them then
            # cost about what two do), so its row counts those alive before it.
            alive = len(tracked)
            tracked, ms = timed(tracker.update, None, scene.frames[index].fresh())
            rows.append({**base, "objects": alive, "phase": "update", "ms": ms})
            if index >= MIN_UPDATES and perf_counter() - start > CELL_BUDGET_S:
                break
    return rows


def association_cells(
    assigner: TrackIdAssigner, profile: ProfileConfig, scenes: TrackerScenes
) -> list[Cell]:
    """One cell: every (objects, previous objects) pair of ``tracker_objects``."""
    counts = sorted(set(profile.tracker_objects))
    width, height = max(profile.frame_sizes, key=lambda wh: wh[0] * wh[1])
    size = scaled_size_px(min(profile.tracker_object_sizes_px), width, height)

    def measure() -> list[Row]:
        scene = scenes.get(max(counts), size, width, height, 2)
        rows = []
        for objects in counts:
            for previous in counts:
                rows += _association_rows(assigner, scene, objects, previous, profile)
        return rows

    guess_ms = len(counts) ** 2 * profile.tracker_samples * 0.3
    return [Cell("latency/association", f"n x m of {counts}", measure, guess_ms)]


def _association_rows(
    assigner: TrackIdAssigner,
    scene: TrackerScene,
    objects: int,
    previous: int,
    profile: ProfileConfig,
) -> list[Row]:
    detections, before = scene.truth[1][:objects], scene.truth[0][:previous]
    rows = []
    for _ in range(profile.tracker_samples):
        assigner.reset()
        ms = timed_ms(assigner.assign, detections, before)
        rows.append(
            {"objects": len(detections), "previous_objects": len(before), "ms": ms}
        )
    assigner.reset()
    return rows
