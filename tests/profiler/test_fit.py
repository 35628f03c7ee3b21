"""The fit step on a whole synthetic profile whose truth is known
(`fit_tables`: formulas plus noise, shaped as the profiler measures them)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from fit_tables import (
    FRAMES,
    HELDOUT_LEVELS,
    KERNELS,
    kernel_size_ratio,
    make_tables,
    validation_branches,
)

from approxrt.branch import Branch
from approxrt.config import load_config
from approxrt.contention import ContentionLevels
from approxrt.profiler.fit import fit_profile, load_models
from approxrt.scheduler.model_io import ModelFormatError


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def tables():
    return make_tables()


@pytest.fixture(scope="module")
def result(tables, config):
    return fit_profile(tables, config)


def test_default_config_holds_out_the_levels_these_tables_hold_out(config):
    held = {
        (level.cpu, level.membw_mbps)
        for level in map(ContentionLevels.parse, config.profile.heldout_levels)
    }
    assert held == set(HELDOUT_LEVELS)


def test_detector_kernel_mape_on_heldout_levels_is_within_ten_percent(result):
    detector = result.errors["detector"]
    print("detector held-out MAPE by kernel", detector["mape_by_group"])
    assert detector["cells"] == len(KERNELS) * len(FRAMES) * len(HELDOUT_LEVELS)
    assert set(detector["mape_by_group"]) == {f"{d}/s{s}" for d, s in KERNELS}
    assert max(detector["mape_by_group"].values()) <= 0.10


def test_whole_branch_gof_mean_mape_is_within_fifteen_percent_also_when_crowded(
    result,
):
    branch = result.errors["branch"]
    print("branch held-out errors", branch)
    assert branch["branches"] == len(validation_branches()) >= 30
    assert branch["skipped"] == []
    assert branch["heldout_rows"] == branch["branches"]
    assert branch["crowded_branches"] >= 15
    assert branch["gof_mean_mape"] <= 0.15
    assert branch["crowded_gof_mean_mape"] <= 0.15


def test_content_aware_accuracy_beats_the_agnostic_table_on_heldout_segments(result):
    accuracy = result.errors["accuracy"]
    print("accuracy held-out MAE", accuracy)
    assert accuracy["segments"] == 24 and accuracy["folds"] == 5
    table = accuracy["accuracy_table_mae"]
    light = accuracy["accuracy_content_light_mae"]
    heavy = accuracy["accuracy_content_heavy_mae"]
    assert light < table
    # Darkness is visible only in the colour histogram: heavy features help.
    assert heavy < light
    assert accuracy["heavy_features"] == ["color_hist"]


def test_every_model_carries_its_heldout_error_and_pairs_for_plots(result):
    assert set(result.models) == {
        "branch_latency",
        "accuracy_table",
        "accuracy_content_light",
        "accuracy_content_heavy",
        "accuracy_kernel_views",
    }
    latency = result.models["branch_latency"]
    assert latency["heldout_error"] == result.errors["branch"]
    detector = latency["components"]["detector"]["heldout_error"]
    assert detector == result.errors["detector"]
    for name in ("accuracy_table", "accuracy_content_light"):
        mae = result.models[name]["heldout_error"]["mae"]
        assert mae == result.errors["accuracy"][f"{name}_mae"]
    assert set(result.pairs) == {
        "detector",
        "tracker",
        "association",
        "overhead",
        "branch",
        "accuracy_table",
        "accuracy_content_light",
        "accuracy_content_heavy",
    }
    for name, (measured, predicted) in result.pairs.items():
        assert len(measured) == len(predicted) > 0, name
        assert name in result.errors
    json.dumps(result.models, allow_nan=False)
    json.dumps(result.errors, allow_nan=False)


def test_heldout_rows_are_never_fitted_on(tables, config, result):
    spoiled = dict(tables)
    for name in ("latency/detector", "latency/tracker"):
        table = tables[name].copy()
        held = table.cpu.isin([0.5, 1.5])
        column = "total_ms" if name == "latency/detector" else "ms"
        table.loc[held, column] *= 50
        spoiled[name] = table
    again = fit_profile(spoiled, config)
    for stage in ("detector", "tracker"):
        fitted = again.models["branch_latency"]["components"][stage]["surfaces"]
        assert (
            fitted == result.models["branch_latency"]["components"][stage]["surfaces"]
        )
    # Measured 50 times slower than they were fitted: about 98% off.
    assert again.errors["detector"]["mape"] > 0.9


PREDICT_IN_FRESH_PROCESS = """
import json, sys
import numpy as np
from approxrt.branch import Branch
from approxrt.contention import ContentionLevels
from approxrt.scheduler.profile_models import load_models

models = load_models(json.load(open(sys.argv[1])))
branches = [Branch.parse(n) for n in json.load(open(sys.argv[2]))]
features = json.load(open(sys.argv[3]))
features["color_hist"] = np.array(features["color_hist"])
out = {}
for spec in LEVELS:
    level = ContentionLevels.parse(spec)
    latency = models.latency.predict(branches, level, 33.0, 41.5, (640, 480))
    out[spec] = latency["gof_mean"].tobytes().hex()
out["table"] = models.accuracy_table.predict(branches).tobytes().hex()
out["light"] = models.content_light.predict(branches, features).tobytes().hex()
out["heavy"] = models.content_heavy.predict(branches, features).tobytes().hex()
out["modules"] = sorted(sys.modules)
print(json.dumps(out))
"""
LEVELS = ["cpu=0.7,membw=900", "cpu=2.5", "cpu=1.5,membw=1500"]
CONTENT = {
    "objects": 9.0,
    "object_size_px": 30.0,
    "object_speed_px": 4.0,
    "frame_w": 640,
    "frame_h": 480,
    "color_hist": np.linspace(0, 0.2, 12).tolist(),
}
# si8 was never scored for accuracy: the knob fallback must survive JSON too.
FRESH_BRANCHES = [*validation_branches(), Branch.parse("yolox_nano/s416/si8/kcf/ds2")]


@pytest.fixture(scope="module")
def fresh(result, tmp_path_factory):
    """What a new Python process predicts from the models' JSON."""
    folder = tmp_path_factory.mktemp("fresh")
    paths = [folder / name for name in ("models.json", "branches.json", "content.json")]
    paths[0].write_text(json.dumps(result.models))
    paths[1].write_text(json.dumps([str(b) for b in FRESH_BRANCHES]))
    paths[2].write_text(json.dumps(CONTENT))
    script = PREDICT_IN_FRESH_PROCESS.replace("LEVELS", repr(LEVELS))
    done = subprocess.run(
        [sys.executable, "-c", script, *paths], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_profile_loaded_in_a_fresh_process_predicts_bit_identical_numbers(
    result, fresh
):
    fitted, branches = result.fitted, FRESH_BRANCHES
    for spec in LEVELS:
        level = ContentionLevels.parse(spec)
        gof = fitted.latency.predict(branches, level, 33.0, 41.5, (640, 480))
        assert gof["gof_mean"].tobytes().hex() == fresh[spec]
    content = {**CONTENT, "color_hist": np.array(CONTENT["color_hist"])}
    assert fitted.accuracy_table.predict(branches).tobytes().hex() == fresh["table"]
    light = fitted.content_light.predict(branches, content)
    heavy = fitted.content_heavy.predict(branches, content)
    assert light.tobytes().hex() == fresh["light"]
    assert heavy.tobytes().hex() == fresh["heavy"]


def test_loading_and_predicting_imports_no_ml_framework_nor_detector(fresh):
    roots = {name.split(".")[0] for name in fresh["modules"]}
    assert {"numpy", "approxrt"} <= roots
    frameworks = {"torch", "torchvision", "onnxruntime", "sklearn", "scipy", "cv2"}
    assert roots & (frameworks | {"pandas"}) == set()
    ours = [m for m in fresh["modules"] if m.startswith("approxrt.")]
    assert not [
        m for m in ours if m.startswith(("approxrt.branches", "approxrt.profiler"))
    ]


def test_predict_branch_joins_latency_and_accuracy(result):
    models = load_models(result.models)
    branch = Branch.parse("yolox_nano/s320/si4/kcf/ds2")
    level = ContentionLevels(cpu=1.0)
    out = models.predict_branch(branch, level, 10.0, 50.0, (1280, 720))
    expected = models.latency.predict([branch], level, 10.0, 50.0, (1280, 720))
    assert out["latency_ms"]["gof_mean"] == expected["gof_mean"][0]
    assert out["latency_ms"]["track_frame"] > 0
    assert out["accuracy"] == models.accuracy_table.predict([branch])[0]
    light = {
        "objects": 10.0,
        "object_size_px": 50.0,
        "object_speed_px": 6.0,
        "frame_w": 1280,
        "frame_h": 720,
    }
    given = models.predict_branch(
        branch, level, 10.0, 50.0, (1280, 720), features={"object_speed_px": 6.0}
    )
    assert given["accuracy"] == models.content_light.predict([branch], light)[0]
    dark = {**light, "color_hist": np.eye(12)[2]}
    heavy = models.predict_branch(branch, level, 10.0, 50.0, (1280, 720), features=dark)
    assert heavy["accuracy"] == models.content_heavy.predict([branch], dark)[0]
    assert len({out["accuracy"], given["accuracy"], heavy["accuracy"]}) == 3


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda m: m.pop("branch_latency"), "no 'branch_latency' model"),
        (
            lambda m: m["branch_latency"]["components"]["detector"].pop("surfaces"),
            "'branch_latency.components.detector': key 'surfaces.grid.cpu': missing",
        ),
        (
            lambda m: m["branch_latency"]["components"]["tracker"]["surfaces"].update(
                coef_ms=[[1.0]]
            ),
            "'branch_latency.components.tracker': key 'surfaces.coef_ms': "
            "expected shape",
        ),
        (
            lambda m: m["accuracy_table"].update(format_version=99),
            "'accuracy_table': key 'format_version' is 99",
        ),
        (
            lambda m: m["accuracy_content_light"].update(theta="oops"),
            "'accuracy_content_light': key 'theta'",
        ),
        (
            lambda m: m["accuracy_content_heavy"]["projections"][0].pop("mean"),
            "'accuracy_content_heavy': key 'projections.0.mean': missing",
        ),
        (
            lambda m: m["accuracy_kernel_views"]["size_ratio"].update(x=-1),
            "'accuracy_kernel_views': key 'size_ratio': expected {kernel: positive",
        ),
    ],
)
def test_a_malformed_model_dict_names_the_model_and_key(result, spoil, message):
    models = json.loads(json.dumps(result.models))
    spoil(models)
    with pytest.raises(ModelFormatError, match=message.replace("(", r"\(")):
        load_models(models)


def test_kernel_views_learn_how_much_larger_each_kernels_boxes_look(result):
    """The tables' kernels see sizes ``kernel_size_ratio`` times the reference's
    (5% noise per segment); a live run divides that back out."""
    views = load_models(result.models).kernel_views
    for detector, input_size in KERNELS:
        learned = views.size_ratio(f"{detector}/s{input_size}")
        assert learned == pytest.approx(kernel_size_ratio(input_size), rel=0.03)
    assert views.size_ratio("nanodet_m/s320") == 1.0  # never profiled
    assert result.errors["accuracy"]["kernel_size_ratio"] == views.size_ratio_


def test_missing_tables_and_columns_are_named(tables, config):
    without = {k: v for k, v in tables.items() if k != "latency/overhead"}
    with pytest.raises(ValueError, match=r"needs \['latency/overhead'\]"):
        fit_profile(without, config)
    broken = dict(
        tables, **{"latency/tracker": tables["latency/tracker"].drop(columns="phase")}
    )
    with pytest.raises(
        ValueError, match=r"latency/tracker: missing columns \['phase'\]"
    ):
        fit_profile(broken, config)


def test_a_space_without_tracking_fits_with_an_empty_tracker_table(tables, config):
    detect_only = dict(tables)
    detect_only["latency/tracker"] = tables["latency/tracker"].iloc[:0]
    detect_only["latency/branches"] = tables["latency/branches"][
        tables["latency/branches"].branch.str.endswith("/si1")
    ]
    detect_only.pop("accuracy/segments")
    fitted = fit_profile(detect_only, config)
    assert fitted.errors["tracker"] is None
    assert fitted.errors["accuracy"] is None
    assert fitted.errors["branch"]["branches"] == len(KERNELS)
    assert set(fitted.models) == {"branch_latency"}
    models = load_models(fitted.models)
    out = models.predict_branch(
        Branch.parse("yolox_nano/s320/si1"), None, 4.0, 30.0, (480, 360)
    )
    assert out["latency_ms"]["track_frame"] == 0.0
    assert np.isnan(out["accuracy"])
    with pytest.raises(ValueError, match="has a tracker but the profile has no"):
        models.latency.bind([Branch.parse("yolox_nano/s320/si4/kcf/ds1")])
