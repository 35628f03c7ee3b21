"""`ProfileCoverage`: whether the live scene lies within what the profile saw.

The content-aware accuracy model never extrapolates: content beyond every
profiled segment is read as the nearest profiled one (`ContentAccuracyModel.
content`). That keeps a linear model from promising an AP50 of 1, but it also
means the model cannot know how a scene beyond the profile ranks the branches.
The benchmark's synthetic crowd showed what that costs: its detectors keep up
to 23 confident boxes a frame where stop 26's profile (made before the
`synth_crowd` scene) held 12 at most, so the crowd was read as that segment.
There the model put nanodet_m s320 every frame at AP50 0.58 and fastestdet at
0.42; on the crowd they score 0.47 and 0.44, and nanodet_m s320 tracked with
MedianFlow every 2 frames, predicted 0.55, scores 0.36
(docs/benchmarks/adaptive.md, stop 26).

No live signal tells which branch the profile misranks here (the kernels'
counts of boxes agree, and their confidences do not follow their AP50 across
the profiled videos), so the runtime says so instead: each decision records
how far the content lies beyond the profiled range, and the first decision
clearly beyond it (`WARN_BEYOND_SD`) on each feature logs a warning naming the
feature, its live value and the profiled range, so a user knows to profile on
video like the stream (the default profile's `synth_crowd` scene came from
this: `approxrt.profiler.videos`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from approxrt.scheduler.accuracy_features import LIGHT_NAMES, light_features
from approxrt.scheduler.accuracy_model import ContentAccuracyModel

log = logging.getLogger(__name__)

# How far beyond the profiled range (in its standard deviations) content must lie
# before a warning: a live run's features wander just past the edges (size 0.054
# against a profiled 0.0542, speed 0.112 against 0.111 in stop 26's crowd runs),
# which says nothing a user should act on. The event value still records it.
WARN_BEYOND_SD = 0.5

# Each light feature in the units a user reads, from the model's number.
_READABLE = {
    "log_objects": ("objects per frame", math.expm1),
    "log_relative_size": ("object size over the frame's longer side", math.exp),
    "relative_speed": ("object speed per frame over its size", lambda v: v),
    "log_frame_mpx": ("frame megapixels", math.exp),
}


class ProfileCoverage:
    """How far live content lies beyond the content ``model`` was fitted on.

    Only the light features the model reads are checked (the heavy ones are
    projections without units a user could act on).
    """

    def __init__(self, model: ContentAccuracyModel) -> None:
        self._names = list(model.light_used_)
        self._columns = [LIGHT_NAMES.index(n) for n in self._names]
        # The light features come first among the model's content numbers.
        width = len(self._names)
        # Plain floats: four comparisons in Python cost a decision a few
        # microseconds, where numpy's per-call overhead on 4-element arrays
        # added 70-110 us (`approxrt bench scheduler`, 1,360 branches).
        self._low = model.content_range_[0, :width].tolist()
        self._high = model.content_range_[1, :width].tolist()
        self._std = model.content_std_[:width].tolist()
        self._warned: set[str] = set()

    def beyond(self, features: Mapping[str, Any]) -> float:
        """How far ``features`` (one segment's) lie outside the profiled range,
        in the profile's standard deviations of the furthest feature; 0 within
        it. A feature not known yet (NaN) counts as within."""
        row = light_features(features)[0].tolist()
        furthest = 0.0
        for i, column in enumerate(self._columns):
            value = row[column]
            # NaN compares False both ways: within.
            if value > self._high[i]:
                excess = (value - self._high[i]) / self._std[i]
            elif value < self._low[i]:
                excess = (self._low[i] - value) / self._std[i]
            else:
                continue
            if excess >= WARN_BEYOND_SD:
                self._warn(self._names[i], value, i)
            furthest = max(furthest, excess)
        return furthest

    def _warn(self, name: str, value: float, i: int) -> None:
        if name in self._warned:
            return
        self._warned.add(name)
        label, readable = _READABLE[name]
        log.warning(
            "content beyond the accuracy profile: %s %.3g, profiled %.3g-%.3g; "
            "accuracy is predicted as at the profile's edge, so branches may be "
            "misranked here. Profile accuracy on video like this stream "
            "(`approxrt profile accuracy`).",
            label,
            readable(value),
            readable(self._low[i]),
            readable(self._high[i]),
        )
