"""What the latency profiler plans to measure, checked without running a model."""

import itertools
from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest

from approxrt.branches.space import BranchSpace
from approxrt.config import load_config
from approxrt.contention import ContentionLevels
from approxrt.profiler.latency import (
    contention_visits,
    detector_passes,
    profile_latency,
    split_samples,
    spread_rounds,
)
from approxrt.profiler.latency_branches import (
    MAX_FRAMES,
    gof_mean_ms,
    validation_branches,
    validation_frame_count,
)
from approxrt.profiler.latency_detector import switching_pairs
from approxrt.profiler.latency_tracker import MAX_OBJECTS, objects_for

DETECTORS = ["yolox_nano", "nanodet_m", "fastestdet"]


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def space(config):
    return BranchSpace.from_config(config, DETECTORS)


def test_validation_branches_are_distinct_members_spread_over_every_knob(space):
    chosen = validation_branches(space, 30)
    assert len(chosen) == len(set(chosen)) == 30
    assert all(b in space for b in chosen)
    assert {b.detector for b in chosen} == set(DETECTORS)
    assert {b.sampling_interval for b in chosen} == {b.sampling_interval for b in space}
    tracked = [b for b in chosen if b.tracker]
    assert {b.tracker for b in tracked} == {b.tracker for b in space if b.tracker}
    assert {b.downsample for b in tracked} == {1, 2, 4}
    sizes = {(b.detector, b.input_size) for b in chosen}
    assert len(sizes) >= 10  # of the 14 kernels


def test_validation_branches_are_the_same_on_every_call(space):
    assert validation_branches(space, 30) == validation_branches(space, 30)
    assert validation_branches(space, 0) == []


def test_a_small_space_gives_at_most_its_own_branches():
    space = BranchSpace.build({"yolox_nano": [224]}, [1, 4], ["kcf"], [1])
    assert set(validation_branches(space, 10)) == set(space)


@pytest.mark.parametrize(
    ("interval", "min_frames", "expected"),
    [
        (1, 40, 40),
        (4, 40, 40),
        (6, 40, 42),  # whole GoFs
        (20, 40, 40),  # two GoFs
        (50, 40, 50),  # one GoF: two would pass MAX_FRAMES
        (100, 40, 100),  # one GoF, longer than MAX_FRAMES
        (20, 12, 40),  # never fewer than two GoFs when they fit
    ],
)
def test_validation_runs_whole_gofs(interval, min_frames, expected):
    frames = validation_frame_count(interval, min_frames)
    assert frames == expected
    assert frames % interval == 0 and frames <= max(MAX_FRAMES, interval)


def test_gof_mean_averages_whole_gofs_only():
    latency = np.array([10, 1, 1, 1, 14, 3, 3, 3, 10, 1], float)
    detected = np.arange(10) % 4 == 0
    # GoF means 3.25 and 5.75; the two frames of the cut-off GoF are left out.
    assert gof_mean_ms(latency, detected, 4) == pytest.approx(4.5)
    with pytest.raises(ValueError, match="no whole group of 8 frames"):
        gof_mean_ms(latency[:5], detected[:5], 8)


def test_switching_covers_all_ordered_pairs_when_full_else_two_per_target():
    kernels = list(range(6))
    full = switching_pairs(kernels, full=True)
    assert len(full) == len(set(full)) == 30 and all(a != b for a, b in full)
    sparse = switching_pairs(kernels, full=False)
    targets = [b for _, b in sparse]
    assert sorted(set(targets)) == kernels
    assert all(targets.count(b) == 2 for b in kernels)
    assert all(a != b for a, b in sparse)


def test_slow_trackers_are_timed_at_fewer_objects_and_corners_under_contention():
    counts = [1, 5, 15, 40]
    assert objects_for("kcf", counts, full=True) == counts
    assert objects_for("kcf", counts, full=False) == [1, 40]
    assert max(objects_for("csrt", counts, full=True)) <= MAX_OBJECTS["csrt"]
    assert objects_for("csrt", counts, full=False) == [1, 15]


def test_later_detector_passes_revisit_every_level_never_twice_in_a_row(config, space):
    visits = contention_visits(config.profile, contended=True)
    shares = [3, 3, 3, 3, 3]
    passes = detector_passes(None, space, None, config.profile, visits, shares)
    kernels_x_sizes = len(space.kernels) * len(config.profile.frame_sizes)
    assert len(passes) == len(shares) * len(visits)
    forward = [visit.levels for visit in visits]
    levels = [visit.levels for visit, _ in passes]
    for index in range(len(shares)):
        one_pass = levels[index * len(visits) : (index + 1) * len(visits)]
        assert sorted(map(str, one_pass)) == sorted(map(str, forward))
    # The first pass runs the levels in order; where any pass ends and the next
    # begins, the level changes, so each visit of a level is a moment of its own.
    whole_run = forward + levels
    assert all(a != b for a, b in itertools.pairwise(whole_run))
    for visit, cells in passes:
        assert not visit.full and not visit.validate  # detector cells only
        assert len(cells) == kernels_x_sizes
        assert {cell.table for cell in cells} == {"latency/detector"}
    # A kernel's frame sizes back to back, so one moment weighs on both.
    labels = [cell.label.split()[0] for cell in passes[0][1]]
    sizes = len(config.profile.frame_sizes)
    assert all(
        len(set(labels[i : i + sizes])) == 1 for i in range(0, len(labels), sizes)
    )


def test_visits_start_idle_then_fitted_then_held_out(config):
    visits = contention_visits(config.profile, contended=True)
    fitted = [v for v in visits if v.fitted]
    assert fitted[0].levels == ContentionLevels() and fitted[0].full
    assert not any(v.full for v in visits[1:])
    assert len(fitted) == 3 * 2 * 1
    heldout = [v.levels for v in visits if not v.fitted]
    assert heldout == [ContentionLevels.parse(s) for s in config.profile.heldout_levels]
    assert visits[-len(heldout) :] == [v for v in visits if v.validate]


def test_without_a_generator_only_the_idle_level_is_visited(config):
    (visit,) = contention_visits(config.profile, contended=False)
    assert visit.levels == ContentionLevels() and visit.full and visit.validate


@pytest.mark.parametrize(
    ("heldout", "expectation"),
    [
        (["cpu=0.5"], does_not_raise()),
        (["cpu=1,membw=3000"], pytest.raises(ValueError, match="fitted grid")),
        (["cpu=lots"], pytest.raises(ValueError, match="must be a number")),
    ],
)
def test_held_out_levels_are_checked(config, heldout, expectation):
    profile = config.profile.model_copy(update={"heldout_levels": heldout})
    with expectation:
        contention_visits(profile, contended=True)


def test_an_empty_space_or_a_missing_video_is_refused(config, space, tmp_path):
    with pytest.raises(ValueError, match="no branches"):
        profile_latency(config, BranchSpace(()), None, None, progress=False)
    missing = tmp_path / "nope.avi"
    with pytest.raises(ValueError, match=r"nope\.avi"):
        profile_latency(config, space, missing, None, progress=False)


def test_gpu_levels_are_left_out_without_a_gpu(config):
    profile = config.profile.model_copy(
        update={"gpu_levels_pct": [0, 50], "heldout_levels": ["cpu=0.5", "gpu=30"]}
    )
    with_gpu = contention_visits(profile, contended=True, gpu_present=True)
    without = contention_visits(profile, contended=True, gpu_present=False)
    assert len(with_gpu) == 3 * 2 * 2 + 2
    assert [v.levels for v in without if v.levels.gpu_pct > 0] == []
    assert len(without) == 3 * 2 + 1


def test_a_detector_cells_samples_are_split_into_near_equal_rounds():
    assert split_samples(15, 3) == [5, 5, 5]
    assert split_samples(7, 3) == [3, 2, 2]
    assert split_samples(2, 3) == [1, 1]  # never an empty round


def test_detector_rounds_open_the_visit_sit_among_its_cells_and_close_it():
    rounds = [["a1", "a2"], ["b1", "b2"], ["c1", "c2"]]
    others = list("0123456")
    spread = spread_rounds(rounds, others)
    assert spread[:2] == ["a1", "a2"] and spread[-2:] == ["c1", "c2"]
    middle = spread.index("b1")
    assert 2 < middle < len(spread) - 4  # between other cells, not beside a round
    assert sorted(spread) == sorted(
        [c for r in rounds for c in r] + others
    )  # nothing lost
    assert spread_rounds([["a"]], others) == ["a", *others]
