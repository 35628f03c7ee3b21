"""The profile's steps, each reading and writing one `ProfileStore`.

`approxrt profile run` is latency, then accuracy, then fit; `approxrt profile
latency|accuracy|fit` run one each. A profile's config (its branch space and
`profile:` settings) is fixed when the profile is created and read back from
meta.json by every later step, so the steps of one profile always agree.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from time import perf_counter

from approxrt.branches.models import resolve_model
from approxrt.branches.space import BranchSpace
from approxrt.config import Config
from approxrt.profiler.fingerprint import file_sha256
from approxrt.profiler.store import ProfileStore, open_profile, profile_config

log = logging.getLogger(__name__)


def create_or_open(out_dir: Path, config: Config) -> tuple[ProfileStore, Config]:
    """The profile at ``out_dir`` and its config; a new one is created for
    ``config`` with the hashes of the model files it uses."""
    if (out_dir / "meta.json").exists():
        store = open_profile(out_dir)
        recorded = profile_config(store)
        if recorded != config:
            log.warning(
                "profile %s keeps the config it was created with; the config given "
                "now differs and is not used (profile into a new --out to change it)",
                out_dir,
            )
        return store, recorded
    store = ProfileStore.create(out_dir, config.model_dump())
    record_models(store, config)
    return store, config


def record_models(store: ProfileStore, config: Config) -> None:
    """Model files the space uses, with their sha256, into meta.json."""
    store.update_meta(models=model_hashes(config))


def model_hashes(config: Config) -> dict[str, dict[str, str]]:
    """``{detector: {"file", "sha256"}}`` of the model files the space uses."""
    models = {}
    for detector in config.detectors:
        try:
            path = resolve_model(
                detector,
                models_dir=config.models_dir,
                cache_dir=config.cache_dir,
                download=False,
            )
        except (ValueError, OSError):  # torchvision families resolve their own
            continue
        models[detector] = {"file": str(path), "sha256": file_sha256(path)}
    return models


def latency_step(
    store: ProfileStore,
    config: Config,
    video: Path | None,
    contention: bool = True,
    progress: bool = True,
) -> dict[str, int]:
    """Measure every latency table into ``store``; returns rows per table."""
    from approxrt.profiler.contention import ContentionGenerator
    from approxrt.profiler.latency import profile_latency

    space = BranchSpace.from_config(config)
    start = perf_counter()
    generator = (
        ContentionGenerator(
            settle_s=config.profile.settle_s, backend=config.profile.cpu_backend
        )
        if contention
        else contextlib.nullcontext()
    )
    with generator as running:
        tables = profile_latency(config, space, video, running, progress=progress)
    rows = {name: _write(store, name, table) for name, table in tables.items()}
    store.record_step(
        "latency",
        perf_counter() - start,
        rows=rows,
        video=str(video) if video else None,
        contention=contention,
        cpu_backend=running.backend if contention else None,
    )
    return rows


def accuracy_step(
    store: ProfileStore,
    config: Config,
    videos: Sequence,
    ray_address: str | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Cache detections, replay every branch, score segments, compute features."""
    from approxrt.profiler.accuracy import profile_accuracy

    space = BranchSpace.from_config(config)
    start = perf_counter()
    tables = profile_accuracy(
        config,
        space,
        list(videos),
        cache_dir=store.path / "accuracy" / "detections",
        workers=config.profile.workers,
        ray_address=ray_address,
        progress=progress,
    )
    rows = {name: _write(store, name, table) for name, table in tables.items()}
    store.record_step(
        "accuracy",
        perf_counter() - start,
        rows=rows,
        videos=[str(v) for v in videos],
        ray=ray_address,
    )
    return rows


def fit_step(store: ProfileStore, config: Config, plots: bool = True) -> dict:
    """Fit every model on the profile's tables; write them, their errors, plots."""
    from approxrt.profiler.fit import fit_profile

    start = perf_counter()
    tables = {**store.read_tables("latency/"), **store.read_tables("accuracy/")}
    result = fit_profile(tables, config)
    store.write_models(result.models)
    store.update_meta(errors=result.errors)
    if plots:
        from approxrt.profiler.report import write_plots

        write_plots(store, tables, result)
    store.record_step("fit", perf_counter() - start)
    return result.errors


def _write(store: ProfileStore, name: str, table) -> int:
    store.write_table(name, table)
    return len(table)
