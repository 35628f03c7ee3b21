"""`Config`: every knob of approxrt, loaded from `default.yaml` plus overrides.

Precedence: the packaged ``default.yaml`` < a user's YAML file < keyword overrides
(command-line flags, control API). Unknown keys are refused with the closest valid
name, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default.yaml")

PositiveInt = Field(gt=0)


class ProfileConfig(BaseModel):
    """Settings of `approxrt profile`; meanings are documented in ``default.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_levels: list[float] = Field(min_length=1)
    membw_levels_mbps: list[float] = Field(min_length=1)
    gpu_levels_pct: list[float] = Field(min_length=1)
    heldout_levels: list[str]
    settle_s: float = Field(ge=0)
    cpu_backend: Literal["builtin", "stress-ng", "auto"]
    frame_sizes: list[tuple[int, int]] = Field(min_length=1)
    detector_samples: int = PositiveInt
    tracker_objects: list[int] = Field(min_length=1)
    tracker_object_sizes_px: list[int] = Field(min_length=1)
    tracker_samples: int = PositiveInt
    validation_branches: int = Field(ge=0)
    segment_frames: int = PositiveInt
    reference_branch: str | None
    synthetic_frames: int = PositiveInt
    heavy_features: list[str]
    workers: int = Field(ge=0)


class SchedulerConfig(BaseModel):
    """Settings of the adaptive scheduler; meanings are in ``default.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_sampling_interval: int = PositiveInt
    margin_quantile: float = Field(gt=0.5, le=1)
    margin_window: int = PositiveInt
    hysteresis_ap: float = Field(ge=0)
    hysteresis_sla: float = Field(ge=0, lt=1)
    hysteresis_sla_below_ap: float = Field(ge=0)


class Config(BaseModel):
    """Frozen settings; field meanings are documented in ``default.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models_dir: str | None
    cache_dir: str | None
    download: bool
    device: str
    gpu_precision: Literal["tf32", "fp32", "fp16"]
    cuda_graphs: bool
    num_threads: int = Field(ge=0)
    random_weights: bool

    score_threshold: float = Field(ge=0, le=1)
    nms_iou_threshold: float = Field(gt=0, le=1)
    max_detections: int = PositiveInt
    rect_input: dict[str, bool]
    classes: list[str] | None

    detectors: list[str]
    input_sizes: dict[str, list[int]]
    proposals: list[int]
    sampling_intervals: list[int]
    trackers: list[str]
    downsamples: list[int]

    tracker_min_confidence: float = Field(ge=0, le=1)
    confidence_decay: float = Field(gt=0, le=1)
    association_iou_threshold: float = Field(gt=0, le=1)
    csrt_min_area_px: int = Field(ge=0)
    flow_grid_px: int = PositiveInt
    flow_min_motion_px: float = Field(ge=0)

    batch_streams: bool
    batch_max_frames: int = PositiveInt
    batch_wait_ms: float = Field(ge=0)
    batch_timeout_s: float = Field(gt=0)

    warmup_runs: int = Field(ge=0)
    sla_ms: float | None = Field(default=None, gt=0)
    max_frames: int | None = Field(default=None, gt=0)

    profile: ProfileConfig
    scheduler: SchedulerConfig

    def replace(self, **overrides: Any) -> Config:
        """A copy with ``overrides`` applied and validated (None values are ignored)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return _build({**self.model_dump(), **given}, source="overrides")


# Nested sections of the config: a user's file may give any subset of their keys.
_SECTIONS: dict[str, type[BaseModel]] = {
    "profile": ProfileConfig,
    "scheduler": SchedulerConfig,
}


def _check_keys(
    values: dict[str, Any], source: str, model: type[BaseModel] = Config
) -> None:
    valid = list(model.model_fields)
    for key in values:
        if key not in model.model_fields:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"config {source}: unknown key {key!r}{hint}")
    for section, model in _SECTIONS.items():
        if isinstance(values.get(section), dict):
            _check_keys(values[section], f"{source} {section}", model)


def _build(values: dict[str, Any], source: str) -> Config:
    _check_keys(values, source)
    try:
        return Config(**values)
    except ValidationError as error:
        raise ValueError(f"config {source}: {validation_problems(error)}") from None


def validation_problems(error: ValidationError) -> str:
    """Every field pydantic refused, as ``field: why (got value)``, joined."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
        for e in error.errors()
    )


def read_yaml_mapping(path: Path, what: str = "config file") -> dict[str, Any]:
    """The mapping a YAML file holds; a ValueError naming ``what`` and the file."""
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise ValueError(f"{what} {path}: cannot read it ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{what} {path}: not valid YAML ({error})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{what} {path}: expected a mapping of keys, got {values!r}")
    return values


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Defaults, then the YAML file at ``path``, then non-None ``overrides``."""
    if path is None:
        return config_from_values({}, str(DEFAULT_CONFIG_PATH)).replace(**overrides)
    return config_from_values(read_yaml_mapping(Path(path)), str(path)).replace(
        **overrides
    )


def config_from_values(values: dict[str, Any], source: str) -> Config:
    """The defaults with ``values`` (any subset of the keys) over them.

    A section given in part keeps the defaults of the keys it leaves out, so a
    config recorded by an older approxrt (a profile's) still loads.
    """
    if not isinstance(values, dict):
        raise ValueError(f"config {source}: expected a mapping of keys, got {values!r}")
    merged = read_yaml_mapping(DEFAULT_CONFIG_PATH)
    _check_keys(values, source)
    for key, value in values.items():
        if key in _SECTIONS and isinstance(value, dict):
            value = {**merged[key], **value}
        merged[key] = value
    return _build(merged, source)
