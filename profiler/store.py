"""`ProfileStore`: one profile directory, as `approxrt.profile_schema` lays it out.

Raw samples are Parquet, everything else JSON: a profile loads in a newer
pandas or scikit-learn, and nothing in it is ever unpickled. Every file is
written to a temporary name and renamed into place, so a step cut short leaves
the files of the steps before it whole and no half-written file behind.
Loading checks what can go wrong with a profile that came from elsewhere: a
missing or truncated file, another schema version (refused), another device
(warned: its latency may not hold here, its accuracy does).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from approxrt.config import Config, config_from_values
from approxrt.profile_schema import META_JSON, SCHEMA_VERSION, TABLES, table_path
from approxrt.profiler.fingerprint import (
    device_fingerprint,
    device_mismatch,
    library_versions,
)

log = logging.getLogger(__name__)

MODELS_DIR = "models"
PLOTS_DIR = "plots"


class ProfileError(ValueError):
    """A profile that cannot be used, with the file and the reason."""


class ProfileStore:
    """Reads and writes the files of the profile directory ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # --- creating -------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, config: dict) -> ProfileStore:
        """A new profile at ``path`` (which must not hold one) for ``config``."""
        store = cls(path)
        if (store.path / META_JSON).exists():
            raise ProfileError(
                f"profile {store.path}: already holds a profile; choose a new --out "
                "or run one step into it"
            )
        store.path.mkdir(parents=True, exist_ok=True)
        store.write_meta(
            {
                "schema_version": SCHEMA_VERSION,
                "created": _now(),
                "device": device_fingerprint(),
                "libraries": library_versions(),
                "config": config,
                "models": {},
                "videos": [],
                "steps": {},
            }
        )
        return store

    # --- meta.json ------------------------------------------------------------------
    def read_meta(self) -> dict:
        if not self.path.is_dir():
            raise ProfileError(f"profile {self.path}: no such directory")
        meta = self._read_json(self.path / META_JSON, what="meta.json")
        if not isinstance(meta, dict) or "schema_version" not in meta:
            raise ProfileError(
                f"profile {self.path}/{META_JSON}: no schema_version; not a profile"
            )
        return meta

    def write_meta(self, meta: dict) -> None:
        _write_text_atomic(self.path / META_JSON, json.dumps(meta, indent=2))

    def update_meta(self, **changes: object) -> dict:
        """Merge ``changes`` into meta.json (dicts one level deep) and save it."""
        meta = self.read_meta()
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(meta.get(key), dict):
                meta[key] = {**meta[key], **value}
            else:
                meta[key] = value
        self.write_meta(meta)
        return meta

    def record_step(self, step: str, wall_s: float, **details: object) -> None:
        """Note in meta.json that ``step`` finished, when, and how long it took."""
        self.update_meta(
            steps={step: {"finished": _now(), "wall_s": round(wall_s, 2), **details}}
        )

    # --- tables ---------------------------------------------------------------------
    def write_table(self, table: str, frame: pd.DataFrame) -> Path:
        """Save ``frame`` as ``table``; its columns must be the schema's."""
        _check_columns(table, frame)
        path = self.path / table_path(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".partial")
        frame.to_parquet(temporary, index=False)
        os.replace(temporary, path)
        return path

    def read_table(self, table: str) -> pd.DataFrame:
        path = self.path / table_path(table)
        if not path.exists():
            raise ProfileError(
                f"profile {self.path}: no {table} table ({path.name} missing); "
                f"run the step that measures it"
            )
        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several unrelated types
            raise ProfileError(
                f"profile {path}: cannot read it as Parquet ({error}); "
                "the file is corrupt or truncated"
            ) from None
        _check_columns(table, frame, source=str(path))
        return frame

    def has_table(self, table: str) -> bool:
        return (self.path / table_path(table)).exists()

    def read_tables(self, prefix: str) -> dict[str, pd.DataFrame]:
        """Every table whose name starts with ``prefix`` that the profile holds."""
        return {
            name: self.read_table(name)
            for name in TABLES
            if name.startswith(prefix) and self.has_table(name)
        }

    # --- fitted models --------------------------------------------------------------
    def write_models(self, models: dict[str, dict]) -> None:
        folder = self.path / MODELS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for name, parameters in models.items():
            _write_text_atomic(folder / f"{name}.json", json.dumps(parameters))

    def read_models(self) -> dict[str, dict]:
        folder = self.path / MODELS_DIR
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if not files:
            raise ProfileError(
                f"profile {self.path}: no fitted models in {MODELS_DIR}/; "
                f"run `approxrt profile fit {self.path}`"
            )
        return {
            path.stem: self._read_json(path, what=f"{MODELS_DIR}/{path.name}")
            for path in files
        }

    @property
    def plots_dir(self) -> Path:
        return self.path / PLOTS_DIR

    def _read_json(self, path: Path, what: str) -> object:
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ProfileError(
                f"profile {self.path}: no {what} (not a profile, or its writing "
                "was cut short)"
            ) from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ProfileError(
                f"profile {path}: corrupt JSON at line {error.lineno} column "
                f"{error.colno} ({error.msg}); the file is truncated or damaged"
            ) from None


def profile_config(store: ProfileStore) -> Config:
    """The config a profile was made with (the one all its steps use)."""
    recorded = store.read_meta().get("config")
    try:
        return config_from_values(recorded, f"{store.path}/meta.json")
    except ValueError as error:
        raise ProfileError(
            f"profile {store.path}/meta.json: its config is not valid here ({error})"
        ) from None


def open_profile(path: str | Path, on_other_device: str = "warn") -> ProfileStore:
    """The profile at ``path``, checked: refused on another schema version.

    ``on_other_device`` is ``"warn"`` (log why latency may not hold here),
    ``"refuse"`` (raise) or ``"ignore"``.
    """
    store = ProfileStore(path)
    meta = store.read_meta()
    if meta["schema_version"] != SCHEMA_VERSION:
        raise ProfileError(
            f"profile {store.path}: written with schema version "
            f"{meta['schema_version']!r}, this approxrt reads version "
            f"{SCHEMA_VERSION}; profile again with this version"
        )
    differences = device_mismatch(meta.get("device", {}), device_fingerprint())
    if differences and on_other_device != "ignore":
        message = (
            f"profile {store.path} was measured on another device ("
            + "; ".join(differences)
            + "): its latency predictions may not hold here, its accuracy does"
        )
        if on_other_device == "refuse":
            raise ProfileError(message)
        log.warning(message)
    return store


def _check_columns(table: str, frame: pd.DataFrame, source: str = "") -> None:
    expected = TABLES[table]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise ProfileError(
            f"profile table {table}{' (' + source + ')' if source else ''}: "
            f"missing columns {missing}"
        )


def _write_text_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(text)
    os.replace(temporary, path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
