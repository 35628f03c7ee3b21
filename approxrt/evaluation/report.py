"""`evaluate`: score a run's output folder against ground truth, in one report."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from approxrt.classes import COCO_CLASSES, as_class_filter
from approxrt.detections import Detections
from approxrt.evaluation.ap import ClassAP, evaluate_ap
from approxrt.evaluation.boxes import PERSON
from approxrt.evaluation.coco import (
    RESULTS_COCO_JSON,
    CocoScores,
    coco_scores,
    read_coco_gt,
    read_coco_results,
)
from approxrt.evaluation.mot_io import RESULTS_TXT, read_mot_gt, read_mot_results
from approxrt.evaluation.mot_metrics import MotScores, mot_scores
from approxrt.evaluation.streaming import StreamingAP, streaming_ap50
from approxrt.evaluation.timing import TIMING_CSV, OutputTimes, read_timing


@dataclass(frozen=True)
class EvaluationReport:
    """Every score of one run against one ground truth.

    Attributes:
        gt_path: the ground-truth file read.
        ap_source: the results file AP and COCO scores come from
            (``results.coco.json`` when present: it carries classes).
        per_class: `ClassAP` by class name; ``ap50`` (interpolated, the
            headline) and ``ap50_raw`` (non-interpolated), see `approxrt.evaluation.ap`.
        mean_ap50: mean of ``ap50`` over classes with ground truth.
        mean_ap50_raw: mean of ``ap50_raw`` over the same classes.
        coco: COCO mAP / AP50 / AP75 from the independent scorer.
        mot: MOT metrics of ``results.txt``, None without it or without gt ids.
        num_frames: frames with ground truth or results.
        streaming: streaming AP50 of the same results (Li et al. 2020, see
            `approxrt.evaluation.streaming`), None without the run's
            ``timing.csv`` and frame rate.
        streaming_note: why ``streaming`` is None, else empty.
    """

    gt_path: str
    ap_source: str
    per_class: dict[str, ClassAP]
    mean_ap50: float
    mean_ap50_raw: float
    coco: CocoScores | None
    mot: MotScores | None
    num_frames: int
    streaming: StreamingAP | None = None
    streaming_note: str = ""

    def to_dict(self) -> dict:
        """JSON-serialisable; NaN becomes None."""
        return _without_nan(asdict(self))

    def format(self) -> str:
        """A readable table."""
        coco_ap = self.coco.per_class_ap50 if self.coco else {}
        streaming_ap = (
            {c.class_id: c.ap50 for c in self.streaming.per_class.values()}
            if self.streaming
            else None
        )
        lines = [
            f"ground truth: {self.gt_path}",
            f"results:      {self.ap_source}",
            f"{'class':<14}{'gt':>7}{'dets':>8}{'TP':>7}"
            f"{'AP50':>8}{'AP50raw':>9}{'COCO50':>8}"
            + (f"{'sAP50':>8}" if streaming_ap is not None else ""),
        ]
        for name, c in self.per_class.items():
            lines.append(
                f"{name:<14}{c.num_gt:>7}{c.num_detections:>8}"
                f"{c.num_true_positives:>7}{c.ap50:>8.3f}{c.ap50_raw:>9.3f}"
                f"{coco_ap.get(c.class_id, math.nan):>8.3f}"
                + _column(streaming_ap, c.class_id)
            )
        coco_mean = self.coco.ap50 if self.coco else math.nan
        lines.append(
            f"{'mean':<36}{self.mean_ap50:>8.3f}{self.mean_ap50_raw:>9.3f}"
            f"{coco_mean:>8.3f}"
            + (f"{self.streaming.mean_ap50:>8.3f}" if self.streaming else "")
        )
        lines.append(self._streaming_line())
        if self.coco:
            lines.append(
                f"COCO ({self.coco.scorer}): mAP {self.coco.map:.3f}  "
                f"AP50 {self.coco.ap50:.3f}  AP75 {self.coco.ap75:.3f}"
            )
        if self.mot:
            m = self.mot
            lines.append(
                f"MOT: MOTA {m.mota:.3f}  IDF1 {m.idf1:.3f}  MOTP {m.motp:.3f}"
                f"  IDsw {m.id_switches}  FP {m.false_positives}  "
                f"FN {m.misses}  ({m.num_objects} gt boxes, "
                f"{m.num_tracks} identities)"
            )
        return "\n".join(lines)

    def _streaming_line(self) -> str:
        s = self.streaming
        if s is None:
            return f"streaming AP50: not scored ({self.streaming_note})"
        timeline = (
            "every frame waited for, re-timed as a camera queue"
            if s.queued
            else "realtime replay, as measured"
        )
        return (
            f"streaming AP50 {s.mean_ap50:.3f} vs offline AP50 {self.mean_ap50:.3f} "
            f"(Li et al. 2020: frames due at {s.fps:g} fps, eta {s.eta_frames:g})\n"
            f"  {timeline}: {s.frames_scored} frames scored, "
            f"{s.frames_without_output} before the first output, "
            f"{s.frames_in_time} on their own output, mean lag "
            f"{s.mean_lag_frames:.2f} frames"
        )


def _column(values: dict[int, float] | None, class_id: int) -> str:
    return "" if values is None else f"{values.get(class_id, math.nan):>8.3f}"


def _without_nan(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(v) for v in value]
    return value


def evaluate(
    gt_path: str | Path,
    results_dir: str | Path,
    classes: Iterable[int | str] | str | None = None,
    gt_format: str = "mot15",
    mot_min_confidence: float = 0.3,
    eta_frames: float = 0.0,
) -> EvaluationReport:
    """Score ``results_dir`` (``results.txt`` and/or ``results.coco.json``).

    AP50 (ours) and the COCO scores come from ``results.coco.json`` when it is
    there, since it carries classes; else from ``results.txt``, whose boxes all
    count as the *MOT class* (the one class in ``classes``, else person). MOT
    metrics come from ``results.txt`` against the gt of the MOT class, so a run
    meant for them should write person boxes only (``--classes person``); they
    are None without ``results.txt`` or without track ids in the gt.

    With the run's ``timing.csv`` and its frame rate (``summary.json``), the
    same boxes are also scored as streaming AP50 (`streaming_ap50`: a
    ``--realtime`` run on its measured finish times, any other run re-timed as
    a camera queue that keeps every frame), and offline scores count only the
    frames the run output: frames a realtime replay dropped cost streaming
    AP50 alone.

    Args:
        gt_path: a MOT ``gt.txt``, a sequence folder holding ``gt/gt.txt``, or a
            COCO ground-truth ``.json``.
        results_dir: a run's output folder.
        classes: class ids or COCO names (``"person,car"`` works) to score;
            default every class with ground truth. MOT results carry no class:
            their boxes count as the one class given, or person.
        gt_format: layout of a MOT gt file, see `read_mot_gt`.
        mot_min_confidence: MOT metrics count only result boxes at least this
            confident (AP uses every box: it ranks them by confidence instead).
            Raising it trades misses for false positives.
        eta_frames: streaming AP50's grace in frames (0: Li et al.'s default;
            -1: each frame until the next arrives).

    Raises:
        ValueError: a missing ground truth or results file, or a bad line in one.
    """
    gt_file = resolve_gt_path(gt_path)
    gt = (
        read_coco_gt(gt_file)
        if gt_file.suffix == ".json"
        else read_mot_gt(gt_file, gt_format)
    )
    class_filter = as_class_filter(classes)
    class_ids = sorted(class_filter) if class_filter is not None else None
    mot_class = class_ids[0] if class_ids and len(class_ids) == 1 else PERSON
    results_dir = Path(results_dir)
    mot_results, coco_results = _read_results(results_dir, mot_class)
    times, fps, streaming_note = _stream_timing(results_dir)
    stream_gt = gt
    gt = _frames_the_run_processed(gt, results_dir, times)
    detections = coco_results if coco_results is not None else mot_results
    ap = evaluate_ap(gt, detections, class_ids)
    mot = None
    if mot_results is not None and (gt.tracker_id >= 0).any():
        confident = mot_results[mot_results.confidence >= mot_min_confidence]
        mot = mot_scores(gt[gt.class_id == mot_class], confident)
    source = RESULTS_COCO_JSON if coco_results is not None else RESULTS_TXT
    return EvaluationReport(
        gt_path=str(gt_file),
        ap_source=str(Path(results_dir) / source),
        per_class={_class_name(c): v for c, v in ap.per_class.items()},
        mean_ap50=ap.mean_ap50,
        mean_ap50_raw=ap.mean_ap50_raw,
        coco=coco_scores(gt, detections, class_ids),
        mot=mot,
        num_frames=len(np.union1d(gt.frame, detections.frame)),
        streaming=(
            None
            if times is None
            else streaming_ap50(
                stream_gt,
                detections,
                times,
                fps,
                class_ids,
                eta_frames,
                queued=not _summary(results_dir).get("realtime", False),
                first_frame=_stream_first_frame(results_dir),
            )
        ),
        streaming_note=streaming_note,
    )


def _summary(results_dir: Path) -> dict:
    """The run's summary.json, or {} when absent or unreadable."""
    path = results_dir / "summary.json"
    try:
        values = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}
    return values if isinstance(values, dict) else {}


def _stream_timing(results_dir: Path) -> tuple[OutputTimes | None, float, str]:
    """(output times, frame rate, why absent) for streaming AP50."""
    if not (results_dir / TIMING_CSV).is_file():
        return (
            None,
            math.nan,
            (
                f"no {TIMING_CSV} in {results_dir}: it holds when each output was "
                "ready, which runs made before approxrt recorded it lack"
            ),
        )
    times = read_timing(results_dir / TIMING_CSV)
    fps = _summary(results_dir).get("fps")
    if not isinstance(fps, int | float) or not fps > 0:
        return None, math.nan, "summary.json gives no frame rate (fps)"
    if len(times) == 0:
        return None, math.nan, f"{TIMING_CSV} lists no outputs"
    return times, float(fps), ""


def _stream_first_frame(results_dir: Path) -> int | None:
    """Frame number that arrived at 0 on the stream clock, when summary.json says."""
    index = _summary(results_dir).get("stream_first_frame_index")
    return index + 1 if isinstance(index, int) else None


def _frames_the_run_processed(
    gt: Detections, results_dir: Path, times: OutputTimes | None
) -> Detections:
    """Ground truth of the frames the run output, as far as its files tell.

    A run cut short (``--max-frames``) must not be charged with missing every
    object of the frames it never read, nor offline scores with the frames a
    realtime replay dropped (streaming AP50 charges those).
    """
    if times is not None:
        return gt[np.isin(gt.frame, times.frame)]
    values = _summary(results_dir)
    try:
        first = int(values["first_frame_index"]) + 1  # MOT frame numbers are 1-based
        last = int(values["last_frame_index"]) + 1
    except (ValueError, KeyError, TypeError):
        return gt
    return gt[(gt.frame >= first) & (gt.frame <= last)]


def resolve_gt_path(gt_path: str | Path) -> Path:
    """The ground-truth file that ``gt_path`` names (see `evaluate`)."""
    path = Path(gt_path)
    if path.is_dir():
        candidates = [path / "gt" / "gt.txt", path / "gt.txt"]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise ValueError(
                f"gt_path: folder {path} holds neither gt/gt.txt nor gt.txt"
            )
        return found[0]
    if not path.is_file():
        raise ValueError(
            f"gt_path: {path} does not exist (expected a gt.txt, a "
            "sequence folder with gt/gt.txt, or a COCO .json)"
        )
    return path


def _read_results(
    results_dir: Path, mot_class: int
) -> tuple[Detections | None, Detections | None]:
    if not results_dir.is_dir():
        raise ValueError(f"results_dir: {results_dir} is not a folder")
    txt, coco = results_dir / RESULTS_TXT, results_dir / RESULTS_COCO_JSON
    if not txt.is_file() and not coco.is_file():
        raise ValueError(
            f"results_dir: {results_dir} holds neither {RESULTS_TXT} "
            f"nor {RESULTS_COCO_JSON}"
        )
    return (
        read_mot_results(txt, mot_class) if txt.is_file() else None,
        read_coco_results(coco) if coco.is_file() else None,
    )


def _class_name(class_id: int) -> str:
    known = 0 <= class_id < len(COCO_CLASSES)
    return COCO_CLASSES[class_id] if known else str(class_id)
