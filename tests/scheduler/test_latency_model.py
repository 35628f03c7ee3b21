"""Stage latency models on synthetic tables of known truth, and their composition."""

from __future__ import annotations

import json
import time
from itertools import product

import hand_profile
import latency_tables
import numpy as np
import pandas as pd
import pytest
from latency_tables import (
    FIT_LEVELS,
    FRAMES,
    HELDOUT_LEVELS,
    levels_of,
    switching_row,
)

from approxrt.branch import Branch
from approxrt.contention import ContentionLevels
from approxrt.scheduler.latency_model import (
    AssociationModel,
    BranchLatencyModel,
    DetectorLatencyModel,
    OverheadModel,
    SwitchingModel,
    TrackerLatencyModel,
)
from approxrt.scheduler.model_io import ModelFormatError

KERNELS = [("yolox_nano", s) for s in (224, 320, 416, 512, 640)] + [
    ("fastestdet", s) for s in (288, 352, 416)
]
TRACKERS = ("medianflow", "kcf", "mosse", "csrt", "flow")
SAMPLING = (2, 3, 4, 6, 8, 12, 20, 50, 100)


def duty_cycle(cpu, factors):
    """Fractional CPU contention is a duty cycle between integer levels."""
    return np.interp(cpu, np.arange(len(factors)), factors)


def convex(cpu, _factors):
    return 1 + 0.45 * cpu + 0.2 * cpu**2


def detector_table(rng, cpu_shape=duty_cycle, samples=15, sigma=0.08):
    def truth(detector, size, w, h, cpu, membw):
        scale = {"yolox_nano": 9.0, "fastestdet": 4.0}[detector]
        idle = scale * (size / 416) ** 2 + 0.6 * w * h / 1e6 + 0.3
        return idle * cpu_shape(cpu, (1.0, 1.6, 2.9)) * (1 + 0.08 * membw / 1000)

    return latency_tables.detector_table(rng, truth, KERNELS, samples, sigma)


def tracker_truth(tracker, ds, phase, n, size, w, h, cpu, membw):
    """Per frame a resize (or dense flow); per object a patch or a frame pass."""
    mpx, side = w * h / 1e6 / ds**2, size / ds
    per_frame = {"flow": 2.0 + 30 * mpx}.get(tracker, 0.1 + 0.3 * mpx)
    per_object = {
        "medianflow": 0.15 + 1.8 * mpx,
        "kcf": 0.4 + 0.012 * side,
        "mosse": 0.05 + 0.002 * side,
        "csrt": 8.0 + 0.1 * side,
        "flow": 0.01,
    }[tracker] * (2.5 if phase == "seed" else 1.0)
    slowdown = duty_cycle(cpu, (1.0, 1.25, 1.9)) * (1 + 0.05 * membw / 1000)
    return (per_frame + n * per_object) * slowdown


def tracker_table(rng, samples=6, sigma=0.05):
    return latency_tables.tracker_table(
        rng, tracker_truth, TRACKERS, (1, 2, 4), samples=samples, sigma=sigma
    )


def fitting_rows(table):
    return table[~table.cpu.isin([0.5, 1.5])]


def heldout_mape(model, table):
    cells = model.cells(table[table.cpu.isin([0.5, 1.5])])
    predicted = model.predict_cells(cells)
    return float(np.mean(np.abs(predicted - cells.ms) / cells.ms))


@pytest.fixture(scope="module")
def trackers():
    table = tracker_table(np.random.default_rng(1))
    return TrackerLatencyModel().fit(fitting_rows(table)), table


def test_detector_interpolates_a_duty_cycle_to_within_noise_at_heldout_levels():
    table = detector_table(np.random.default_rng(0))
    model = DetectorLatencyModel().fit(fitting_rows(table))
    mape = heldout_mape(model, table)
    print(f"detector held-out MAPE, duty-cycle truth: {mape:.3f}")
    assert mape < 0.04  # medians of 15 samples with 8% noise


def test_detector_stays_within_ten_percent_for_a_smooth_convex_slowdown():
    table = detector_table(np.random.default_rng(0), cpu_shape=convex)
    model = DetectorLatencyModel().fit(fitting_rows(table))
    mape = heldout_mape(model, table)
    print(f"detector held-out MAPE, convex truth: {mape:.3f}")
    assert mape < 0.10


def test_detector_tail_ratio_is_the_spread_of_the_samples():
    table = detector_table(np.random.default_rng(2), samples=60, sigma=0.1)
    model = DetectorLatencyModel().fit(fitting_rows(table))
    assert model.tail_ratio_ == pytest.approx(np.exp(1.645 * 0.1), rel=0.04)


def test_tracker_cost_grows_with_objects_everywhere_and_linearly_past_the_data(
    trackers,
):
    model, _ = trackers
    objects = np.arange(0, 101, dtype=float)
    groups = list(model.surfaces_.groups)
    for cpu, membw in [*FIT_LEVELS, *HELDOUT_LEVELS, (3.0, 4000.0)]:
        level = ContentionLevels(cpu=cpu, membw_mbps=membw)
        ms = np.array(
            [model.predict(groups, n, 60.0, (1280, 720), level) for n in objects]
        )
        assert np.all(np.diff(ms, axis=0) > 0), (cpu, membw)
        beyond = ms[100] - ms[40]
        assert beyond == pytest.approx((ms[40] - ms[1]) * 60 / 39, rel=1e-9)


def test_a_tracker_with_no_object_costs_nothing_and_a_share_of_one_costs_a_share(
    trackers,
):
    """Nothing tracked, no view of the frame: the per-frame terms go with objects."""
    model, _ = trackers
    groups = list(model.surfaces_.groups)
    level = ContentionLevels(cpu=1.0)
    ms = {n: model.predict(groups, n, 60.0, (1280, 720), level) for n in (0, 0.5, 1)}
    assert np.all(ms[0] == 0) and np.all(ms[1] > 0)
    np.testing.assert_allclose(ms[0.5], ms[1] / 2, rtol=1e-9)


def test_tracker_interpolates_heldout_levels_from_corner_cells(trackers):
    model, table = trackers
    mape = heldout_mape(model, table)
    print(f"tracker held-out MAPE: {mape:.3f}")
    assert mape < 0.05


@pytest.mark.parametrize("phase", ["seed", "update"])
def test_kcf_is_dearer_than_medianflow_exactly_where_the_truth_says_so(trackers, phase):
    model, _ = trackers
    checked = 0
    for (w, h), size, n, (cpu, membw) in product(
        FRAMES, (40, 120), (5, 40), HELDOUT_LEVELS
    ):
        size_px = size * w / 1280
        args = (n, size_px, w, h, cpu, membw)
        true_kcf = tracker_truth("kcf", 1, phase, *args)
        true_medianflow = tracker_truth("medianflow", 1, phase, *args)
        if abs(true_kcf / true_medianflow - 1) < 0.15:
            continue  # too close to call through sample noise
        level = ContentionLevels(cpu=cpu, membw_mbps=membw)
        kcf, medianflow = model.predict(
            [f"kcf/ds1/{phase}", f"medianflow/ds1/{phase}"], n, size_px, (w, h), level
        )
        assert (kcf > medianflow) == (true_kcf > true_medianflow)
        checked += 1
    assert checked >= 8


def hand_models():
    """Stage models with round coefficients, to check the composition by hand."""

    def surfaces(groups, features, coef, cpu=(0.0,)):
        return {
            "grid": {"cpu": list(cpu), "membw_mbps": [0.0], "gpu_pct": [0.0]},
            "features": features,
            "groups": groups,
            "coef_ms": coef,
        }

    def model(kind, groups, features, coef, cpu=(0.0,)):
        return {
            "kind": kind,
            "format_version": 1,
            "params": {"smoothing": 0.001},
            "surfaces": surfaces(groups, features, coef, cpu),
            "tail_ratio": [1.2] * len(groups),
        }

    tracker_features = list(TrackerLatencyModel.FEATURES)
    return {
        "kind": "BranchLatencyModel",
        "format_version": 1,
        "components": {
            # 10 ms idle, 20 ms with 2 cores busy: 15 ms at cpu=1.
            "detector": model(
                "DetectorLatencyModel",
                ["yolox_nano/s416"],
                ["intercept", "frame_mpx"],
                [[[10.0, 0.0], [20.0, 0.0]]],
                cpu=(0.0, 2.0),
            ),
            "tracker": model(
                "TrackerLatencyModel",
                ["kcf/ds2/seed", "kcf/ds2/update"],
                tracker_features,
                [[[1.0, 0.0, 0.5, 0.0, 0.0, 0.0]], [[0.5, 0.0, 0.25, 0.0, 0.0, 0.0]]],
            ),
            "association": model(
                "AssociationModel",
                ["association"],
                list(AssociationModel.FEATURES),
                [[[0.125, 0.0, 0.0, 1.0]]],
            ),
            "overhead": model(
                "OverheadModel", ["detect", "track"], ["intercept"], [[[0.5]], [[0.25]]]
            ),
            "switching": {
                "kind": "SwitchingModel",
                "format_version": 1,
                "pairs_ms": {"yolox_nano/s320->yolox_nano/s416": 8.0},
            },
        },
    }


def test_branch_composition_is_the_documented_arithmetic():
    model = BranchLatencyModel.from_dict(hand_models())
    tracked, detect_only = (
        Branch.parse("yolox_nano/s416/si4/kcf/ds2"),
        Branch.parse("yolox_nano/s416/si1"),
    )
    out = model.predict(
        [tracked, detect_only], ContentionLevels(cpu=1.0), 10.0, 50.0, (640, 480)
    )
    # detector 15 + association 0.125 + 10*10/100 + seed 1 + 0.5*10 + overhead 0.5
    assert out["detect_frame"].tolist() == [22.625, 16.625]
    # update 0.5 + 0.25*10 + overhead 0.25; none when every frame is detected
    assert out["track_frame"].tolist() == [3.25, 0.0]
    assert out["gof_mean"].tolist() == [(22.625 + 3 * 3.25) / 4, 16.625]
    switched = model.predict(
        [tracked],
        ContentionLevels(cpu=1.0),
        10.0,
        50.0,
        (640, 480),
        switch_from="yolox_nano/s320",
    )
    assert switched["switching"].tolist() == [8.0]
    assert switched["gof_mean"].tolist() == [(22.625 + 3 * 3.25) / 4 + 8.0 / 4]
    stay = model.predict(
        [tracked],
        None,
        10.0,
        50.0,
        (640, 480),
        switch_from="yolox_nano/s320",
        stay_frames=16,
    )
    # Idle: detector 10 ms, so detect_frame 17.625; the switch spread over 16.
    assert stay["gof_mean"].tolist() == [(17.625 + 3 * 3.25) / 4 + 8.0 / 16]
    busy = ContentionLevels(cpu=1.0)
    assert model.detector.predict(["yolox_nano/s416"], (640, 480), busy) == [15.0]
    assert model.association.predict(10.0, 10.0, busy) == 1.125
    assert model.overhead.predict(False, busy) == 0.25
    groups = ["kcf/ds2/update", "kcf/ds2/seed"]
    assert model.tracker.predict(groups, 10.0, 50.0, (640, 480)).tolist() == [3.0, 6.0]
    one = model.predict_one(tracked, busy, 10.0, 50.0, (640, 480))
    assert one == {"detect_frame": 22.625, "track_frame": 3.25, "gof_mean": 8.09375}


def test_switching_falls_back_to_pairs_into_the_same_kernel_then_to_all_pairs():
    rows = [
        ("yolox_nano", 320, "yolox_nano", 416, 8.0),
        ("fastestdet", 352, "yolox_nano", 416, 6.0),
        ("yolox_nano", 416, "yolox_nano", 320, 1.0),
        ("yolox_nano", 416, "yolox_nano", 320, -3.0),  # median -1: counts as 0
    ]
    table = pd.DataFrame(
        [switching_row((a, sa), (b, sb), (0.0, 0.0), ms) for a, sa, b, sb, ms in rows]
    )
    model = SwitchingModel().fit(table)
    costs = model.predict(
        "nanodet_m/s320",
        ["yolox_nano/s416", "yolox_nano/s320", "fastestdet/s288", "nanodet_m/s320"],
    )
    assert costs.tolist() == [7.0, 0.0, 6.0, 0.0]
    assert model.pair_ms("yolox_nano/s320", "yolox_nano/s416") == 8.0


def fitted_branch_model(trackers):
    model, _ = trackers
    rng = np.random.default_rng(3)
    detector = DetectorLatencyModel().fit(fitting_rows(detector_table(rng)))
    association = pd.DataFrame(
        [
            {"objects": n, "previous_objects": m, **levels_of(c, b), "ms": ms}
            for (c, b), n, m in product(FIT_LEVELS, (1, 40), (1, 40))
            for ms in [0.02 + 0.001 * n * m * (1 + c)]
        ]
    )
    overhead = pd.DataFrame(
        [
            {"detected": d, **levels_of(c, b), "ms": 0.05 if d else 0.02}
            for (c, b), d in product(FIT_LEVELS, (True, False))
        ]
    )
    return BranchLatencyModel(
        detector,
        model,
        AssociationModel().fit(association),
        OverheadModel().fit(overhead),
    )


def many_branches():
    kernels = [f"{d}/s{s}" for d, s in KERNELS]
    names = [f"{k}/si1" for k in kernels] + [
        f"{k}/si{si}/{t}/ds{ds}"
        for k, si, t, ds in product(kernels, SAMPLING, TRACKERS, (1, 2, 4))
    ]
    return [Branch.parse(n) for n in names]


def test_vectorised_prediction_over_a_thousand_branches_matches_one_at_a_time(
    trackers,
):
    model = fitted_branch_model(trackers)
    branches = many_branches()
    assert len(branches) >= 1000
    bound = model.bind(branches)
    level = ContentionLevels(cpu=1.3, membw_mbps=1000)
    calls = 200
    start = time.perf_counter()
    for _ in range(calls):
        out = model.predict(bound, level, 35.0, 48.0, (1280, 720))
    per_call_us = (time.perf_counter() - start) / calls * 1e6
    print(f"predict {len(branches)} bound branches: {per_call_us:.0f} us per call")
    for i in range(0, len(branches), 97):
        one = model.predict_one(branches[i], level, 35.0, 48.0, (1280, 720))
        assert one == {k: out[k][i] for k in one}


def test_objects_may_differ_per_branch(trackers):
    model = fitted_branch_model(trackers)
    branches = many_branches()[:: len(many_branches()) // 50]
    objects = np.linspace(0, 60, len(branches))
    out = model.predict(branches, None, objects, 30.0, (480, 360))
    for branch, n, gof in zip(branches, objects, out["gof_mean"], strict=True):
        alone = model.predict([branch], None, float(n), 30.0, (480, 360))
        assert alone["gof_mean"][0] == pytest.approx(gof, rel=1e-12)


def test_binding_names_a_kernel_or_tracker_the_profile_lacks(trackers):
    model = fitted_branch_model(trackers)
    with pytest.raises(
        ValueError, match=r"detector kernel: no profile for nanodet_m/s320"
    ):
        model.bind([Branch.parse("nanodet_m/s320/si1")])
    with pytest.raises(ValueError, match=r"tracker seed: no profile for kcf/ds8/seed"):
        model.bind([Branch.parse("yolox_nano/s416/si4/kcf/ds8")])


def test_a_fitted_model_round_trips_through_json_unchanged(trackers):
    model = fitted_branch_model(trackers)
    text = json.dumps(model.to_dict(), allow_nan=False)
    again = BranchLatencyModel.from_dict(json.loads(text))
    assert json.dumps(again.to_dict()) == text
    branches = many_branches()
    level = ContentionLevels(cpu=0.4, membw_mbps=2500)
    for name, values in model.predict(branches, level, 7.0, 20.0, (480, 360)).items():
        again_values = again.predict(branches, level, 7.0, 20.0, (480, 360))[name]
        assert values.tobytes() == again_values.tobytes(), name


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda d: d.update(kind="Other"), r"key 'kind' is 'Other'"),
        (lambda d: d.pop("components"), r"key 'components': missing"),
        (
            lambda d: d["components"]["detector"]["surfaces"]["grid"].update(
                cpu=[2.0, 0.0]
            ),
            r"components.detector': key 'surfaces.grid.cpu': expected a non-empty, "
            r"increasing list",
        ),
        (
            lambda d: d["components"]["overhead"]["surfaces"].update(
                coef_ms=[[[float("nan")]], [[0.1]]]
            ),
            r"components.overhead': key 'surfaces.coef_ms': holds a non-finite",
        ),
        (
            lambda d: d["components"]["tracker"]["surfaces"].update(
                features=["intercept"]
            ),
            r"components.tracker': key 'surfaces.coef_ms': expected shape 2x1x1",
        ),
        (
            lambda d: d["components"]["detector"].update(tail_ratio=[1.0, 2.0]),
            r"components.detector': key 'tail_ratio': expected shape 1",
        ),
        (
            lambda d: d["components"]["switching"].update(pairs_ms={"a": "b"}),
            r"components.switching': key 'pairs_ms'",
        ),
        (
            lambda d: d["components"]["association"]["params"].pop("smoothing"),
            r"components.association': key 'params.smoothing': missing",
        ),
    ],
)
def test_a_malformed_dict_is_refused_naming_the_model_and_key(spoil, message):
    spoiled = hand_models()
    spoil(spoiled)
    with pytest.raises(ModelFormatError, match=message):
        BranchLatencyModel.from_dict(spoiled)


def test_predictions_at_alternating_levels_match_a_fresh_model():
    """The model keeps the last level's blended coefficients: switching levels
    back and forth must give what a model that never cached gives."""
    from hand_profile import latency_model, space

    cached = latency_model()
    for cpu in [0.0, 2.0, 0.0, 1.0, 1.0]:
        level = ContentionLevels(cpu)
        got = cached.predict(space(), level, 8.0, 60.0, (480, 360))["gof_mean"]
        fresh = latency_model().predict(space(), level, 8.0, 60.0, (480, 360))
        np.testing.assert_array_equal(got, fresh["gof_mean"])
    busy = cached.predict(space(), ContentionLevels(2.0), 8.0, 60.0, (480, 360))
    idle = cached.predict(space(), ContentionLevels(0.0), 8.0, 60.0, (480, 360))
    assert (busy["gof_mean"] > idle["gof_mean"]).all()


def test_per_branch_counts_give_what_each_branch_alone_would():
    """A decision plans each kernel with its own count: counts per group of
    branches (gathered once per count) match predicting each branch alone."""
    model, branches = hand_profile.latency_model(), hand_profile.space()
    counts = np.array([0.0, 3.0, 12.5])
    groups = np.resize([0, 1, 2], len(branches))
    level, wh = ContentionLevels(cpu=1.0), hand_profile.FRAME_WH
    together = model.predict(branches, level, counts, 60.0, wh, object_groups=groups)
    per_row = model.predict(branches, level, counts[groups], 60.0, wh)
    for i, branch in enumerate(branches):
        alone = model.predict([branch], level, counts[groups[i]], 60.0, wh)
        for stage in ("detect_frame", "track_frame", "gof_mean", "association"):
            expected = float(np.ravel(alone[stage])[0])
            assert together[stage][i] == pytest.approx(expected)
            assert per_row[stage][i] == pytest.approx(expected)


@pytest.mark.parametrize("how", ["one count", "per branch", "per group"])
def test_slope_in_the_count_is_one_more_object_minus_now(how):
    """A plan judges each frame by the content it had, through each stage's
    change with one more object: the prediction at n + 1 minus at n, for the
    count each branch was predicted at."""
    model, branches = hand_profile.latency_model(), hand_profile.space()
    level, wh = ContentionLevels(cpu=1.0), hand_profile.FRAME_WH
    groups = np.resize([0, 1, 2], len(branches))
    counts = {
        "one count": np.array([7.0]),
        "per branch": np.linspace(0.0, 40.0, len(branches)),
        "per group": np.array([0.0, 3.0, 12.5]),
    }[how]
    each = counts[groups] if how == "per group" else np.resize(counts, len(branches))
    kwargs = {"object_groups": groups} if how == "per group" else {}
    objects = float(counts[0]) if how == "one count" else counts
    out = model.predict(branches, level, objects, 60.0, wh, **kwargs)
    for i, branch in enumerate(branches):
        now = model.predict([branch], level, float(each[i]), 60.0, wh)
        more = model.predict([branch], level, float(each[i]) + 1.0, 60.0, wh)
        for stage in ("association", "tracker_seed", "tracker_update"):
            slope = float(more[stage][0] - now[stage][0])
            assert out[f"{stage}_per_object"][i] == pytest.approx(slope, abs=1e-12)
    tracked = np.array([b.tracker is not None for b in branches])
    assert (out["tracker_update_per_object"][tracked] > 0).all()
    assert (out["tracker_seed_per_object"][~tracked] == 0).all()
