"""Scoring results against ground truth: AP50, COCO mAP, MOT metrics.

    from approxrt.evaluation import evaluate
    report = evaluate("video/pets09_s2l1", "runs/out")   # gt.txt or seq folder
    print(report.format())                                # or report.to_dict()

Frame numbers are 1-based everywhere here (MOTChallenge's and the COCO image
ids'); a `approxrt.frame.Frame` with ``index`` i is frame number i + 1. The boxes
of a sequence, results or ground truth, are one `approxrt.detections.Detections`
with a frame column (`Detections.stack`, `sequence_boxes`; see
`approxrt.evaluation.boxes`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from approxrt.evaluation.ap import (
    APResult,
    ClassAP,
    average_precision,
    evaluate_ap,
    match_detections,
)
from approxrt.evaluation.boxes import (
    PERSON,
    ignored,
    sequence_boxes,
    sequence_from_xywh,
)
from approxrt.evaluation.coco import (
    RESULTS_COCO_JSON,
    CocoScores,
    coco_scores,
    read_coco_gt,
    read_coco_results,
    to_coco_gt,
    to_coco_results,
    write_coco_results,
)
from approxrt.evaluation.mot_io import (
    GT_FORMATS,
    RESULTS_TXT,
    format_mot_lines,
    read_mot_gt,
    read_mot_results,
    write_mot_results,
)

if TYPE_CHECKING:
    from approxrt.evaluation.mot_metrics import MotScores, mot_scores
    from approxrt.evaluation.report import EvaluationReport, evaluate, resolve_gt_path

# Imported on first use: motmetrics brings pandas (about a second of import),
# which the sinks, needing only the file formats above, should not pay for.
_LAZY = {
    "MotScores": "mot_metrics",
    "mot_scores": "mot_metrics",
    "EvaluationReport": "report",
    "evaluate": "report",
    "resolve_gt_path": "report",
}

__all__ = [
    "GT_FORMATS",
    "PERSON",
    "RESULTS_COCO_JSON",
    "RESULTS_TXT",
    "APResult",
    "ClassAP",
    "CocoScores",
    "EvaluationReport",
    "MotScores",
    "average_precision",
    "coco_scores",
    "evaluate",
    "evaluate_ap",
    "format_mot_lines",
    "ignored",
    "match_detections",
    "mot_scores",
    "read_coco_gt",
    "read_coco_results",
    "read_mot_gt",
    "read_mot_results",
    "resolve_gt_path",
    "sequence_boxes",
    "sequence_from_xywh",
    "to_coco_gt",
    "to_coco_results",
    "write_coco_results",
    "write_mot_results",
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'approxrt.evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(f"approxrt.evaluation.{_LAZY[name]}"), name)
