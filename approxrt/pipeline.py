"""Building the kernel from a `Config`: files, devices and knobs for each part."""

from __future__ import annotations

from collections.abc import Iterable

from approxrt.branch import Branch
from approxrt.branches.batching import BatchSettings
from approxrt.branches.detectors.base import Detector, PostprocessConfig
from approxrt.branches.detectors.onnx_session import OnnxDetector
from approxrt.branches.detectors.registry import detector_class
from approxrt.branches.detectors.routes import TORCH_CUDA, onnx_route, torch_device
from approxrt.branches.kernel import MultiBranchKernel, TrackerFactory
from approxrt.branches.model_pool import ModelPool
from approxrt.branches.models import resolve_model
from approxrt.branches.space import validate_branch
from approxrt.branches.trackers.association import TrackIdAssigner
from approxrt.branches.trackers.base import Tracker
from approxrt.branches.trackers.registry import make_tracker
from approxrt.classes import class_ids_from_names
from approxrt.config import Config


def build_detector(name: str, config: Config) -> Detector:
    """Load detector family ``name`` once, weights and device from ``config``."""
    family = detector_class(name)
    postprocess = PostprocessConfig(
        config.score_threshold, config.nms_iou_threshold, config.max_detections
    )
    if issubclass(family, OnnxDetector):
        model_path = resolve_model(
            name,
            models_dir=config.models_dir,
            cache_dir=config.cache_dir,
            download=config.download,
        )
        rect_input = config.rect_input.get(name)  # None: the family's default
        if onnx_route(config.device) == TORCH_CUDA:
            # Imported here: it imports torch, which the CPU route never loads.
            from approxrt.branches.detectors.cuda_detector import CudaOnnxDetector

            return CudaOnnxDetector(
                family,
                model_path,
                postprocess,
                device=torch_device(config.device),
                rect_input=rect_input,
                precision=config.gpu_precision,
                mode="graph" if config.cuda_graphs else "traced",
            )
        return family(
            model_path,
            postprocess,
            device=config.device,
            threads=config.num_threads,
            rect_input=rect_input,
        )
    _set_torch_threads(config.num_threads)
    return family(
        weights="random" if config.random_weights else None,
        postprocess_config=postprocess,
        device=config.device,
        models_dir=config.models_dir,
        cache_dir=config.cache_dir,
        download=config.download,
        graphs=config.cuda_graphs,
    )


def tracker_factory(config: Config) -> TrackerFactory:
    """Makes trackers with the tracking settings of ``config``."""
    extra = {
        "csrt": {"min_area_px": config.csrt_min_area_px},
        "flow": {
            "grid_px": config.flow_grid_px,
            "min_motion_px": config.flow_min_motion_px,
        },
    }

    def make(kind: str, downsample: int) -> Tracker:
        return make_tracker(
            kind, downsample, config.confidence_decay, **extra.get(kind, {})
        )

    return make


def build_model_pool(config: Config, branches: Iterable[Branch] = ()) -> ModelPool:
    """A pool loading detectors with ``config``'s files and device; the detectors
    ``branches`` use are loaded now, others when a stream first needs them. It
    runs frame by frame: only the daemon, where streams share it, batches."""
    pool = ModelPool(load=lambda name: build_detector(name, config))
    pool.require(dict.fromkeys(validate_branch(b).detector for b in branches))
    return pool


def batch_settings(config: Config) -> BatchSettings | None:
    """How the daemon's pool batches concurrent streams' frames; None when
    ``batch_streams`` is off."""
    if not config.batch_streams:
        return None
    return BatchSettings(
        config.batch_max_frames, config.batch_wait_ms, config.batch_timeout_s
    )


def build_kernel(
    config: Config, branches: Iterable[Branch], pool: ModelPool | None = None
) -> MultiBranchKernel:
    """A kernel for one stream over ``pool`` (by default a new pool of its own).

    Every detector the ``branches`` use is loaded into the pool once; a kernel
    built over a pool that already holds them loads nothing. ``config``'s class
    filter and tracking settings are the stream's own.
    """
    branches = list(branches)
    if pool is None:
        pool = build_model_pool(config, branches)
    else:
        pool.require(dict.fromkeys(validate_branch(b).detector for b in branches))
    class_ids = class_ids_from_names(config.classes) if config.classes else None
    return MultiBranchKernel(
        pool,
        tracker_factory(config),
        TrackIdAssigner(
            config.association_iou_threshold,
            high_confidence_threshold=config.tracker_min_confidence,
        ),
        tracker_min_confidence=config.tracker_min_confidence,
        class_ids=class_ids,
    )


def _set_torch_threads(num_threads: int) -> None:
    if num_threads > 0:
        import torch

        torch.set_num_threads(num_threads)
