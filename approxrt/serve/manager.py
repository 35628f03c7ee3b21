"""`StreamManager`: the daemon's streams over one model pool.

Adding a stream checks everything that can be refused before anything starts
(a repeated id, an unknown branch or class, a detector whose model is missing,
a file that cannot be opened, a branch that does not exist), then
loads what the pool lacks and starts the stream's threads. An adaptive stream's
plan (the profile's models, or a first quick calibration that takes about a
minute, its candidates and the detectors they need) is made on the stream's own
thread, so the request that adds it, and every other request, answers at once;
the stream shows ``preparing`` meanwhile. Removing a stream drains it. Nothing
one stream does touches another's state.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path

import numpy as np
import psutil

from approxrt.branch import Branch
from approxrt.branches.model_pool import ModelPool
from approxrt.config import Config
from approxrt.decision import BranchPolicy
from approxrt.loop import FixedBranch
from approxrt.pipeline import batch_settings, build_detector, build_kernel
from approxrt.scheduler.device_share import DeviceShare
from approxrt.serve.frames import FrameFeed, is_live
from approxrt.serve.metrics import DaemonMetrics
from approxrt.serve.spec import ServeSettings, StreamSpec, redact_url
from approxrt.serve.stream import Plan, StreamWorker
from approxrt.sinks import CocoResultsSink, MotResultsSink, MultiSink
from approxrt.sinks.mqtt import MqttSink
from approxrt.sinks.rotating_events import RotatingJsonlEventSink
from approxrt.sources import open_source

log = logging.getLogger(__name__)


class StreamExistsError(ValueError):
    """A stream with this id runs already."""


class StreamNotFoundError(KeyError):
    """No stream has this id."""


class StreamManager:
    """Adds, lists, changes and removes streams; see the module docstring."""

    def __init__(self, settings: ServeSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.metrics = DaemonMetrics()
        self.pool = ModelPool(load=self._load_detector, batching=batch_settings(config))
        self._streams: dict[str, StreamWorker] = {}
        self._models = None  # adaptive streams' profile models, loaded on first use
        self.share = DeviceShare() if settings.plan_streams_together else None
        # Held while those load (a calibration takes a minute): never the API's lock.
        self._models_lock = threading.Lock()
        self._lock = threading.RLock()

    def add(self, spec: StreamSpec) -> StreamWorker:
        """Check and start ``spec``'s stream.

        Raises:
            StreamExistsError: the id is taken.
            ValueError: the stream cannot run (the message says why).
        """
        self._refuse_taken(spec.id)
        if not is_live(spec.source):
            _check_file_opens(spec.source)
        plan = (
            self._fixed_plan(spec)
            if spec.branch
            else functools.partial(self._adaptive_plan, spec.id)
        )
        with self._lock:
            self._refuse_taken(spec.id)
            worker = StreamWorker(
                spec,
                self._feed(spec),
                self._kernel_factory(spec),
                self._sinks(spec),
                self.metrics,
                plan,
            )
            self._streams[spec.id] = worker
            label = spec.branch if spec.branch is not None else "adaptive"
            self.metrics.set_branch(spec.id, label)
            worker.start()
            log.info("stream %s added: %s", spec.id, redact_url(spec.source))
            return worker

    def _refuse_taken(self, stream_id: str) -> None:
        with self._lock:
            if stream_id in self._streams:
                raise StreamExistsError(f"stream {stream_id!r} exists already")

    def get(self, stream_id: str) -> StreamWorker:
        with self._lock:
            worker = self._streams.get(stream_id)
        if worker is None:
            raise StreamNotFoundError(stream_id)
        return worker

    def list(self) -> list[StreamWorker]:
        with self._lock:
            return list(self._streams.values())

    def remove(self, stream_id: str) -> StreamWorker:
        """Stop a stream (draining it) and forget it."""
        with self._lock:
            worker = self._streams.pop(stream_id, None)
        if worker is None:
            raise StreamNotFoundError(stream_id)
        worker.stop()
        self._leave_share(stream_id)
        self.metrics.forget(stream_id)
        return worker

    def set_branch(self, stream_id: str, name: str) -> StreamWorker:
        worker = self.get(stream_id)
        branch = _valid_branch(name)
        self.pool.require([branch.detector])
        worker.set_branch(branch)
        self._leave_share(stream_id)  # a fixed stream is not planned
        return worker

    def _leave_share(self, stream_id: str) -> None:
        if self.share is not None:
            self.share.leave(stream_id)

    def shutdown(self) -> None:
        """Drain every stream and flush its sinks."""
        workers = self.list()
        for worker in workers:
            worker.feed.stop()
        for worker in workers:
            worker.stop()

    def refresh_gauges(self) -> None:
        for worker in self.list():
            worker.update_gauges()

    def _load_detector(self, name: str):
        rss = psutil.Process().memory_info().rss
        detector = build_detector(name, self.config)
        grown = psutil.Process().memory_info().rss - rss
        self.metrics.pool_bytes.inc(max(grown, 0))
        return detector

    def _feed(self, spec: StreamSpec) -> FrameFeed:
        return FrameFeed(
            spec.id,
            spec.source,
            loop=spec.loop,
            queue_frames=self.settings.queue_frames,
            reconnect_initial_s=self.settings.reconnect_initial_s,
            reconnect_max_s=self.settings.reconnect_max_s,
            on_reconnect=self.metrics.reconnects.labels(spec.id).inc,
        )

    def _fixed_plan(self, spec: StreamSpec) -> Plan:
        """A fixed stream's plan, its detector loaded now: a missing model is
        refused by the request that adds the stream. Outside the API's lock, as
        a load takes seconds."""
        branch = _valid_branch(spec.branch)
        self.pool.require([branch.detector])
        return lambda: (FixedBranch(branch), [branch])

    def _adaptive_plan(self, stream_id: str) -> tuple[BranchPolicy, list[Branch]]:
        """An adaptive stream's scheduler and candidates, on the stream's thread
        (the profile's models are loaded once for every stream; the schedulers
        share the device's plan)."""
        from approxrt.adaptive import build_policy, candidates, load_run_models

        with self._models_lock:
            if self._models is None:
                profile = self.settings.profile
                self._models, origin = load_run_models(
                    self.config, Path(profile) if profile else None, None
                )
                log.info("adaptive streams plan with models from %s", origin)
            models = self._models
        branches = candidates(models, self.config)
        self.pool.require(list(dict.fromkeys(b.detector for b in branches)))
        policy = build_policy(
            models, branches, self.config, share=self.share, stream_id=stream_id
        )
        return policy, branches

    def _kernel_factory(self, spec: StreamSpec):
        config = self.config.replace(classes=spec.classes)

        def make(image: np.ndarray, branches: list[Branch]):
            kernel = build_kernel(config, branches, self.pool)
            trackers = {(b.tracker, b.downsample) for b in branches if b.tracker}
            kernels = list(dict.fromkeys(b.kernel for b in branches))
            kernel.warmup(kernels, image, trackers, runs=config.warmup_runs)
            return kernel

        return make

    def _sinks(self, spec: StreamSpec) -> MultiSink:
        sinks = []
        if spec.out and not is_live(spec.source) and not spec.loop:
            # A file read once is scorable: MOT text and COCO json, as `run` writes.
            out = Path(spec.out)
            out.mkdir(parents=True, exist_ok=True)
            sinks.append(MotResultsSink(out / "results.txt", classes=spec.classes))
            sinks.append(
                CocoResultsSink(out / "results.coco.json", classes=spec.classes)
            )
        if spec.out:
            sinks.append(
                RotatingJsonlEventSink(
                    Path(spec.out) / "events.jsonl",
                    self.settings.events_max_bytes,
                    self.settings.events_backups,
                    classes=spec.classes,
                    stream=spec.id,
                )
            )
        mqtt = self.settings.mqtt
        if mqtt is not None and spec.mqtt:
            sinks.append(
                MqttSink(
                    mqtt.host,
                    mqtt.port,
                    f"{mqtt.topic_prefix}/{spec.id}/detections",
                    Path(mqtt.spool_dir) / f"{spec.id}.spool",
                    qos=mqtt.qos,
                    client_id=f"approxrt-{spec.id}",
                    classes=spec.classes,
                    stream=spec.id,
                )
            )
        return MultiSink(sinks)


def _valid_branch(name: str) -> Branch:
    from approxrt.branches.space import validate_branch

    return validate_branch(Branch.parse(name))


def _check_file_opens(source: str) -> None:
    """A file or folder that cannot be read is refused now, not retried."""
    try:
        with open_source(source) as frames:
            frames.frame_count  # noqa: B018 - opening is the check
    except (ValueError, FileNotFoundError, OSError) as error:
        raise ValueError(f"source {redact_url(source)}: {error}") from None
