"""COCO json in and out, and COCO mAP from an independent scorer.

Image ids are MOT frame numbers (1-based), category ids are COCO's original ids
(`approxrt.classes.COCO_CATEGORY_IDS`), and ignored ground truth is written with
``iscrowd = 1`` and ``ignore = 1``: both COCO evaluators key their ignore rule on
``iscrowd``, and then measure a detection against such a box by intersection over
the detection's area.

The scorer is faster-coco-eval when it imports, else pycocotools; both give the
same numbers, faster-coco-eval in C++.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from approxrt.classes import COCO_CATEGORY_IDS, COCO_CLASSES
from approxrt.detections import Detections
from approxrt.evaluation.boxes import ignored, sequence_from_xywh

RESULTS_COCO_JSON = "results.coco.json"

_CLASS_OF_CATEGORY = {category: i for i, category in enumerate(COCO_CATEGORY_IDS)}


@dataclass(frozen=True)
class CocoScores:
    """COCO detection metrics (maxDets raised to fit the busiest frame).

    Attributes:
        map: AP averaged over IoU 0.50:0.05:0.95 and the classes with gt.
        ap50: AP at IoU 0.5 (101-point interpolation).
        ap75: AP at IoU 0.75.
        per_class_ap50: AP at IoU 0.5 per contiguous class id with gt.
        scorer: ``"faster-coco-eval"`` or ``"pycocotools"``.
    """

    map: float
    ap50: float
    ap75: float
    per_class_ap50: dict[int, float] = field(default_factory=dict)
    scorer: str = ""


def category_ids(class_id: np.ndarray) -> np.ndarray:
    """Contiguous class ids -> COCO category ids; ValueError on unknown ids."""
    class_id = np.asarray(class_id, np.int64)
    bad = (class_id < 0) | (class_id >= len(COCO_CATEGORY_IDS))
    if bad.any():
        raise ValueError(
            f"class_id: expected 0..{len(COCO_CATEGORY_IDS) - 1}, "
            f"got {sorted(set(class_id[bad].tolist()))[:5]}"
        )
    return np.asarray(COCO_CATEGORY_IDS, np.int64)[class_id]


def to_coco_results(table: Detections) -> list[dict]:
    """COCO results: one ``{image_id, category_id, bbox, score}`` per box."""
    xywh = np.round(table.xywh, 2).tolist()
    score = np.round(table.confidence.astype(np.float64), 4).tolist()
    return [
        {"image_id": frame, "category_id": category, "bbox": box, "score": s}
        for frame, category, box, s in zip(
            table.frame.tolist(),
            category_ids(table.class_id).tolist(),
            xywh,
            score,
            strict=True,
        )
    ]


def to_coco_gt(gt: Detections, frame_numbers: Iterable[int] = ()) -> dict:
    """A COCO ground-truth dict for ``gt``.

    Args:
        gt: ground truth; ignored boxes become ``iscrowd = 1, ignore = 1``.
        frame_numbers: frames to list as images besides ``1..max(gt.frame)``
            (COCO refuses results on images it does not know).
    """
    last = int(gt.frame.max()) if len(gt) else 0
    frames = sorted(set(range(1, last + 1)) | {int(f) for f in frame_numbers})
    xywh = np.round(gt.xywh, 2)
    crowd = ignored(gt).astype(int).tolist()
    annotations = [
        {
            "id": i + 1,
            "image_id": frame,
            "category_id": category,
            "bbox": box,
            "area": area,
            "iscrowd": c,
            "ignore": c,
            "track_id": track,
        }
        for i, (frame, category, box, area, c, track) in enumerate(
            zip(
                gt.frame.tolist(),
                category_ids(gt.class_id).tolist(),
                xywh.tolist(),
                (xywh[:, 2] * xywh[:, 3]).tolist(),
                crowd,
                gt.tracker_id.tolist(),
                strict=True,
            )
        )
    ]
    return {
        "images": [{"id": f, "file_name": f"{f:06d}.jpg"} for f in frames],
        "annotations": annotations,
        "categories": [
            {"id": c, "name": n, "supercategory": ""}
            for c, n in zip(COCO_CATEGORY_IDS, COCO_CLASSES, strict=True)
        ],
    }


def write_coco_results(path: str | Path, table: Detections) -> None:
    with open(path, "w", encoding="utf-8") as file:
        json.dump(to_coco_results(table), file, separators=(",", ":"))


def _load_json(path: Path, expected: type) -> list | dict:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, expected):
        raise ValueError(
            f"{path}: expected a JSON {expected.__name__}, got {type(data).__name__}"
        )
    return data


def _table_from_annotations(
    path: Path, annotations: list[dict], gt: bool
) -> Detections:
    if not annotations:
        return sequence_from_xywh([], [], ignore=[] if gt else None)
    try:
        frame = [a["image_id"] for a in annotations]
        xywh = [a["bbox"] for a in annotations]
        category = [a["category_id"] for a in annotations]
        score = [1.0 if gt else a["score"] for a in annotations]
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path}: an annotation lacks {error}") from None
    unknown = set(category) - set(_CLASS_OF_CATEGORY)
    if unknown:
        raise ValueError(f"{path}: category ids {sorted(unknown)[:5]} are not COCO ids")
    ignore = [bool(a.get("iscrowd", 0) or a.get("ignore", 0)) for a in annotations]
    return sequence_from_xywh(
        frame,
        xywh,
        confidence=score,
        class_id=[_CLASS_OF_CATEGORY[c] for c in category],
        tracker_id=[a.get("track_id", -1) for a in annotations],
        ignore=ignore if gt else None,
    )


def read_coco_gt(path: str | Path) -> Detections:
    """COCO ground truth json -> table (image id = frame number)."""
    path = Path(path)
    data = _load_json(path, dict)
    if "annotations" not in data:
        raise ValueError(f"{path}: a COCO ground truth needs an 'annotations' list")
    return _table_from_annotations(path, data["annotations"], gt=True)


def read_coco_results(path: str | Path) -> Detections:
    """COCO results json (a list of detections) -> table."""
    path = Path(path)
    return _table_from_annotations(path, _load_json(path, list), gt=False)


def coco_scores(
    gt: Detections, detections: Detections, classes: Iterable[int] | None = None
) -> CocoScores:
    """COCO mAP, AP50 and AP75 of ``detections`` against ``gt``.

    Args:
        gt: ground truth (frame numbers as image ids).
        detections: results.
        classes: contiguous class ids to score; default every class with gt.
    """
    scorer, coco_class, eval_class = _scorer()
    gt_json = to_coco_gt(gt, detections.frame.tolist())
    if len(detections) == 0:
        scored = sorted(
            set(gt.class_id[~ignored(gt)].tolist())
            & set(classes if classes is not None else gt.class_id.tolist())
        )
        zero = 0.0 if scored else math.nan
        return CocoScores(zero, zero, zero, dict.fromkeys(scored, 0.0), scorer)
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet:
        # pycocotools' constructor only takes a file name, so index the dict here.
        coco_gt = coco_class()
        coco_gt.dataset = gt_json
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(to_coco_results(detections))
        evaluator = eval_class(coco_gt, coco_dt, "bbox")
        if classes is not None:
            evaluator.params.catIds = category_ids(list(classes)).tolist()
        busiest = int(np.bincount(detections.frame).max())
        evaluator.params.maxDets = [1, 10, max(100, busiest)]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [math.nan if s < 0 else float(s) for s in evaluator.stats[:3]]
    return CocoScores(*stats, _per_class_ap50(evaluator), scorer)


def _per_class_ap50(evaluator) -> dict[int, float]:
    # precision: [iou threshold, recall point, class, area range, maxDets];
    # -1 marks classes without gt.
    precision = evaluator.eval["precision"][0, :, :, 0, -1]
    per_class = {}
    for k, category in enumerate(evaluator.params.catIds):
        column = precision[:, k]
        if (column > -1).any():
            per_class[_CLASS_OF_CATEGORY[category]] = float(column[column > -1].mean())
    return per_class


def _scorer():
    """(name, COCO class, COCOeval class) of the first evaluator that imports."""
    try:
        from faster_coco_eval import COCO, COCOeval_faster

        def quiet_eval(gt, dt, iou_type):
            return COCOeval_faster(gt, dt, iou_type, print_function=lambda *_: None)

        return "faster-coco-eval", COCO, quiet_eval
    except ImportError:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        return "pycocotools", COCO, COCOeval
