"""CLEAR-MOT and identity metrics (MOTA, MOTP, IDF1, ...) through motmetrics.

Per frame, results are first matched (Hungarian, IoU >= the threshold) against
*all* ground truth of the frame; a result matched to an ignored gt box (flag 0)
is dropped, as the MOTChallenge devkit does. Then motmetrics' accumulator scores
the rest against the scored gt boxes with distance ``1 - IoU``.

A result without an identity (track id -1) gets a fresh id of its own, so an
untracked box is never confused with another one; it still costs an ID switch
whenever the box it covers had a different id before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import motmetrics as mm
import numpy as np
from scipy.optimize import linear_sum_assignment

from approxrt.detections import Detections, box_iou
from approxrt.evaluation.boxes import ignored

_METRICS = {
    "mota": "mota",
    "motp": "motp",
    "idf1": "idf1",
    "idp": "idp",
    "idr": "idr",
    "precision": "precision",
    "recall": "recall",
    "id_switches": "num_switches",
    "false_positives": "num_false_positives",
    "misses": "num_misses",
    "fragmentations": "num_fragmentations",
    "num_objects": "num_objects",
    "num_matches": "num_matches",
    "num_tracks": "num_unique_objects",
    "mostly_tracked": "mostly_tracked",
    "mostly_lost": "mostly_lost",
}

_RATIOS = {"mota", "motp", "idf1", "idp", "idr", "precision", "recall"}


@dataclass(frozen=True)
class MotScores:
    """MOT metrics of one sequence.

    Attributes:
        mota: 1 - (misses + false positives + id switches) / gt boxes.
        motp: mean IoU of matched pairs (MOTChallenge's convention, higher is
            better; motmetrics itself reports the mean distance 1 - IoU).
        idf1: F1 of identity-matched boxes; idp, idr its precision and recall.
        precision: matched results / results; recall: matched gt / gt boxes.
        id_switches, false_positives, misses, fragmentations: counts.
        num_objects: scored gt boxes; num_matches: matched pairs; num_tracks:
            gt identities; mostly_tracked / mostly_lost: identities covered for
            >= 80% / <= 20% of their life.
    """

    mota: float
    motp: float
    idf1: float
    idp: float
    idr: float
    precision: float
    recall: float
    id_switches: int
    false_positives: int
    misses: int
    fragmentations: int
    num_objects: int
    num_matches: int
    num_tracks: int
    mostly_tracked: int
    mostly_lost: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def mot_scores(
    gt: Detections, results: Detections, iou_threshold: float = 0.5
) -> MotScores:
    """MOT metrics of ``results`` (with track ids) against ``gt``.

    Args:
        gt: ground truth of a sequence with identities; ignored boxes are not
            scored.
        results: tracked boxes; class is not looked at (filter beforehand).
        iou_threshold: minimum IoU for a gt box and a result to match.
    """
    gt = gt[np.argsort(gt.frame, kind="stable")]
    results = _with_unique_untracked_ids(
        results[np.argsort(results.frame, kind="stable")]
    )
    accumulator = mm.MOTAccumulator(auto_id=False)
    gt_by_frame = _split_by_frame(gt)
    results_by_frame = _split_by_frame(results)
    for frame in sorted(set(gt_by_frame) | set(results_by_frame)):
        frame_gt = gt[gt_by_frame.get(frame, slice(0, 0))]
        hyp = results[results_by_frame.get(frame, slice(0, 0))]
        iou = box_iou(frame_gt.xyxy, hyp.xyxy).astype(np.float64)
        gt_ignored = ignored(frame_gt)
        keep = ~_matched_to_ignored(iou, gt_ignored, iou_threshold)
        scored_iou = iou[~gt_ignored][:, keep]
        distance = np.where(scored_iou >= iou_threshold, 1.0 - scored_iou, np.nan)
        accumulator.update(
            frame_gt.tracker_id[~gt_ignored].tolist(),
            hyp.tracker_id[keep].tolist(),
            distance,
            frameid=frame,
        )
    summary = mm.metrics.create().compute(
        accumulator, metrics=list(_METRICS.values()), return_dataframe=False
    )
    values = {ours: summary[theirs] for ours, theirs in _METRICS.items()}
    values["motp"] = 1.0 - values["motp"]
    return MotScores(
        **{
            name: float(value) if name in _RATIOS else int(value)
            for name, value in values.items()
        }
    )


def _split_by_frame(table: Detections) -> dict[int, slice]:
    """Frame number -> slice of rows, for a table sorted by frame."""
    frames, starts, counts = np.unique(
        table.frame, return_index=True, return_counts=True
    )
    return {
        f: slice(s, s + c)
        for f, s, c in zip(
            frames.tolist(), starts.tolist(), counts.tolist(), strict=True
        )
    }


def _matched_to_ignored(
    iou: np.ndarray, ignore: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """``(n_results,) bool``: results the optimal assignment gives to ignored gt."""
    dropped = np.zeros(iou.shape[1], bool)
    if not ignore.any() or iou.shape[1] == 0:
        return dropped
    # Pairs under the threshold may not match: make them worse than no match.
    cost = np.where(iou >= iou_threshold, 1.0 - iou, 1e6)
    gt_rows, result_cols = linear_sum_assignment(cost)
    valid = cost[gt_rows, result_cols] < 1e6
    dropped[result_cols[valid & ignore[gt_rows]]] = True
    return dropped


def _with_unique_untracked_ids(results: Detections) -> Detections:
    untracked = results.tracker_id < 0
    if not untracked.any():
        return results
    tracker_id = results.tracker_id.copy()
    first = int(tracker_id.max(initial=0)) + 1
    tracker_id[untracked] = np.arange(first, first + int(untracked.sum()))
    return results.with_columns(tracker_id=tracker_id)
