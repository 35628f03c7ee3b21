"""The profile directory's contract: which tables it holds and their columns.

The profiler writes these tables, the fitting step and the plots read them, and a
profile from another version is checked against ``SCHEMA_VERSION``. One row is one
measured sample (latency) or one (video segment, branch) score (accuracy). Every
latency table carries the contention it was measured under: the levels asked of
the generator (``cpu``, ``membw_mbps``, ``gpu_pct``, see `ContentionLevels`) and
the levels it really reached (``cpu_measured``, ``membw_measured_mbps``).

Layout of a profile directory::

    PROFILE/
      meta.json                      schema version, device fingerprint, library
                                     versions, model hashes, videos and their truth
      latency/<table>.parquet        raw latency samples (tables below)
      accuracy/segments.parquet      AP50 per (video, segment, branch)
      accuracy/features.parquet      content features per (video, segment)
      accuracy/feature_cost.parquet  measured cost of each content feature
      accuracy/kernel_features.parquet  light features as each kernel's boxes show them
      accuracy/detections/<video>/<detector>_s<size>[_p<n>].parquet   cache
      models/<model>.json            fitted parameters and their held-out error
      plots/*.png
"""

from __future__ import annotations

SCHEMA_VERSION = 1

META_JSON = "meta.json"

# Columns every latency table has: the contention asked for and reached.
CONTENTION_COLUMNS = (
    "cpu",  # cores kept busy by the generator (fractional = duty cycle)
    "membw_mbps",  # memory bandwidth asked of the generator, MB/s
    "gpu_pct",  # GPU utilisation asked of the generator, %
    "cpu_measured",  # cores the generator's workers really kept busy
    "membw_measured_mbps",  # MB/s the generator really moved
)

# A detector kernel: (detector, input_size, proposals); proposals is 0 for one-stage.
KERNEL_COLUMNS = ("detector", "input_size", "proposals")

TABLES: dict[str, tuple[str, ...]] = {
    # One detector call on one frame (warm-up excluded).
    "latency/detector": (
        *KERNEL_COLUMNS,
        "frame_w",
        "frame_h",
        *CONTENTION_COLUMNS,
        "preprocess_ms",
        "infer_ms",
        "postprocess_ms",
        "total_ms",  # the three stages together
    ),
    # One tracker call: phase "seed" (a detection frame) or "update" (a tracked one).
    "latency/tracker": (
        "tracker",
        "downsample",
        "phase",
        "objects",  # boxes seeded / tracked
        "object_size_px",  # sqrt of the mean box area, full-resolution pixels
        "frame_w",
        "frame_h",
        *CONTENTION_COLUMNS,
        "ms",
    ),
    # One track-id association (TrackIdAssigner.assign) on a detection frame.
    "latency/association": ("objects", "previous_objects", *CONTENTION_COLUMNS, "ms"),
    # The first detection after switching kernels, beyond that kernel's steady cost.
    "latency/switching": (
        "from_detector",
        "from_input_size",
        "from_proposals",
        "to_detector",
        "to_input_size",
        "to_proposals",
        *CONTENTION_COLUMNS,
        "extra_ms",
    ),
    # The loop's own time per frame beyond the kernel's stages.
    "latency/overhead": ("detected", *CONTENTION_COLUMNS, "ms"),
    # Whole branches run end to end (the held-out check of the composed prediction).
    "latency/branches": (
        "branch",
        "scene",  # video or synthetic scene spec it ran on
        "frame_w",
        "frame_h",
        "objects_mean",  # mean boxes per frame in its output
        "object_size_px",
        *CONTENTION_COLUMNS,
        "detect_frame_ms",  # mean wall ms of its detection frames
        "track_frame_ms",  # mean wall ms of its tracking frames (0 when si=1)
        "gof_mean_ms",  # mean over its groups of frames of the per-frame mean
    ),
    # AP50 of one branch on one segment of one video.
    "accuracy/segments": (
        "video",
        "segment",
        "first_frame",  # 0-based, inclusive
        "last_frame",  # 0-based, inclusive
        "branch",
        *KERNEL_COLUMNS,
        "sampling_interval",
        "tracker",  # "" when sampling_interval is 1
        "downsample",
        "ap50",
        "truth_boxes",  # scored boxes of the truth in the segment
        "truth",  # "gt" or the reference branch's name
    ),
    # Content features of one segment: light ones from the reference detections,
    # heavy ones from pixels (a vector feature is spread over name_0, name_1, ...).
    "accuracy/features": (
        "video",
        "segment",
        "frame_w",
        "frame_h",
        "objects",  # mean boxes per frame
        "object_size_px",  # sqrt of the mean box area
        "object_speed_px",  # mean centre motion per frame of continued boxes
        # ... then f"{heavy_feature}_{i}" columns
    ),
    # Cost of computing each content feature once, per frame.
    "accuracy/feature_cost": ("feature", "frame_w", "frame_h", "ms"),
    # The light features of one segment as one kernel's boxes show them (what a
    # live run sees while that kernel runs), beside the reference's above.
    "accuracy/kernel_features": (
        "video",
        "segment",
        "kernel",  # e.g. "yolox_nano/s224"
        "objects",
        "object_size_px",
    ),
}

LIGHT_FEATURES = ("objects", "object_size_px", "object_speed_px")


def table_path(table: str) -> str:
    """The file of ``table`` inside a profile directory."""
    if table not in TABLES:
        raise ValueError(f"unknown profile table {table!r}; known: {', '.join(TABLES)}")
    return f"{table}.parquet"
