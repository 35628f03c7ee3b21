"""The standard outputs of a run, by name, with their standard file names."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from approxrt.evaluation.coco import RESULTS_COCO_JSON
from approxrt.evaluation.mot_io import RESULTS_TXT
from approxrt.evaluation.timing import TIMING_CSV
from approxrt.sinks.base import MultiSink, Sink
from approxrt.sinks.events import JsonlEventSink
from approxrt.sinks.output_dir import OutputDir
from approxrt.sinks.results import CocoResultsSink, MotResultsSink
from approxrt.sinks.timing import TimingSink
from approxrt.sinks.video import AnnotatedVideoSink, PngFramesSink

# output name -> file (or folder) name inside the output folder
OUTPUT_FILES = {
    "events": "events.jsonl",
    "mot": RESULTS_TXT,
    "coco": RESULTS_COCO_JSON,
    "timing": TIMING_CSV,
    "video": "annotated.mp4",
    "frames": "frames",
}


def open_sinks(
    out: OutputDir | str | Path,
    outputs: Iterable[str] = ("events", "mot", "coco"),
    classes: Collection[int | str] | str | None = None,
    fps: float | None = None,
) -> MultiSink:
    """Open the named outputs in ``out``, all with one class filter.

    Args:
        out: an `OutputDir` (the sinks are registered with it, so its commit
            closes them) or a plain folder, which must exist.
        outputs: names from `OUTPUT_FILES`.
        classes: class ids or COCO names every output keeps; default all.
        fps: frame rate of the annotated video; default from the timestamps.

    Raises:
        ValueError: an unknown output name.
    """
    outputs = list(dict.fromkeys(outputs))
    unknown = [name for name in outputs if name not in OUTPUT_FILES]
    if unknown:
        raise ValueError(
            f"outputs: unknown {unknown}; expected some of {list(OUTPUT_FILES)}"
        )
    folder = out if isinstance(out, OutputDir) else Path(out)
    sinks: list[Sink] = []
    for name in outputs:
        sink = _make(name, folder / OUTPUT_FILES[name], classes, fps)
        sinks.append(out.add(sink) if isinstance(out, OutputDir) else sink)
    return MultiSink(sinks)


def _make(name: str, path: Path, classes, fps: float | None) -> Sink:
    if name == "events":
        return JsonlEventSink(path, classes)
    if name == "mot":
        return MotResultsSink(path, classes)
    if name == "coco":
        return CocoResultsSink(path, classes)
    if name == "timing":
        return TimingSink(path)
    if name == "video":
        return AnnotatedVideoSink(path, fps, classes)
    return PngFramesSink(path, classes)
