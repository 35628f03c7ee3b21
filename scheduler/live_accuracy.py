"""`LiveAccuracy`: every branch's predicted AP50 as this scene shows it.

The profile predicts from content (`ContentAccuracyModel`) or, without it or
before anything was seen, from its table. Two live signals, needing no ground
truth, then correct what the profile could not know about this scene:

- `KernelRecall`: a kernel seeing a small share of its peers' boxes gets its
  branches' accuracy scaled down (AP50 cannot exceed recall);
- `TrackingRetention`: a tracked branch is capped at its kernel's every-frame
  accuracy times the share of it that tracking keeps here.

What no live signal corrects, content beyond the profile's, is measured and
reported (`ProfileCoverage`).

The ApproxDet-style ablation (``content_aware`` False) uses the table alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from approxrt.branch import Branch
from approxrt.result import FrameResult
from approxrt.scheduler.content import Content
from approxrt.scheduler.coverage import ProfileCoverage
from approxrt.scheduler.latency_components import branch_kernel, tracker_key
from approxrt.scheduler.profile_models import ProfileModels
from approxrt.scheduler.recall import KernelRecall
from approxrt.scheduler.retention import TrackingRetention

# The share gathered by branches the cap leaves alone: with a parent score
# clipped at 0, their cap is 0 (their own score <= 0, left as it is) or far
# above any score.
NEVER_CAPPED = 1e6


class LiveAccuracy:
    """Predicted AP50 of ``branches``, corrected by what the stream shows.

    Args:
        models: the profile's models (an accuracy table is required).
        branches: the candidates, in the order of every returned array.
        content_aware: the content-aware model (when the profile has one) and
            both live corrections; False: the table alone.
        min_confidence: boxes below this are not the detector's finds.
    """

    def __init__(
        self,
        models: ProfileModels,
        branches: Sequence[Branch],
        content_aware: bool = True,
        min_confidence: float = 0.3,
    ) -> None:
        if models.accuracy_table is None:
            raise ValueError(
                "AdaptivePolicy: the profile has no accuracy model; run "
                "`approxrt profile accuracy` (or use the shipped accuracy profile)"
            )
        self.min_confidence = min_confidence
        self._table = models.accuracy_table.predict(branches)
        self._model = models.content_light if content_aware else None
        if self._model is not None:
            self._bound = self._model.bind(branches)
            self.coverage = ProfileCoverage(self._model)
        # How far the last predicted content lay beyond the profile's (0: within
        # it, or not read).
        self.beyond_profile = 0.0
        kernels = [branch_kernel(b) for b in branches]
        position = {k: i for i, k in enumerate(dict.fromkeys(kernels))}
        self._kernel_index = np.array([position[k] for k in kernels])
        self.recall = KernelRecall(list(position)) if content_aware else None
        keys = [tracker_key(b) for b in branches]
        tracker_keys = sorted({k for k in keys if k})
        self.retention = (
            TrackingRetention(tracker_keys) if content_aware and tracker_keys else None
        )
        self._bind_parents(kernels, keys, tracker_keys, branches)
        self._kept: np.ndarray | None = None  # each branch's share, last predict
        self._previous: FrameResult | None = None  # the last frame observed
        self._group_frames = 0  # frames since the latest detection frame

    def _bind_parents(self, kernels, keys, tracker_keys, branches) -> None:
        """For each tracked branch, its kernel's every-frame branch and its
        (tracker, group length) pair: the cap's gathers, bound once."""
        every_frame = {kernels[i]: i for i, key in enumerate(keys) if not key}
        self._parent = np.array(
            [every_frame.get(k, i) for i, k in enumerate(kernels)], np.int64
        )
        lengths = [b.sampling_interval for b in branches]
        pairs = sorted({(k, si) for k, si in zip(keys, lengths, strict=True) if k})
        pair_index = {pair: i for i, pair in enumerate(pairs)}
        self._pair_tracker = np.array([tracker_keys.index(k) for k, _ in pairs])
        self._pair_log_frames = np.log([float(si) for _, si in pairs])
        self._pair_kept = np.full(len(pairs) + 1, NEVER_CAPPED)
        # Untracked branches, and tracked ones whose kernel has no every-frame
        # branch here, point past the pairs: never capped.
        self._pair = np.array(
            [
                pair_index[(k, si)] if k and self._parent[i] != i else len(pairs)
                for i, (k, si) in enumerate(zip(keys, lengths, strict=True))
            ],
            np.int64,
        )

    def predict(
        self, content: Content, frame_wh: tuple[int, int], frame_index: int
    ) -> np.ndarray:
        """``(B,)`` AP50 scores to rank by (unclipped, see
        `ContentAccuracyModel.score`)."""
        if self._model is None or not content.known:
            accuracy = self._table
        else:
            features = content.features(frame_wh)
            self.beyond_profile = self.coverage.beyond(features)
            accuracy = self._model.score(self._bound, features)
        factors = self.recall.factors(frame_index) if self.recall else None
        if factors is not None:
            recall = factors[self._kernel_index]
            scaled = np.maximum(accuracy, 0.0) * recall  # a negative score stays 0
            accuracy = np.where(recall < 1.0, scaled, accuracy)
        return self._cap_tracking(accuracy, frame_index)

    def _cap_tracking(self, accuracy: np.ndarray, frame_index: int) -> np.ndarray:
        alpha = self.retention.alphas(frame_index) if self.retention else None
        self._kept = None
        if alpha is None:  # nothing tracked yet: a decision skips the cap
            return accuracy
        # Untracked branches (and those without an every-frame parent) gather
        # the last entry, a share so large that their own score, if positive,
        # stays under it.
        self._pair_kept[:-1] = self.retention.kept_ap_share(
            alpha[self._pair_tracker], self._pair_log_frames
        )
        kept = self._kept = self._pair_kept[self._pair]
        # A parent scoring below 0 caps its tracked branches at 0.
        cap = np.maximum(accuracy[self._parent], 0.0) * kept
        return np.minimum(accuracy, cap, out=cap)

    def observe(self, result: FrameResult, confident_boxes: int) -> None:
        """One frame's result; ``confident_boxes`` of it count as found."""
        kernel = branch_kernel(result.branch)
        if self.recall is not None and result.detected:
            self.recall.update(kernel, result.frame.index, confident_boxes)
        previous, self._previous = self._previous, result
        if not result.detected:
            self._group_frames += 1
            return
        frames, self._group_frames = self._group_frames, 1
        # A group tracked from this kernel's seeds, ended by this kernel: what
        # its tracker kept of what the same detector finds now.
        if self.retention is None or previous is None or previous.detected:
            return
        tracker = tracker_key(previous.branch)
        if tracker is None or branch_kernel(previous.branch) != kernel:
            return
        found = result.detections
        found = found[found.confidence >= self.min_confidence]
        self.retention.update(
            tracker, frames, previous.detections, found, result.frame.index
        )

    def tracking_kept(self, index: int) -> float:
        """The share branch ``index`` was capped to at the last `predict` (1 when
        the cap was off or does not apply to it)."""
        return 1.0 if self._kept is None else min(float(self._kept[index]), 1.0)

    def sees_the_scene(self, kernel: str, frame_index: int) -> bool:
        """Whether ``kernel``'s boxes count as the scene's (its recall so far)."""
        if self.recall is None:
            return True
        return self.recall.share(kernel, frame_index) >= self.recall.full_share

    def kernel_recall(self, kernel: str, frame_index: int) -> float:
        """``kernel``'s share of its peers' boxes (1 when unknown or unused)."""
        return self.recall.share(kernel, frame_index) if self.recall else 1.0
