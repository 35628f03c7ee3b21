"""The profile directory: round trips, and a clear error for every bad profile."""

import json
import logging

import numpy as np
import pandas as pd
import pytest

from approxrt.profile_schema import SCHEMA_VERSION, TABLES
from approxrt.profiler.fingerprint import device_fingerprint
from approxrt.profiler.store import ProfileError, ProfileStore, open_profile


def _association_rows(n=5):
    rng = np.random.default_rng(0)
    columns = TABLES["latency/association"]
    frame = pd.DataFrame({c: rng.random(n) for c in columns})
    frame["objects"] = np.arange(n)
    return frame


@pytest.fixture
def store(tmp_path):
    return ProfileStore.create(tmp_path / "profile", config={"detectors": ["x"]})


def test_a_new_profile_records_schema_device_and_libraries(store):
    meta = store.read_meta()
    assert meta["schema_version"] == SCHEMA_VERSION
    assert meta["device"] == device_fingerprint()
    assert "numpy" in meta["libraries"] and meta["config"] == {"detectors": ["x"]}


def test_tables_and_models_round_trip_exactly(store):
    rows = _association_rows()
    store.write_table("latency/association", rows)
    pd.testing.assert_frame_equal(store.read_table("latency/association"), rows)
    models = {"detector": {"a": [0.1, 1e-17, 3.0000000000000004]}}
    store.write_models(models)
    assert store.read_models() == models
    assert not list(store.path.rglob("*.partial"))


def test_a_table_missing_a_schema_column_is_refused(store):
    rows = _association_rows().drop(columns=["ms"])
    with pytest.raises(ProfileError, match=r"latency/association.*missing.*'ms'"):
        store.write_table("latency/association", rows)


def test_creating_over_an_existing_profile_is_refused(store):
    with pytest.raises(ProfileError, match="already holds a profile"):
        ProfileStore.create(store.path, config={})


def test_a_missing_directory_or_meta_is_a_clear_error(tmp_path):
    with pytest.raises(ProfileError, match="no such directory"):
        open_profile(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProfileError, match=r"no meta\.json"):
        open_profile(tmp_path / "empty")


def test_a_truncated_meta_json_is_a_clear_error(store):
    meta = (store.path / "meta.json").read_text()
    (store.path / "meta.json").write_text(meta[: len(meta) // 2])
    with pytest.raises(ProfileError, match=r"meta.json: corrupt JSON at line \d+"):
        open_profile(store.path)


def test_a_truncated_parquet_table_is_a_clear_error(store):
    path = store.write_table("latency/association", _association_rows(200))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ProfileError, match="corrupt or truncated"):
        store.read_table("latency/association")


def test_a_missing_table_names_the_step_to_run(store):
    with pytest.raises(ProfileError, match="no latency/detector table"):
        store.read_table("latency/detector")


def test_a_corrupt_model_file_names_the_file(store):
    store.write_models({"tracker": {"k": 1}})
    (store.path / "models" / "tracker.json").write_text('{"k": ')
    with pytest.raises(ProfileError, match=r"tracker.json: corrupt JSON"):
        store.read_models()


def test_another_schema_version_is_refused_with_both_versions(store):
    store.update_meta(schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(ProfileError, match=rf"version {SCHEMA_VERSION + 1}.*reads"):
        open_profile(store.path)


def test_another_device_warns_or_refuses_with_the_difference(store, caplog):
    device = {**store.read_meta()["device"], "cpu_model": "Cortex-A78AE (Orin)"}
    store.update_meta(device=device)
    with caplog.at_level(logging.WARNING):
        open_profile(store.path)
    assert "Cortex-A78AE (Orin)" in caplog.text and "latency" in caplog.text
    with pytest.raises(ProfileError, match="another device"):
        open_profile(store.path, on_other_device="refuse")


def test_nothing_in_a_profile_is_a_pickle(store):
    store.write_table("latency/association", _association_rows())
    store.write_models({"m": {"w": [1.0]}})
    for path in store.path.rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80"), path
    json.loads((store.path / "meta.json").read_text())
