import re

import pytest

from approxrt.config import (
    DEFAULT_CONFIG_PATH,
    Config,
    ProfileConfig,
    SchedulerConfig,
    config_from_values,
    load_config,
)


def test_every_config_field_has_a_documented_key_in_default_yaml():
    text = DEFAULT_CONFIG_PATH.read_text()
    documented = set(re.findall(r"^(\w+):.*#\s*\(", text, flags=re.MULTILINE))
    assert documented == set(Config.model_fields)
    nested = set(re.findall(r"^  (\w+):.*#\s*\(", text, flags=re.MULTILINE))
    assert nested == set(ProfileConfig.model_fields) | set(SchedulerConfig.model_fields)


def test_a_config_recorded_before_a_section_existed_loads_with_its_defaults():
    recorded = load_config().model_dump()
    del recorded["scheduler"]
    config = config_from_values(recorded, "an older profile's meta.json")
    assert config.scheduler == load_config().scheduler


def test_a_profile_section_given_in_part_keeps_the_other_defaults(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text("profile:\n  cpu_levels: [0, 2]\n")
    config = load_config(path)
    assert config.profile.cpu_levels == [0, 2]
    assert config.profile.segment_frames == load_config().profile.segment_frames


def test_an_unknown_profile_key_is_refused_with_the_closest_name(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("profile:\n  cpu_level: [0, 2]\n")
    with pytest.raises(
        ValueError, match=r"profile: unknown key 'cpu_level'.*cpu_levels"
    ):
        load_config(path)


def test_a_user_file_overrides_defaults_and_flags_override_the_file(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("score_threshold: 0.2\nsla_ms: 50\n")
    config = load_config(path, sla_ms=33.3)
    assert config.score_threshold == 0.2
    assert config.sla_ms == 33.3
    assert config.nms_iou_threshold == load_config().nms_iou_threshold


def test_an_unknown_key_names_the_closest_valid_one(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("score_treshold: 0.2\n")
    with pytest.raises(
        ValueError, match=r"unknown key 'score_treshold'.*'score_threshold'"
    ):
        load_config(path)


def test_a_value_out_of_range_names_the_key_and_value():
    with pytest.raises(ValueError, match=r"score_threshold.*got 1\.5"):
        load_config(score_threshold=1.5)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_config(path)


def test_config_is_frozen():
    config = load_config()
    with pytest.raises(ValueError):
        config.sla_ms = 10


def test_gpu_precision_is_one_of_the_torch_routes_arithmetics():
    assert load_config().gpu_precision == "tf32"
    assert load_config(gpu_precision="fp16").gpu_precision == "fp16"
    with pytest.raises(ValueError, match=r"gpu_precision.*got 'fp64'"):
        load_config(gpu_precision="fp64")
