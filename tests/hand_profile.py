"""A small profile with round numbers, and traces made from the same truth.

Detectors take 3 / 5 / 8 ms (yolox_nano s224 / s320 / s416) on an idle device
and twice that with two cores busy; trackers cost a little per frame and more
per object; accuracy falls with the input size and with long tracking. Traces
are measured ms drawn from this truth, so a scheduler that plans on the profile
is right unless a test hides something from it.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd

from approxrt.branch import Branch
from approxrt.config import load_config
from approxrt.profiler.store import ProfileStore
from approxrt.scheduler.accuracy_table import AccuracyTable, knob_columns
from approxrt.scheduler.latency_model import BranchLatencyModel, TrackerLatencyModel
from approxrt.scheduler.profile_models import ProfileModels
from approxrt.scheduler.simulator import RecordedTrace

FRAME_WH = (480, 360)
DETECTOR_MS = {224: 3.0, 320: 5.0, 416: 8.0}
DETECTOR_AP = {224: 0.78, 320: 0.86, 416: 0.90}
# (tracker, ds): (seed per frame, seed per object, update per frame, per object)
TRACKER_MS = {
    ("kcf", 1): (0.5, 1.0, 0.3, 0.5),
    ("medianflow", 2): (0.5, 0.3, 0.4, 0.15),
}
TRACKER_AP_LOSS = {"kcf": 0.0, "medianflow": 0.02}
ASSOCIATION_MS, OVERHEAD_DETECT_MS, OVERHEAD_TRACK_MS = 0.1, 0.2, 0.1
SAMPLING = (2, 4, 8)


def slowdown(cpu):
    """Two busy cores double every stage; in between, linearly."""
    return 1.0 + 0.5 * np.asarray(cpu, np.float64)


def space() -> list[Branch]:
    kernels = [Branch("yolox_nano", size) for size in DETECTOR_MS]
    tracked = [
        Branch("yolox_nano", size, None, si, tracker, ds)
        for size, si, (tracker, ds) in product(DETECTOR_MS, SAMPLING, TRACKER_MS)
    ]
    return kernels + tracked


def true_ap50(branch: Branch) -> float:
    ap = DETECTOR_AP[branch.input_size]
    if branch.tracker:
        ap -= 0.02 * np.log2(branch.sampling_interval)
        ap -= TRACKER_AP_LOSS[branch.tracker]
    return float(ap)


def _surface(kind, groups, features, coef_idle):
    coef = [[row, [2 * c for c in row]] for row in coef_idle]  # cpu knots 0 and 2
    return {
        "kind": kind,
        "format_version": 1,
        "params": {"smoothing": 0.001},
        "surfaces": {
            "grid": {"cpu": [0.0, 2.0], "membw_mbps": [0.0], "gpu_pct": [0.0]},
            "features": features,
            "groups": groups,
            "coef_ms": coef,
        },
        "tail_ratio": [1.1] * len(groups),
    }


def latency_model() -> BranchLatencyModel:
    groups, coef = [], []
    for (tracker, ds), (seed0, seed1, update0, update1) in TRACKER_MS.items():
        for phase, (per_frame, per_object) in (
            ("seed", (seed0, seed1)),
            ("update", (update0, update1)),
        ):
            groups.append(f"{tracker}/ds{ds}/{phase}")
            coef.append([per_frame, 0.0, per_object, 0.0, 0.0, 0.0])
    components = {
        "detector": _surface(
            "DetectorLatencyModel",
            [f"yolox_nano/s{size}" for size in DETECTOR_MS],
            ["intercept", "frame_mpx"],
            [[ms, 0.0] for ms in DETECTOR_MS.values()],
        ),
        "tracker": _surface(
            "TrackerLatencyModel", groups, list(TrackerLatencyModel.FEATURES), coef
        ),
        "association": _surface(
            "AssociationModel",
            ["association"],
            ["intercept", "objects", "previous_objects", "objects_x_previous_c"],
            [[ASSOCIATION_MS, 0.0, 0.0, 0.0]],
        ),
        "overhead": _surface(
            "OverheadModel",
            ["detect", "track"],
            ["intercept"],
            [[OVERHEAD_DETECT_MS], [OVERHEAD_TRACK_MS]],
        ),
    }
    return BranchLatencyModel.from_dict(
        {"kind": "BranchLatencyModel", "format_version": 1, "components": components}
    )


def accuracy_table() -> AccuracyTable:
    rows = [
        {
            "video": "v",
            "segment": 0,
            "branch": str(b),
            **knob_columns(b),
            "ap50": true_ap50(b),
        }
        for b in space()
    ]
    return AccuracyTable().fit(pd.DataFrame(rows))


def profile_models() -> ProfileModels:
    return ProfileModels(latency_model(), accuracy_table())


def make_trace(
    frames: int = 400,
    cpu=0.0,
    hidden_slowdown=1.0,
    objects=5.0,
    noise: float = 0.0,
    seed: int = 0,
) -> RecordedTrace:
    """Measured ms per frame from the truth; each argument is a number or ``(n,)``.

    ``cpu`` is visible to the sensor; ``hidden_slowdown`` multiplies every ms
    without showing in the contention column (memory-bandwidth pressure or a
    program the profile never saw).
    """
    rng = np.random.default_rng(seed)

    def per_frame(value):
        return np.broadcast_to(np.asarray(value, np.float64), (frames,)).copy()

    cpu, hidden, objects = (
        per_frame(cpu),
        per_frame(hidden_slowdown),
        per_frame(objects),
    )
    factor = slowdown(cpu) * hidden

    def measured(idle_ms):
        return idle_ms * factor * np.exp(rng.normal(0.0, noise, frames))

    fixed = ASSOCIATION_MS + OVERHEAD_DETECT_MS
    seed_ms, track_ms = {}, {}
    for (tracker, ds), (seed0, seed1, update0, update1) in TRACKER_MS.items():
        seed_ms[f"{tracker}/ds{ds}"] = measured(seed0 + seed1 * objects)
        track_ms[f"{tracker}/ds{ds}"] = measured(
            update0 + update1 * objects + OVERHEAD_TRACK_MS
        )
    return RecordedTrace(
        frame_wh=FRAME_WH,
        detect_ms={
            f"yolox_nano/s{size}": measured(ms + fixed)
            for size, ms in DETECTOR_MS.items()
        },
        seed_ms=seed_ms,
        track_ms=track_ms,
        accuracy={str(b): per_frame(true_ap50(b)) for b in space()},
        objects=objects,
        object_size_px=per_frame(60.0),
        object_speed_px=per_frame(2.0),
        contention=np.stack([cpu, np.zeros(frames), np.zeros(frames)], axis=1),
    )


def step(frames: int, at: int, before: float, after: float) -> np.ndarray:
    values = np.full(frames, before, np.float64)
    values[at:] = after
    return values


# The branch space of `space()` as a config file, for runs over real video.
SPACE_YAML = """\
detectors: [yolox_nano]
input_sizes: {yolox_nano: [224, 320, 416]}
sampling_intervals: [1, 2, 4, 8]
trackers: [kcf, medianflow]
downsamples: [1, 2]
warmup_runs: 1
"""


def write_profile(path, **config_overrides) -> ProfileStore:
    """A profile directory holding this module's latency and accuracy models,
    made (its meta says) with the default config and ``config_overrides``."""
    config = load_config().replace(**config_overrides)
    store = ProfileStore.create(path, config.model_dump())
    store.write_models(
        {
            "branch_latency": latency_model().to_dict(),
            "accuracy_table": accuracy_table().to_dict(),
        }
    )
    return store
