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
  A tracker's factors (its seeding's, its tracking frames') start at 1, the
  profile's word, and learn from their own readings only: a jump needs two
  high readings of the kind, and takes the lower. The detector's factor says
  little about trackers: under the ffmpeg encode on PETS at 20 ms it stood at
  1.7-2.7 while tracking frames ran a median 1.3x their raw prediction, and
  trackers that took it up (unseen ones, and stale ones that followed it)
  were planned at a median 2.3x what they ran. A factor no frame has read
  for ``stale_frames`` relaxes back to 1 (``STALE_RELAX`` a frame): on PETS
  at 10 ms, after two busy cores had come and gone, KCF ds4's stayed at
  1.7-1.9 for the stream's last 2 s, and branches tracking with it were
  planned dearer than they ran, so none ran to correct it. Per tracker,
  because the profile errs differently for each (measured here under load:
  MOSSE 5x slower than predicted while KCF was 1.3x). This is what handles
  contention the profile never saw — memory-bandwidth pressure the OS does
  not report, a real co-running program.
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
  high quantile of the ratios of the groups of the last ``margin_window``
  frames, instead of a fixed 1.3 (the groups a step of load caught leave it
  once the correction has taken the step up: `observe_group`): tight when
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

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

DETECT = "detect"  # the factor of detection frames; trackers are keyed "kcf/ds2"
# Groups before a jump of the detection factor that leave the margin's window
# with the one it happened in (at a step of load, the first group over is read
# before the jump is confirmed, and a switch's frame confirms none).
STEP_GROUPS = 2
# A part of a frame predicted below this many ms is not read: its measurement is
# mostly timer noise, and a factor learnt from it would scale larger predictions.
MIN_PART_MS = 0.1
# Share of the way back to 1 a tracker's factor unread for `stale_frames`
# goes each frame (about 14 frames to halve its distance).
STALE_RELAX = 0.05


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
        margin_window: frames the margin is taken over: the groups that ended
            in the last this many frames (at least ``margin_min_groups`` of
            each length), so an old spike leaves it as soon for long groups
            as for short ones.
        margin_prior: margin while fewer than ``margin_min_groups`` are known.
        margin_bounds: the margin is kept within these.
        stale_frames: a tracker's factor no frame has read for this many
            frames relaxes back to 1.
    """

    jump: float = 1.25
    relax: float = 0.2
    margin_quantile: float = 0.99
    margin_window: int = 90
    margin_min_groups: int = 8
    margin_prior: float = 1.15
    margin_bounds: tuple[float, float] = (1.0, 2.0)
    stale_frames: int = 30
    factors: dict[str, float] = field(default_factory=lambda: {DETECT: 1.0})

    def __post_init__(self) -> None:
        self.switch_extra_ms = 0.0  # a switch's cost beyond the profile's, smoothed
        self._ratios: deque[tuple[float, int]] = deque()  # (ratio, its frames)
        self._window_frames = 0  # frames of the groups in ``_ratios``
        self._ratios_by_frames: dict[int, deque[float]] = {}
        # Quantiles are taken when a group ends (once per group), so that a
        # decision only reads them.
        self._pooled_margin = self.margin_prior
        self._margin_by_frames: dict[int, float] = {}
        self._frames_since: dict[str, int] = {}  # per kind: frames since read
        self._last_frame_high = False
        self._last_high: dict[str, bool] = {}  # per kind: its last reading was high
        self._last_ratio: dict[str, float] = {}  # per kind: its last reading
        # Jumps of the detection factor so far. A tracker's alone does not
        # count: after a switch of kernel (no reading of the detector) the
        # tracking frames of a long group can confirm a step of load that the
        # detection factor has yet to take up.
        self._jumps = 0
        self._jumps_at_group_start = 0
        # Lengths of the groups whose ratios were added last, newest last (see
        # `observe_group`: a jump takes them back out).
        self._recent_lengths: deque[int] = deque(maxlen=STEP_GROUPS)

    def factor(self, kind: str) -> float:
        """The correction of ``kind``: `DETECT`, a tracker's ``"kcf/ds2"`` or
        its seeding's ``"seed:kcf/ds2"`` (one never read: 1, the profile's)."""
        return self.factors.get(kind, 1.0)

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
        """The parts of one frame; a part is confirmed high by its own kind's
        last reading or, for the detector, by the frame before (any of its
        parts high). A tracker's frames are not confirmed by the frame before:
        under the ffmpeg encode on PETS at 20 ms, 17 of 144 tracking frames
        at 3.4-8.7x their raw prediction (one preemption) followed a high
        frame and set their tracker's factor."""
        frame_before_high = self._last_frame_high
        read = []
        for kind, measured_ms, predicted_ms in parts:
            if predicted_ms < MIN_PART_MS or not np.isfinite(measured_ms):
                continue
            ratio = float(np.clip(measured_ms / predicted_ms, 0.2, 20.0))
            factor = self.factor(kind)
            high = ratio > factor * self.jump
            confirmed_by_own = self._last_high.get(kind, False)
            confirmed_by_frame = frame_before_high and kind == DETECT
            if high and (confirmed_by_frame or confirmed_by_own):
                before = self._last_ratio[kind] if confirmed_by_own else ratio
                self.factors[kind] = self._jump_to(kind, ratio, before)
                self._jumps += kind == DETECT
            else:
                self.factors[kind] = (1 - self.relax) * factor + self.relax * ratio
            self._last_high[kind] = high
            self._last_ratio[kind] = ratio
            read.append((kind, high))
        if not read:
            return
        self._last_frame_high = any(high for _, high in read)
        for other in self._frames_since:
            self._frames_since[other] += 1
        for kind, _ in read:
            self._frames_since[kind] = 0
        for other, frames in self._frames_since.items():
            if other != DETECT and frames > self.stale_frames:
                self.factors[other] += STALE_RELAX * (1.0 - self.factors[other])

    @staticmethod
    def _jump_to(kind: str, ratio: float, before: float) -> float:
        """The factor a confirmed jump sets, from its two confirming readings.

        Detection takes the higher: right after a step of load the groups it
        caught leave the margin's window (`observe_group`), so the factor must
        carry all of the step. Trackers take the lower: their frames are short,
        and one preemption of a few ms reads as a multiple of their prediction
        (3.4-8.7x under the ffmpeg encode).
        """
        return max(ratio, before) if kind == DETECT else min(ratio, before)

    def observe_group(
        self, measured_mean_ms: float, planned_mean_ms: float, frames: int = 1
    ) -> None:
        """A finished group of ``frames`` frames against its corrected prediction.

        When the detection factor jumped during the group (a change of load,
        now taken up by the correction of the stage that costs most), the group
        and the `STEP_GROUPS` groups before it leave the margin's window: they
        measured the step, not the error of predictions made after it. Until
        the jump they widen the margin, which is what protects the groups the
        correction has not caught up with yet. Kept, they held the margin at
        its bound for the next 100 groups of their length: on PETS at 10 ms,
        after 2 busy cores arrived, a group at 3.4x its plan (25.5 ms against
        7.6) left a margin of 2.0, and the scheduler ran si20 MOSSE (AP50
        0.05-0.3 predicted) at 1-2 ms a frame for the next 4 s.
        """
        jumped = self._jumps != self._jumps_at_group_start
        self._jumps_at_group_start = self._jumps
        if jumped:
            dropped = set(self._recent_lengths)
            while self._recent_lengths:
                self._drop_newest(self._recent_lengths.pop())
            self._update_margins(dropped)
            return
        if planned_mean_ms <= 0 or not np.isfinite(measured_mean_ms):
            return
        ratio = measured_mean_ms / planned_mean_ms
        self._ratios.append((ratio, frames))
        self._window_frames += frames
        while (
            len(self._ratios) > self.margin_min_groups
            and self._window_frames - self._ratios[0][1] >= self.margin_window
        ):
            self._window_frames -= self._ratios.popleft()[1]
        groups = max(self.margin_min_groups, math.ceil(self.margin_window / frames))
        self._ratios_by_frames.setdefault(frames, deque(maxlen=groups)).append(ratio)
        self._recent_lengths.append(frames)
        self._update_margins({frames})

    def _drop_newest(self, frames: int) -> None:
        self._window_frames -= self._ratios.pop()[1]
        self._ratios_by_frames[frames].pop()

    def _update_margins(self, lengths: set[int]) -> None:
        """Quantiles again, of the pooled ratios and of ``lengths``' own."""
        self._pooled_margin = self._quantile([r for r, _ in self._ratios])
        for frames in lengths:
            own = self._ratios_by_frames[frames]
            if len(own) >= self.margin_min_groups:
                self._margin_by_frames[frames] = self._quantile(own)
            else:
                self._margin_by_frames.pop(frames, None)

    def _quantile(self, ratios: Sequence[float]) -> float:
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
