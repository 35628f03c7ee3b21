"""Sinks: where the frame loop's results go.

Every sink has ``write(result: FrameResult)`` and ``close()`` and takes an
optional class filter, so ``--classes person`` applies to every output::

    with OutputDir("runs/pets") as out:
        sinks = open_sinks(out, ["events", "mot", "coco", "video"], classes="person")
        for result in run_loop(frames, kernel, policy, sla_ms=50):
            sinks.write(result)
    # runs/pets/ now holds events.jsonl, results.txt, results.coco.json,
    # annotated.mp4; after an exception it does not exist.
"""

from approxrt.sinks.base import (
    BaseSink,
    MultiSink,
    Sink,
    SinkClosedError,
    select_classes,
)
from approxrt.sinks.events import JsonlEventSink, event_json
from approxrt.sinks.output_dir import OutputDir, OutputDirStateError
from approxrt.sinks.results import CocoResultsSink, MotResultsSink
from approxrt.sinks.standard import OUTPUT_FILES, open_sinks
from approxrt.sinks.timing import TimingSink
from approxrt.sinks.video import AnnotatedVideoSink, PngFramesSink, draw_result

__all__ = [
    "OUTPUT_FILES",
    "AnnotatedVideoSink",
    "BaseSink",
    "CocoResultsSink",
    "JsonlEventSink",
    "MotResultsSink",
    "MultiSink",
    "OutputDir",
    "OutputDirStateError",
    "PngFramesSink",
    "Sink",
    "SinkClosedError",
    "TimingSink",
    "draw_result",
    "event_json",
    "open_sinks",
    "select_classes",
]
