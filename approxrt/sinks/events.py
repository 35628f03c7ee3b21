"""`JsonlEventSink`: the per-frame event stream, one compact JSON line per frame.

One line looks like (wrapped here)::

    {"stream":"cam0","frame_index":12,"timestamp_s":1.2,
     "arrival_s":1.200113,"finish_s":1.203507,
     "branch":"yolox_nano/s320/si4/kcf/ds2","mode":"track",
     "timings_ms":{"decode":1.1,"schedule":0.0,"preprocess":0.0,"infer":0.0,
                   "postprocess":0.0,"track":2.31},
     "latency_ms":2.4,"sla_ms":50.0,"sla_hit":true,"contention":null,
     "predicted":null,"weights":"pretrained",
     "detections":[{"xyxy":[10.5,20.0,50.2,120.0],"confidence":0.8731,
                    "class_id":0,"class_name":"person","track_id":3}]}

``frame_index`` is `Frame.index` (0-based). ``arrival_s`` and ``finish_s`` are
seconds on the run's stream clock (0 = the first frame's arrival): when the frame
reached the runtime and when its detections were ready (null when not stamped;
see `approxrt.sources.realtime`). Milliseconds carry 3 decimals (microseconds),
stream-clock seconds 6 (microseconds), other seconds 4, box corners 1 (a tenth
of a pixel), scores and other ratios 4; NaN is written as null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from pathlib import Path
from time import monotonic

from approxrt.classes import COCO_CLASSES
from approxrt.detections import Detections
from approxrt.result import STAGES, FrameResult
from approxrt.sinks.base import BaseSink

_MS_DECIMALS, _S_DECIMALS, _RATIO_DECIMALS = 3, 4, 4
_CLOCK_DECIMALS = 6


def _round(value: float | None, decimals: int) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(float(value), decimals)


def _round_map(values: dict[str, float] | None) -> dict[str, float | None] | None:
    if values is None:
        return None
    return {str(k): _round(v, _RATIO_DECIMALS) for k, v in values.items()}


def _class_name(class_id: int) -> str:
    return COCO_CLASSES[class_id] if 0 <= class_id < len(COCO_CLASSES) else "unknown"


def detections_json(detections: Detections) -> str:
    """The ``detections`` JSON array, formatted directly rather than through
    json.dumps of per-box dicts (several times faster for busy frames)."""
    if len(detections) == 0:
        return "[]"
    rows = zip(
        detections.xyxy.tolist(),
        detections.confidence.tolist(),
        detections.class_id.tolist(),
        detections.tracker_id.tolist(),
        strict=True,
    )
    # Class names come from a fixed list without quotes or backslashes.
    return (
        "["
        + ",".join(
            f'{{"xyxy":[{x1:.1f},{y1:.1f},{x2:.1f},{y2:.1f}],"confidence":{conf:.4f},'
            f'"class_id":{cls},"class_name":"{_class_name(cls)}","track_id":{track}}}'
            for (x1, y1, x2, y2), conf, cls, track in rows
        )
        + "]"
    )


def event_json(
    result: FrameResult, detections: Detections, stream: str | None = None
) -> str:
    """One event line (without the newline) for ``result``, showing ``detections``."""
    frame = result.frame
    head = {
        "stream": frame.source_id if stream is None else stream,
        "frame_index": frame.index,
        "timestamp_s": _round(frame.timestamp_s, _S_DECIMALS),
        "arrival_s": _round(frame.arrival_s, _CLOCK_DECIMALS),
        "finish_s": _round(result.finish_s, _CLOCK_DECIMALS),
        "branch": str(result.branch),
        "mode": "detect" if result.detected else "track",
        "timings_ms": {
            stage: _round(result.timings_ms.get(stage, 0.0), _MS_DECIMALS)
            for stage in STAGES
        },
        "latency_ms": _round(result.latency_ms, _MS_DECIMALS),
        "sla_ms": _round(result.sla_ms, _MS_DECIMALS),
        "sla_hit": result.sla_hit,
        "contention": _round_map(result.contention),
        "predicted": _round_map(result.predicted),
        "weights": result.weights,
    }
    text = json.dumps(head, separators=(",", ":"), allow_nan=False)
    return f'{text[:-1]},"detections":{detections_json(detections)}}}'


class JsonlEventSink(BaseSink):
    """Appends one event line per frame to a JSONL file.

    Args:
        path: the ``.jsonl`` file (created or truncated).
        classes: class ids or COCO names to keep in ``detections``; default all.
        stream: stream name to write; default each frame's ``source_id``.
        flush_interval_s: writes are buffered and flushed at most this often,
            so a reader tailing the file lags by about this much. Raising it
            saves system calls; 0 flushes every line.
    """

    def __init__(
        self,
        path: str | Path,
        classes: Collection[int | str] | str | None = None,
        stream: str | None = None,
        flush_interval_s: float = 1.0,
    ) -> None:
        super().__init__(classes)
        if flush_interval_s < 0:
            raise ValueError(f"flush_interval_s: expected >= 0, got {flush_interval_s}")
        self.path = Path(path)
        self.stream = stream
        self.flush_interval_s = flush_interval_s
        self._file = open(self.path, "w", encoding="utf-8", buffering=1 << 16)
        self._last_flush_s = monotonic()

    def _write(self, result: FrameResult, detections: Detections) -> None:
        self._file.write(event_json(result, detections, self.stream) + "\n")
        now = monotonic()
        if now - self._last_flush_s >= self.flush_interval_s:
            self._file.flush()
            self._last_flush_s = now

    def _close(self) -> None:
        self._file.close()
