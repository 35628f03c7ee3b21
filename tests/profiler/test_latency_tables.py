"""Latency profiling of a tiny space on the real models and PETS, with no generator.

One profile run (about 15 s on a 2-core CPU) serves every test of this file.
"""

import itertools

import numpy as np
import pytest

from approxrt.branches.space import BranchSpace
from approxrt.config import load_config
from approxrt.profile_schema import TABLES
from approxrt.profiler.latency import LATENCY_TABLES, profile_latency
from approxrt.profiler.latency_tracker import SEED_ROUNDS

SAMPLES = 3
OBJECTS = [1, 40]
VALIDATION = 3
FRAME_SIZES = [(480, 360), (1280, 720)]


@pytest.fixture(scope="module")
def space():
    return BranchSpace.build(
        {"yolox_nano": [224, 320]}, [1, 4], ["medianflow", "mosse"], [1, 2]
    )


@pytest.fixture(scope="module")
def config(models_dir):
    base = load_config(models_dir=str(models_dir), download=False)
    profile = {
        **base.profile.model_dump(),
        "frame_sizes": FRAME_SIZES,
        "detector_samples": SAMPLES,
        "tracker_samples": SAMPLES,
        "tracker_objects": OBJECTS,
        "validation_branches": VALIDATION,
    }
    return base.replace(profile=profile)


@pytest.fixture(scope="module")
def tables(config, space, pets_video):
    return profile_latency(
        config, space, pets_video, None, progress=False, validation_min_frames=12
    )


def test_every_latency_table_has_exactly_the_schema_columns(tables):
    assert set(tables) == set(LATENCY_TABLES)
    for name, table in tables.items():
        assert tuple(table.columns) == TABLES[name], name
        assert len(table) > 0, name


def test_without_a_generator_every_row_is_at_the_idle_level(tables):
    for name, table in tables.items():
        levels = table[["cpu", "membw_mbps", "gpu_pct", "cpu_measured"]].to_numpy()
        assert not levels.any(), name


def test_every_kernel_and_frame_size_has_its_samples_and_no_warmup(tables, space):
    table = tables["latency/detector"]
    counts = table.groupby(["input_size", "frame_w", "frame_h"]).size()
    expected = {
        (knobs.input_size, w, h)
        for (_, knobs), (w, h) in itertools.product(space.kernels, FRAME_SIZES)
    }
    assert set(counts.index) == expected
    assert (counts == SAMPLES).all()
    stages = table[["preprocess_ms", "infer_ms", "postprocess_ms"]].sum(axis=1)
    np.testing.assert_allclose(table["total_ms"], stages)
    assert (table["infer_ms"] > 0).all()


def test_tracker_cells_seed_twice_and_take_every_update(tables):
    table = tables["latency/tracker"]
    # A scene's seeded boxes have their own mean size: it names the cell.
    cell = ["tracker", "downsample", "object_size_px", "frame_w"]
    phases = table.groupby([*cell, "phase"]).size().unstack("phase")
    assert len(phases) == 2 * 2 * len(OBJECTS) * 2 * len(FRAME_SIZES)
    assert (phases["seed"] == SEED_ROUNDS).all()
    assert (phases["update"] == SAMPLES).all()
    assert set(table.loc[table.phase == "seed", "objects"]) == set(OBJECTS)


def test_update_rows_count_the_objects_still_tracked(tables):
    table = tables["latency/tracker"]
    cell = ["tracker", "downsample", "object_size_px", "frame_w"]
    seeded = table[table.phase == "seed"].groupby(cell)["objects"].max()
    alive = table[table.phase == "update"].groupby(cell)["objects"].min()
    assert (alive <= seeded.loc[alive.index]).all()
    # Some trackers lose boxes (MOSSE at ds2 the smallest): those rows count fewer.
    assert (alive < seeded.loc[alive.index]).any()


def test_object_sizes_scale_with_the_frame(tables):
    table = tables["latency/tracker"]
    small = table.loc[table["frame_w"] == 480, "object_size_px"]
    large = table.loc[table["frame_w"] == 1280, "object_size_px"]
    # Sizes are given at 1280x720: the 480x360 scenes hold objects half as big.
    assert small.max() < large.max()
    assert large.max() <= 120 and small.max() <= 60


def test_medianflow_updates_of_40_objects_cost_at_least_3x_one_object(tables):
    table = tables["latency/tracker"]
    updates = table[(table["tracker"] == "medianflow") & (table["phase"] == "update")]
    medians = updates.groupby(["downsample", "frame_w", "object_size_px", "objects"])[
        "ms"
    ].median()
    per_objects = medians.groupby("objects").median()
    assert per_objects[40] >= 3 * per_objects[1]


def test_association_rows_cover_every_pair_of_object_counts(tables):
    table = tables["latency/association"]
    counts = table.groupby(["objects", "previous_objects"]).size()
    assert set(counts.index) == set(itertools.product(OBJECTS, OBJECTS))
    assert (counts == SAMPLES).all()
    assert (table["ms"] > 0).all()


def test_switching_rows_name_every_ordered_pair_of_real_kernels(tables, space):
    table = tables["latency/switching"]
    kernels = {(name, knobs.input_size) for name, knobs in space.kernels}
    pairs = {
        ((r.from_detector, r.from_input_size), (r.to_detector, r.to_input_size))
        for r in table.itertuples()
    }
    assert pairs == {(a, b) for a in kernels for b in kernels if a != b}
    assert table["extra_ms"].notna().all()


def test_the_loop_overhead_is_measured_on_both_frame_kinds_and_is_small(tables):
    table = tables["latency/overhead"]
    assert set(table["detected"]) == {True, False}
    assert table.groupby("detected")["ms"].median().max() < 1.0


def test_validation_runs_every_branch_on_the_video_and_the_crowd(tables):
    table = tables["latency/branches"]
    assert len(table) == VALIDATION * 2
    sizes = set(zip(table["frame_w"], table["frame_h"], strict=True))
    assert sizes == {(480, 360), (1280, 720)}
    assert table["branch"].nunique() == VALIDATION
    assert (table["objects_mean"] >= 0).all()


def test_a_gof_mean_lies_between_its_tracking_and_detection_frames(tables):
    table = tables["latency/branches"]
    every_frame = table["branch"].str.contains("/si1$")
    single = table[every_frame]
    np.testing.assert_allclose(single["gof_mean_ms"], single["detect_frame_ms"])
    assert (single["track_frame_ms"] == 0).all()
    tracked = table[~every_frame]
    assert len(tracked) > 0
    low = np.minimum(tracked["track_frame_ms"], tracked["detect_frame_ms"])
    high = np.maximum(tracked["track_frame_ms"], tracked["detect_frame_ms"])
    assert ((low <= tracked["gof_mean_ms"]) & (tracked["gof_mean_ms"] <= high)).all()
