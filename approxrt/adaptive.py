"""Everything an adaptive run needs: a profile's models, its candidates, its policy.

Where the models come from:

- ``--profile DIR``: a profile made by ``approxrt profile`` on this device;
- otherwise a **quick calibration**: the latency part of a profile, measured
  once per device and model set (few samples, the idle device and two busy
  cores), cached under the device's fingerprint in ``<cache_dir>/calibration/``;
- accuracy, when the profile has none (always, for a calibration), from the
  accuracy profile shipped in the package (``approxrt/data/accuracy``): AP50
  depends on the models and the content, not on the device.

The candidates are the branches of the configured space that the models cover,
with groups of at most ``scheduler.max_sampling_interval`` frames.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from approxrt.branch import Branch
from approxrt.branches.space import BranchSpace
from approxrt.config import Config
from approxrt.scheduler.device_share import DeviceShare
from approxrt.scheduler.feedback import LatencyFeedback
from approxrt.scheduler.policy import AdaptivePolicy
from approxrt.scheduler.profile_models import ProfileModels, load_models
from approxrt.scheduler.sensor import ContentionSensor

log = logging.getLogger(__name__)

SHIPPED_ACCURACY_DIR = Path(__file__).with_name("data") / "accuracy"
ACCURACY_MODELS = ("accuracy_table", "accuracy_content_light", "accuracy_content_heavy")


def shipped_accuracy() -> dict[str, dict]:
    """The accuracy models shipped in the package, ``{name: dict}``."""
    return {
        path.stem: json.loads(path.read_text())
        for path in sorted(SHIPPED_ACCURACY_DIR.glob("*.json"))
    }


def settings_from_profile(config: Config, profile_dir: Path) -> Config:
    """``config`` with the settings the profile's latency was measured under.

    - ``num_threads``: the detectors' CPU threads. The latency model holds for
      the count it timed only: on the 2-core VM one thread took 0.52-1.33x the
      default's time, depending on kernel and load (docs/benchmarks/threads.md).
      A run asking another count gets the profile's, with a warning.
    - ``profile.cpu_backend``: what loads the CPU, so a benchmark trace's level
      means the load profiled (from the latency step's record, when it has one).
    """
    from approxrt.profiler.store import open_profile, profile_config

    store = open_profile(profile_dir)
    threads = profile_config(store).num_threads
    if config.num_threads != threads:
        log.warning(
            "num_threads %d -> %d: the profile %s timed its detectors on %d "
            "thread(s) (0 = the library's default), so the run uses that",
            config.num_threads,
            threads,
            profile_dir,
            threads,
        )
        config = config.replace(num_threads=threads)
    latency = store.read_meta().get("steps", {}).get("latency") or {}
    backend = latency.get("cpu_backend")
    if backend is None:  # a profile from before the backend was recorded
        return config
    return config.replace(
        profile={**config.profile.model_dump(), "cpu_backend": backend}
    )


def load_run_models(
    config: Config,
    profile_dir: Path | None,
    video: Path | None,
    progress: bool = True,
) -> tuple[ProfileModels, str]:
    """The models of an adaptive run, and where they came from (for the summary)."""
    if profile_dir is not None:
        from approxrt.profiler.store import open_profile

        models = open_profile(profile_dir).read_models()
        origin = f"profile {profile_dir}"
    else:
        calibration = calibrate(config, video, progress)
        models = json.loads(
            (calibration / "models" / "branch_latency.json").read_text()
        )
        models = {"branch_latency": models}
        origin = f"calibration {calibration}"
    if not any(name in models for name in ACCURACY_MODELS):
        models.update(shipped_accuracy())
        origin += " + shipped accuracy profile"
    return load_models(models), origin


def candidates(models: ProfileModels, config: Config) -> list[Branch]:
    """Branches of the configured space whose latency and accuracy are known."""
    if models.accuracy_table is None:
        raise ValueError("adaptive run: the models hold no accuracy table")
    profiled = {str(b) for b in _profiled_branches(models)}
    limit = config.scheduler.max_sampling_interval
    chosen = [
        b
        for b in BranchSpace.from_config(config).branches
        if str(b) in profiled and b.sampling_interval <= limit
    ]
    if not chosen:
        raise ValueError(
            "adaptive run: no branch of the configured space is in the profile "
            f"(the profile covers e.g. {sorted(profiled)[:3]}); widen the config's "
            "space or profile this one"
        )
    return chosen


def _profiled_branches(models: ProfileModels) -> list[Branch]:
    """The accuracy table's branches that the latency model can also predict."""
    branches = []
    for name in models.accuracy_table.branches_:
        branch = Branch.parse(name)
        try:
            models.latency.bind([branch])
        except ValueError:
            continue
        branches.append(branch)
    return branches


def build_policy(
    models: ProfileModels,
    branches: Sequence[Branch],
    config: Config,
    approxdet_style: bool = False,
    share: DeviceShare | None = None,
    stream_id: str = "0",
) -> AdaptivePolicy:
    """The adaptive policy (or the ApproxDet-style ablation) over ``branches``;
    with ``share``, planned together with the device's other streams."""
    settings = config.scheduler
    common = {
        "sensor": ContentionSensor.shared(gpu=config.device != "cpu"),
        "hysteresis_ap": settings.hysteresis_ap,
        "hysteresis_sla": settings.hysteresis_sla,
        "hysteresis_sla_below_ap": settings.hysteresis_sla_below_ap,
        "min_confidence": config.tracker_min_confidence,
        "share": share,
        "stream_id": stream_id,
    }
    if approxdet_style:
        return AdaptivePolicy.approxdet_style(models, branches, **common)
    feedback = LatencyFeedback(
        margin_quantile=settings.margin_quantile,
        margin_window=settings.margin_window,
    )
    return AdaptivePolicy(models, branches, feedback=feedback, **common)


# -- quick calibration -------------------------------------------------------------


def calibrate(config: Config, video: Path | None, progress: bool) -> Path:
    """The cached calibration for this device and models; made when missing
    (the latency step of a profile, with `calibration_config`)."""
    from approxrt.profiler.steps import create_or_open, fit_step, latency_step

    calibration = calibration_config(config)
    folder = _cache_root(config) / "calibration" / _calibration_key(calibration)
    if (folder / "models" / "branch_latency.json").exists():
        log.info("using the calibration cached in %s", folder)
        return folder
    log.warning(
        "no calibration for this device yet: measuring latency once (about a "
        "minute), cached in %s",
        folder,
    )
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    store, calibration = create_or_open(partial, calibration)
    latency_step(store, calibration, video, contention=True, progress=progress)
    fit_step(store, calibration, plots=False)
    partial.rename(folder)  # a calibration appears only once it is whole
    return folder


def calibration_config(config: Config) -> Config:
    """``config`` narrowed to a quick latency profile of the shipped accuracy's
    kernels and trackers: few samples, two CPU levels, no validation runs."""
    kernels: dict[str, set[int]] = {}
    trackers, downsamples = set(), set()
    for name in json.loads((SHIPPED_ACCURACY_DIR / "accuracy_table.json").read_text())[
        "branches"
    ]:
        branch = Branch.parse(name)
        kernels.setdefault(branch.detector, set()).add(branch.input_size)
        if branch.tracker:
            trackers.add(branch.tracker)
            downsamples.add(branch.downsample)
    profile = config.profile.model_copy(
        update={
            "cpu_levels": [0.0, 2.0],
            "membw_levels_mbps": [0.0],
            "gpu_levels_pct": [0.0],
            "heldout_levels": [],
            "settle_s": 1.0,
            "detector_samples": 6,
            "tracker_objects": [1, 10, 40],
            "tracker_object_sizes_px": [60],
            "tracker_samples": 3,
            "validation_branches": 0,
        }
    )
    return config.replace(
        detectors=sorted(kernels),
        input_sizes={d: sorted(s) for d, s in kernels.items()},
        trackers=sorted(trackers),
        downsamples=sorted(downsamples),
        sampling_intervals=[1, 2],
        profile=profile.model_dump(),
    )


def _calibration_key(calibration: Config) -> str:
    from approxrt.profiler.fingerprint import device_fingerprint, library_versions
    from approxrt.profiler.steps import model_hashes

    fingerprint = device_fingerprint()
    identity = {
        "device": {k: fingerprint[k] for k in ("cpu_model", "logical_cores", "gpus")},
        "libraries": library_versions(),
        "models": model_hashes(calibration),
        "space": [
            calibration.input_sizes,
            calibration.trackers,
            calibration.downsamples,
        ],
        "frame": calibration.profile.frame_sizes,
        "device_setting": calibration.device,
        "threads": calibration.num_threads,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return digest[:16]


def _cache_root(config: Config) -> Path:
    from approxrt.branches.models import default_cache_dir

    return default_cache_dir(config.cache_dir)
