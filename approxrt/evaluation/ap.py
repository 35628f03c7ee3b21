"""Average precision at IoU 0.5 per class, ImageNet-VID / PASCAL-VOC style.

Matching, per frame and class: detections are taken in descending score order
and each is matched to the *unmatched* scored ground-truth box of its class with
the highest IoU >= ``iou_threshold`` (a true positive). A detection left without
one (for instance a second detection of an already matched box) is a false
positive, unless it overlaps an ignored ground-truth box (MOT flag 0) with
IoU >= ``iou_threshold``: then it is dropped, neither TP nor FP. Ignored boxes
can absorb any number of detections. This is the rule COCO's evaluator applies to
its ``iscrowd`` boxes, except that we measure IoU (not intersection over the
detection's area) against ignored boxes.

Then, per class, all detections of the sequence are ranked by score and

- ``ap50`` (headline) is the area under the *interpolated* precision/recall
  curve: precision is made monotone (at each rank, the best precision at any
  deeper rank) and summed over the recall steps, as PASCAL VOC 2010+ and the
  ImageNet VID devkit do. It is the number detection papers, ApproxDet included,
  report as mAP@0.5, so our profiles and plots compare with theirs.
- ``ap50_raw`` is the plain mean of the precision at each recall step (each true
  positive), missed boxes counting 0; no interpolation, so it is never above
  ``ap50`` and penalises every out-of-order false positive.

COCO's AP50 samples the interpolated curve at 101 recall points instead of
summing it exactly, so it agrees with ``ap50`` to within about 1/101 per step of
the curve, not exactly. ImageNet VID's extra IoU relaxation for tiny objects is
not applied.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from approxrt.detections import Detections
from approxrt.evaluation.boxes import ignored

TRUE_POSITIVE, FALSE_POSITIVE, IGNORED = 1, 0, -1


@dataclass(frozen=True)
class ClassAP:
    """AP of one class.

    Attributes:
        class_id: contiguous COCO class.
        ap50: interpolated AP (the headline; NaN when the class has no scored gt).
        ap50_raw: non-interpolated AP (mean precision at each recall step).
        num_gt: scored ground-truth boxes.
        num_detections: detections scored (TP + FP; ignored ones excluded).
        num_true_positives: detections matched to a scored gt box.
    """

    class_id: int
    ap50: float
    ap50_raw: float
    num_gt: int
    num_detections: int
    num_true_positives: int


@dataclass(frozen=True)
class APResult:
    """Per-class AP and their means over the classes that have ground truth."""

    per_class: dict[int, ClassAP]

    @property
    def mean_ap50(self) -> float:
        return _nanmean([c.ap50 for c in self.per_class.values()])

    @property
    def mean_ap50_raw(self) -> float:
        return _nanmean([c.ap50_raw for c in self.per_class.values()])


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def evaluate_ap(
    gt: Detections,
    detections: Detections,
    classes: Iterable[int] | None = None,
    iou_threshold: float = 0.5,
) -> APResult:
    """AP at ``iou_threshold`` per class over a whole sequence.

    Args:
        gt: ground truth of a sequence (`approxrt.evaluation.boxes`); ignored
            boxes are not scored.
        detections: results of the sequence, with ``confidence`` scores.
        classes: class ids to score; default every class with scored gt.
        iou_threshold: minimum IoU for a match.

    Returns:
        `APResult`; a requested class without scored gt gets NaN AP and is left
        out of the means, a class with gt but no detections gets 0.
    """
    scored = ~ignored(gt)
    if classes is None:
        classes = np.unique(gt.class_id[scored]).tolist()
    status = match_detections(gt, detections, iou_threshold)
    per_class = {}
    for class_id in sorted({int(c) for c in classes}):
        in_class = (detections.class_id == class_id) & (status != IGNORED)
        num_gt = int(np.count_nonzero((gt.class_id == class_id) & scored))
        scores = detections.confidence[in_class]
        is_tp = status[in_class][np.argsort(-scores, kind="stable")] == TRUE_POSITIVE
        ap50, ap50_raw = average_precision(is_tp, num_gt)
        per_class[class_id] = ClassAP(
            class_id, ap50, ap50_raw, num_gt, len(is_tp), int(is_tp.sum())
        )
    return APResult(per_class)


def average_precision(is_tp: np.ndarray, num_gt: int) -> tuple[float, float]:
    """(interpolated AP, raw AP) of a ranked list.

    Args:
        is_tp: ``(n,) bool`` for detections sorted by descending score.
        num_gt: scored ground-truth boxes of the class.

    Returns:
        NaN for both when ``num_gt`` is 0.
    """
    if num_gt == 0:
        return math.nan, math.nan
    is_tp = np.asarray(is_tp, bool)
    cum_tp = np.cumsum(is_tp)
    precision = cum_tp / np.arange(1, len(is_tp) + 1)
    # Monotone envelope: at each rank, the best precision at that rank or deeper.
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    # Recall rises by 1/num_gt exactly at each true positive.
    return (
        float(envelope[is_tp].sum() / num_gt),
        float(precision[is_tp].sum() / num_gt),
    )


def match_detections(
    gt: Detections, detections: Detections, iou_threshold: float = 0.5
) -> np.ndarray:
    """Greedy per-frame matching (see the module docstring).

    Returns:
        ``(n,) int8`` per detection: `TRUE_POSITIVE`, `FALSE_POSITIVE` or `IGNORED`.
    """
    status = np.full(len(detections), FALSE_POSITIVE, np.int8)
    if len(gt) == 0 or len(detections) == 0:
        return status
    # One group per (frame, class): frame * span + class, with classes shifted
    # to 0..span-1 so that groups of different frames never collide.
    low = min(gt.class_id.min(), detections.class_id.min())
    span = int(max(gt.class_id.max(), detections.class_id.max()) - low) + 1
    gt_group = gt.frame * span + (gt.class_id - low)
    det_group = detections.frame * span + (detections.class_id - low)
    det_order = np.lexsort((-detections.confidence, det_group))
    gt_order = np.argsort(gt_group, kind="stable")
    det_idx, gt_idx, iou = _candidate_pairs(
        det_group[det_order],
        gt_group[gt_order],
        detections.xyxy[det_order],
        gt.xyxy[gt_order],
        iou_threshold,
    )
    ignored_pair = ignored(gt)[gt_order][gt_idx]
    sorted_status = np.full(len(detections), FALSE_POSITIVE, np.int8)
    sorted_status[det_idx[ignored_pair]] = IGNORED
    matched = _greedy_match(
        det_group[det_order],
        det_idx[~ignored_pair],
        gt_idx[~ignored_pair],
        iou[~ignored_pair],
    )
    sorted_status[matched] = TRUE_POSITIVE
    status[det_order] = sorted_status
    return status


def _candidate_pairs(
    det_group: np.ndarray,
    gt_group: np.ndarray,
    det_xyxy: np.ndarray,
    gt_xyxy: np.ndarray,
    iou_threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (detection, gt) pairs of one group with IoU >= the threshold.

    Both inputs are sorted by group; each detection is paired with the gt slice
    of its group, so the work is the sum over frames of dets x gts, not n x m.
    """
    start = np.searchsorted(gt_group, det_group, "left")
    count = np.searchsorted(gt_group, det_group, "right") - start
    det_idx = np.repeat(np.arange(len(det_group)), count)
    first_of_run = np.repeat(np.cumsum(count) - count, count)
    gt_idx = np.repeat(start, count) + np.arange(len(det_idx)) - first_of_run
    iou = _pairwise_iou(det_xyxy[det_idx], gt_xyxy[gt_idx])
    keep = iou >= iou_threshold
    return det_idx[keep], gt_idx[keep], iou[keep]


def _pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(n,)`` IoU of row i of ``a`` with row i of ``b``, both ``(n, 4)`` xyxy."""
    # float64: float32 arithmetic could tip an IoU across the match threshold.
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    top_left = np.maximum(a[:, :2], b[:, :2])
    wh = np.clip(np.minimum(a[:, 2:], b[:, 2:]) - top_left, 0, None)
    inter = wh[:, 0] * wh[:, 1]
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _greedy_match(
    det_group: np.ndarray, det_idx: np.ndarray, gt_idx: np.ndarray, iou: np.ndarray
) -> np.ndarray:
    """Detections (indices into the score-sorted order) that win a gt box.

    Detections are processed by their rank inside their group; the k-th of every
    group is handled in one vectorised round, since groups never share gt boxes.
    """
    if len(det_idx) == 0:
        return det_idx
    rank = np.arange(len(det_group)) - np.searchsorted(det_group, det_group, "left")
    # Pairs by (rank of the detection, detection, IoU descending).
    order = np.lexsort((-iou, det_idx, rank[det_idx]))
    det_idx, gt_idx, pair_rank = det_idx[order], gt_idx[order], rank[det_idx[order]]
    bounds = np.searchsorted(pair_rank, np.arange(pair_rank[-1] + 2))
    gt_taken = np.zeros(int(gt_idx.max()) + 1, bool)
    winners = []
    for k in range(len(bounds) - 1):
        dets, gts = (
            det_idx[bounds[k] : bounds[k + 1]],
            gt_idx[bounds[k] : bounds[k + 1]],
        )
        free = ~gt_taken[gts]
        # First free pair of each detection = its best unmatched gt.
        won, first = np.unique(dets[free], return_index=True)
        gt_taken[gts[free][first]] = True
        winners.append(won)
    return np.concatenate(winners)
