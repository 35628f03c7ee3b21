"""Learning from live latencies: an online correction and an error margin.

`LatencyFeedback` compares each frame's measured latency with what the profile
predicted for it under the sensed contention:

- **Correction**: one factor for the detector's part of detection frames,
  one per tracker's seeding (``"seed:kcf/ds2"``, the rest of a detection frame)
  and one per tracker's tracking frames (``"kcf/ds2"``), ``measured /
  predicted``. Seeding has its own: the profile under-predicted MOSSE's seeding
  on PETS (4-11 ms measured for 2-5 people), and in one factor with the
  detector it raised every detector's planned ms 2.5-3.4x at a 6 ms SLA, until
  nothing fitted but the very branch that seeded MOSSE. A factor rises at once to a
  reading well above it when that is confirmed: the frame before was also well
  above its own factor (contention arrived: the next decision must already plan
  for it), or the last reading of the same kind was (the profile under-predicts
  this kind of frame here: a crowd's detection frames, which seed dozens of
  trackers, while the tracking frames between them are as predicted). It
  relaxes slowly (one quiet frame is no proof the load has gone). One high
  frame alone only moves it as a normal reading does: on this VM single frames
  of an idle PETS run took 1.5-2.5x their prediction (the stream's first frame,
  page faults, the host), and jumping on each left an idle run planning as if
  loaded (detection factor 1.86 after the first frame, relaxing over 20).
  A tracker not yet seen is assumed slowed as detection is, and a
  tracker factor no frame has updated for a while drifts back towards the
  detection factor (which every group of frames refreshes): the load it
  measures likely slows them alike. Per tracker, because the profile errs
  differently for each (measured here under load: MOSSE 5x slower than
  predicted while KCF was 1.3x). This is what handles contention the profile
  never saw — memory-bandwidth pressure the OS does not report, a real
  co-running program.
- **Switching**: the first detection frame after a switch of kernel costs
  more than the profile's switching pairs say (measured back to back, right
  after the other kernel): live, a kernel's first frame after 20 frames of
  another took 13.0 ms against 3.4 planned (yolox_nano s224 after nanodet_m
  s512, crowd, idle). Read as a detector frame, that one frame replaced the
  detection factor (0.93 -> 3.37: the frame before was high too), every
  detector was planned 3.4x over, nothing fitted for dozens of frames, and the
  fallback ran the blind s224. So a switch's frame does not move the detection
  factor; what it cost beyond the detector's steady cost and the profiled
  switch is smoothed into ``switch_extra_ms``, which plans add to every
  switch.
- **Margin**: the distribution of ``measured / predicted`` per group of frames,
  *after* correction. The policy plans with predicted latency x the margin, a
  high quantile of the recent ratios, instead of a fixed 1.3: tight when
  predictions are good, wider when the device is erratic. Kept per group
  length, because a group's mean averages its frames' errors: on idle PETS
  (seven runs of this VM) the ratio's 90th percentile and maximum were 1.23
  and 2.54 for single-frame groups, 1.19 and 1.87 for groups of 4 and 1.00
  and 1.06 for groups of 8. One pooled margin held every branch to the
  single frames' spikes and kept long groups of accurate detectors out. A
  length with fewer than ``margin_min_groups`` groups yet takes the pooled
  margin.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

DETECT = "detect"  # the factor of detection frames; trackers are keyed "kcf/ds2"
# A part of a frame predicted below this many ms is not read: its measurement is
# mostly timer noise, and a factor learnt from it would scale larger predictions.
MIN_PART_MS = 0.1


def seed_key(tracker: str) -> str:
    """``"seed:kcf/ds2"``: the factor of seeding ``tracker`` on detection frames."""
    return f"seed:{tracker}"


@dataclass
class LatencyFeedback:
    """Correction factors and the planning margin, from measured latencies.

    Args:
        jump: a reading this much above the factor (1.25 = 25 %) replaces it.
        relax: weight of each new reading otherwise (exponential smoothing).
        margin_quantile: quantile of the recent per-group ratios used as margin.
        margin_window: groups of frames the margin is taken over.
        margin_prior: margin while fewer than ``margin_min_groups`` are known.
        margin_bounds: the margin is kept within these.
    """

    jump: float = 1.25
    relax: float = 0.2
    margin_quantile: float = 0.99
    margin_window: int = 100
    margin_min_groups: int = 8
    margin_prior: float = 1.15
    margin_bounds: tuple[float, float] = (1.0, 2.0)
    stale_frames: int = 30
    factors: dict[str, float] = field(default_factory=lambda: {DETECT: 1.0})

    def __post_init__(self) -> None:
        self.switch_extra_ms = 0.0  # a switch's cost beyond the profile's, smoothed
        self._ratios: deque[float] = deque(maxlen=self.margin_window)
        self._ratios_by_frames: dict[int, deque[float]] = {}
        # Quantiles are taken when a group ends (once per group), so that a
        # decision only reads them.
        self._pooled_margin = self.margin_prior
        self._margin_by_frames: dict[int, float] = {}
        self._frames_since: dict[str, int] = {}
        self._last_frame_high = False
        self._last_high: dict[str, bool] = {}  # per kind: its last reading was high

    def factor(self, kind: str) -> float:
        """The correction of ``kind``: `DETECT`, a tracker's ``"kcf/ds2"`` or
        its seeding's ``"seed:kcf/ds2"`` (one never read: `DETECT`'s)."""
        return self.factors.get(kind, self.factors[DETECT])

    def observe_frame(self, kind: str, measured_ms: float, predicted_ms: float) -> None:
        """One frame of ``kind`` against its raw (uncorrected) prediction."""
        self._observe_parts([(kind, measured_ms, predicted_ms)])

    def observe_detection(
        self,
        measured_ms: float,
        predicted_ms: float,
        tracker: str,
        seed_ms: float,
        predicted_seed_ms: float,
    ) -> None:
        """A detection frame that seeded ``tracker``, as its two parts: the
        detector's (`DETECT`: all but the seeding) and the seeding's."""
        self._observe_parts(
            [
                (DETECT, measured_ms, predicted_ms),
                (seed_key(tracker), seed_ms, predicted_seed_ms),
            ]
        )

    def observe_switch(self, extra_ms: float) -> None:
        """A switch's first detection frame cost ``extra_ms`` beyond the
        detector's corrected steady cost and the profiled switch."""
        if np.isfinite(extra_ms):
            self.switch_extra_ms += self.relax * (extra_ms - self.switch_extra_ms)

    def _observe_parts(self, parts: list[tuple[str, float, float]]) -> None:
        """The parts of one frame; a part is confirmed high by the frame before
        (any of its parts high) or by its own kind's last reading."""
        frame_before_high = self._last_frame_high
        read = []
        for kind, measured_ms, predicted_ms in parts:
            if predicted_ms < MIN_PART_MS or not np.isfinite(measured_ms):
                continue
            ratio = float(np.clip(measured_ms / predicted_ms, 0.2, 20.0))
            factor = self.factor(kind)
            high = ratio > factor * self.jump
            if high and (frame_before_high or self._last_high.get(kind, False)):
                self.factors[kind] = ratio
            else:
                self.factors[kind] = (1 - self.relax) * factor + self.relax * ratio
            self._last_high[kind] = high
            read.append((kind, high))
        if not read:
            return
        self._last_frame_high = any(high for _, high in read)
        for other in self._frames_since:
            self._frames_since[other] += 1
        for kind, _ in read:
            self._frames_since[kind] = 0
        detect = self.factors[DETECT]
        drift = self.relax / self.stale_frames
        for other, frames in self._frames_since.items():
            if other != DETECT and frames > self.stale_frames:
                self.factors[other] += drift * (detect - self.factors[other])

    def observe_group(
        self, measured_mean_ms: float, planned_mean_ms: float, frames: int = 1
    ) -> None:
        """A finished group of ``frames`` frames against its corrected prediction."""
        if planned_mean_ms <= 0 or not np.isfinite(measured_mean_ms):
            return
        ratio = measured_mean_ms / planned_mean_ms
        self._ratios.append(ratio)
        own = self._ratios_by_frames.setdefault(
            frames, deque(maxlen=self.margin_window)
        )
        own.append(ratio)
        self._pooled_margin = self._quantile(self._ratios)
        if len(own) >= self.margin_min_groups:
            self._margin_by_frames[frames] = self._quantile(own)

    def _quantile(self, ratios: deque[float]) -> float:
        """The ``margin_quantile`` of ``ratios``, read no higher than their
        ``1 - 1/n`` quantile: short of 100 ratios a 0.99 quantile is the sample
        maximum, the worst moment seen, not an estimate of any quantile. In the
        crowd at 10 ms one single-frame group at 2.2x its plan (a first frame
        of yolox_nano s320) held the margin at the bound 2.0 for 60 frames;
        only yolox_nano s224, which sees 1 box in 70 there, fitted under it."""
        count = len(ratios)
        if count < self.margin_min_groups:
            return self.margin_prior
        level = min(self.margin_quantile, 1.0 - 1.0 / count)
        quantile = float(np.quantile(ratios, level))
        return float(np.clip(quantile, *self.margin_bounds))

    @property
    def margin(self) -> float:
        """The margin of a group length not seen often enough: all groups'."""
        return self._pooled_margin

    def margins(self, group_frames: np.ndarray) -> np.ndarray:
        """Predicted latency of groups of these lengths is multiplied by this
        before it is held to the SLA."""
        pooled = self._pooled_margin
        return np.array(
            [self._margin_by_frames.get(int(f), pooled) for f in group_frames]
        )
