"""`AdaptivePolicy`: the most accurate branch that fits the SLA, per group of frames.

At each decision (the first frame of a group of frames), for every branch at
once (numpy arrays, bound once at start-up):

1. **content** from the latest results: boxes per frame (each kernel planned
   with its own recent count when it has one), their size (for accuracy, as
   the profile's reference kernel would see it) and speed;
2. **contention** from the OS (`ContentionSensor`);
3. **latency**: the profile's prediction at that contention and content, times
   the live correction factors (`LatencyFeedback`), plus the switching cost
   from the running kernel (the profile's pair and what switches cost here
   beyond it) and the policy's own time per decision, both amortised over the
   group;
4. **accuracy**: content-aware when the profile has the model, else the table,
   corrected by what the stream shows (`LiveAccuracy`): a kernel blind to this
   scene, tracking that loses it;
5. **choice**: the most accurate branch whose latency x margin fits the SLA,
   the margin being a high quantile of recent prediction errors of groups as
   long as the branch's; the running
   branch stays unless another is more accurate by ``hysteresis_ap``; when
   none fits, the most accurate of those about as fast as the fastest
   (``NEAR_FASTEST``).

`AdaptivePolicy.approxdet_style` builds the ablation the benchmark compares
with: a fixed 1.3 margin, the content-agnostic table, contention looked up at
the nearest profiled level, and no online correction.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter

import numpy as np

from approxrt.branch import Branch
from approxrt.contention import ContentionLevels
from approxrt.decision import Decision, DecisionContext
from approxrt.result import FrameResult
from approxrt.scheduler.content import Content, ContentEstimate
from approxrt.scheduler.device_share import (
    Allotment,
    DeviceShare,
    SourceRate,
    StreamDemand,
)
from approxrt.scheduler.feedback import DETECT, LatencyFeedback, seed_key
from approxrt.scheduler.group_plan import GroupPlan, charge_frame, plan_group
from approxrt.scheduler.latency_components import branch_kernel, tracker_key
from approxrt.scheduler.live_accuracy import LiveAccuracy
from approxrt.scheduler.profile_models import ProfileModels
from approxrt.scheduler.sensor import ContentionSensor

# When no branch fits, those planned within this share of the fastest branch's
# ms count as fast as it, and the most accurate of them runs. On the crowd
# scene at a 10 ms SLA (margin 2.0 after the crowd grew) the plain fastest was
# yolox_nano s224 every frame, predicted AP50 0.005 there (it sees 1 box in
# 70), while fastestdet every frame, planned 1-7% slower in the same run, was
# predicted 0.44.
NEAR_FASTEST = 0.1
# Weight of each new decision's ms in the smoothed cost of deciding, which plans
# add to every group's first frame. Left out, it read as prediction error: live
# decisions over 370 branches took 0.6-0.9 ms beside 5-6 ms detection frames
# (idle PETS at 10 ms), and single-frame groups ran 1.1-1.2x their plans, so
# the margin rose to 1.34-1.40 and held accurate kernels out.
DECIDE_MS_WEIGHT = 0.1


class AdaptivePolicy:
    """SLA-driven branch choice over a profiled branch space.

    Args:
        models: the profile's fitted models.
        branches: the candidate branches (every one must be in the profile's
            latency model; accuracy falls back to the table's knob regression).
        sensor: OS contention sensor; None senses nothing (an idle device).
        feedback: correction and margin; None disables both (`fixed_margin`
            must then be given).
        fixed_margin: plan with this margin instead of the live one.
        content_aware: use the content-aware accuracy model when present and
            the live corrections of `LiveAccuracy`.
        nearest_contention: snap the sensed contention to the nearest
            profiled level (ApproxDet's lookup) instead of interpolating.
        hysteresis_ap: least AP50 gain worth leaving a branch that still fits.
        hysteresis_sla: share of the SLA a branch other than the running one
            must leave free to be chosen (the running one only has to fit), so
            a plan near the SLA does not flap with every noisy measurement.
        hysteresis_sla_below_ap: only a branch less than this AP50 better than
            the running one must leave ``hysteresis_sla`` free. Flapping
            between near equals costs switches for nothing; held to the
            headroom, a far better branch could stay out for good: in the
            synthetic crowd at 10 ms, fastestdet every frame (predicted AP50
            0.3) was planned at 9.4-9.7 ms with its margin, over the 9.5 ms
            the headroom left, while yolox_nano s224 ran, seeing 0-5% of the
            crowd (predicted 0.002) for 2 s at a time.
        min_confidence: boxes below this do not count as content (the profile
            counts the boxes that seed trackers).
        share: the device's other adaptive streams, planned with this one.
        stream_id: this stream's name in ``share``.
    """

    def __init__(
        self,
        models: ProfileModels,
        branches: Sequence[Branch],
        *,
        sensor: ContentionSensor | None = None,
        feedback: LatencyFeedback | None = None,
        fixed_margin: float | None = None,
        content_aware: bool = True,
        nearest_contention: bool = False,
        hysteresis_ap: float = 0.01,
        hysteresis_sla: float = 0.05,
        hysteresis_sla_below_ap: float = 0.1,
        min_confidence: float = 0.3,
        share: DeviceShare | None = None,
        stream_id: str = "0",
    ) -> None:
        if feedback is None and fixed_margin is None:
            raise ValueError("AdaptivePolicy: give feedback or a fixed_margin")
        if not branches:
            raise ValueError("AdaptivePolicy: no candidate branches")
        self.models = models
        self.branches = tuple(dict.fromkeys(branches))
        self.sensor = sensor
        self.feedback = feedback
        self.fixed_margin = fixed_margin
        self.nearest_contention = nearest_contention
        self.hysteresis_ap = hysteresis_ap
        self.hysteresis_sla = hysteresis_sla
        self.hysteresis_sla_below_ap = hysteresis_sla_below_ap
        self.content = ContentEstimate(min_confidence)
        self.share = share
        self.stream_id = stream_id
        self._source_rate = SourceRate()
        self._position = {b: i for i, b in enumerate(self.branches)}
        self._si = np.array([b.sampling_interval for b in self.branches], np.float64)
        self._tracking_frames = self._si - 1.0
        self._group_lengths, self._group_length_index = np.unique(
            self._si, return_inverse=True
        )
        self._kernels = [branch_kernel(b) for b in self.branches]
        codes = {k: i for i, k in enumerate(dict.fromkeys(self._kernels))}
        self._kernel_code = np.array([codes[k] for k in self._kernels])
        self._kernel_names = list(codes)
        self.accuracy = LiveAccuracy(
            models, self.branches, content_aware, min_confidence
        )
        keys = [tracker_key(b) for b in self.branches]
        self._tracker_keys = sorted({k for k in keys if k})
        position = {k: i for i, k in enumerate(self._tracker_keys)}
        tracker_index = np.array([position.get(k, 0) for k in keys], np.int64)
        self._bind_units(keys, tracker_index)
        self._plan: GroupPlan | None = None
        self._switched = False  # the running group's kernel differs from before
        self._group_ms: list[float] = []
        self._warm = False
        # This policy's own ms per decision (smoothed): the SLA pays for it on
        # each group's first frame, and no profiled stage holds it.
        self._decide_ms = 0.0

    def _bind_units(
        self, tracker_keys: list[str | None], tracker_index: np.ndarray
    ) -> None:
        """Latency is predicted per unit, a (kernel, tracker) pair, and spread
        over the unit's branches, which differ only in their group's length
        (its stages do not depend on it). Over 1,360 branches (100 units),
        `approxrt bench scheduler`: 176-181 us mean a decision (p50 166),
        against 201-211 (p50 184-187) with every stage predicted per branch."""
        units: dict[tuple, int] = {}
        self._unit = np.array(
            [
                units.setdefault((kernel, key), len(units))
                for kernel, key in zip(self._kernels, tracker_keys, strict=True)
            ],
            np.int64,
        )
        first = np.unique(self._unit, return_index=True)[1]
        self._latency = self.models.latency.bind([self.branches[i] for i in first])
        self._unit_kernel_code = self._kernel_code[first]
        self._unit_tracker_index = tracker_index[first]

    @classmethod
    def approxdet_style(
        cls, models: ProfileModels, branches: Sequence[Branch], **kwargs
    ) -> AdaptivePolicy:
        """The ablation: fixed 1.3 margin, table accuracy, nearest-level lookup."""
        return cls(
            models,
            branches,
            feedback=None,
            fixed_margin=1.3,
            content_aware=False,
            nearest_contention=True,
            **kwargs,
        )

    # -- deciding ---------------------------------------------------------------

    def decide(self, context: DecisionContext) -> Decision:
        start = perf_counter()
        frame_wh = (context.frame.width, context.frame.height)
        content = self.content.current
        levels = self._contention()
        running = self._position.get(context.running) if context.running else None
        kernel_objects = self._kernel_objects(content, context.frame.index)
        stages = self.models.latency.predict(
            self._latency,
            levels,
            kernel_objects,
            content.object_size_px,
            frame_wh,
            switch_from=self._kernels[running] if running is not None else None,
            object_groups=self._unit_kernel_code,
        )
        detect_factor, seed_factors, track_factors = self._factors()
        mean_ms = self._mean_ms(
            stages, running, detect_factor, seed_factors, track_factors
        )
        accuracy = self.accuracy.predict(content, frame_wh, context.frame.index)
        margin = self._margins()
        if not content.known:
            # Nothing seen yet: tracking costs depend on the scene, so the first
            # group is one detection frame, after which the content is known.
            mean_ms = np.where(self._si > 1, np.inf, mean_ms)
        check_ms = self._check_ms(mean_ms * margin, running, accuracy)
        allotment = self._allot(check_ms, mean_ms, accuracy, context.sla_ms, running)
        index = self._choose(
            check_ms, accuracy, allotment.sla_ms, running, allotment.ceiling_ms
        )
        unit = int(self._unit[index])
        self._plan = plan_group(
            stages,
            index,
            row=unit,
            mean_ms=float(mean_ms[index]),
            objects=float(kernel_objects[self._kernel_code[index]]),
            slowdown=allotment.slowdown,
        )
        self._group_ms = []
        self._switched = running is not None and bool(
            self._kernel_code[index] != self._kernel_code[running]
        )
        return Decision(
            self.branches[index],
            latency_ms=self._plan.planned_mean_ms,
            accuracy=min(max(float(accuracy[index]), 0.0), 1.0),
            contention={
                **levels.to_dict(),
                "slowdown_detect": float(detect_factor),
                "slowdown_seed": float(seed_factors[unit]),
                "slowdown_track": float(track_factors[unit]),
            },
            details={
                "margin": float(margin[index]),
                "shared_slowdown": allotment.slowdown,
                # 0: the chosen branch, margin included, is planned over the SLA
                # (none fitted and this is the fastest; the events show when).
                "fits": float(
                    allotment.sla_ms is None
                    or mean_ms[index] * margin[index] <= allotment.sla_ms
                ),
                "objects": float(kernel_objects[self._kernel_code[index]]),
                # The chosen kernel's share of its peers' boxes (1 if unknown).
                "kernel_recall": self.accuracy.kernel_recall(
                    self._kernels[index], context.frame.index
                ),
                # The share of its kernel's every-frame AP50 the chosen branch is
                # held to, from what tracking kept here (1: not capped).
                "tracking_kept": self.accuracy.tracking_kept(index),
                # How far the content lies beyond the accuracy profile's, in
                # its standard deviations (0: within; `ProfileCoverage`).
                "content_beyond_profile": self.accuracy.beyond_profile,
                "scheduler_ms": (perf_counter() - start) * 1e3,
            },
        )

    def _mean_ms(self, stages, running, detect_factor, seed_factors, track_factors):
        """``(B,)`` corrected mean ms per frame of each branch's group, from
        its unit's ``stages`` and factors: the group's first frame (detection,
        switch and this decision) and its tracking frames."""
        seed_ms = stages["tracker_seed"]
        first_ms = stages["detect_frame"] - seed_ms
        first_ms *= detect_factor
        first_ms += seed_ms * seed_factors
        first_ms += self._switch_ms(stages["switching"], running)
        first_ms += self._decide_ms
        track_ms = stages["track_frame"] * track_factors
        mean_ms = track_ms[self._unit]
        mean_ms *= self._tracking_frames
        mean_ms += first_ms[self._unit]
        mean_ms /= self._si
        return mean_ms

    def _kernel_objects(self, content: Content, frame_index: int) -> np.ndarray:
        """Boxes per frame each kernel's branches are planned for: its own
        recent count (`ContentEstimate.own_count`), else the scene's."""
        own = np.array(
            [self.content.own_count(k, frame_index) for k in self._kernel_names]
        )
        return np.where(np.isnan(own), content.objects, own)

    def _switch_ms(self, profiled_ms: np.ndarray, running: int | None) -> np.ndarray:
        """Each unit's cost of switching from the running kernel: the
        profile's pair, plus what switches cost beyond it here."""
        extra = self.feedback.switch_extra_ms if self.feedback else 0.0
        if running is None or extra == 0.0:
            return profiled_ms
        other = self._unit_kernel_code != self._kernel_code[running]
        return np.maximum(profiled_ms + extra * other, 0.0)

    def _check_ms(
        self, planned_ms: np.ndarray, running: int | None, accuracy: np.ndarray
    ) -> np.ndarray:
        """What must fit the SLA: the planned ms, over ``1 - hysteresis_sla``
        for every branch but the running one and those far more accurate than
        it (a switch must leave room unless it is worth the risk)."""
        if running is None:
            return planned_ms / (1.0 - self.hysteresis_sla)
        far_better = accuracy >= accuracy[running] + self.hysteresis_sla_below_ap
        far_better[running] = True
        headroom = np.where(far_better, 1.0, 1.0 - self.hysteresis_sla)
        return planned_ms / headroom

    def _allot(self, check_ms, expected_ms, accuracy, sla_ms, running) -> Allotment:
        """This stream's part of the device's joint plan (all of it when alone).

        The running branch counts ``hysteresis_ap`` more in the plan, as in the
        choice: else streams alike (one camera model, one scene) trade which of
        them gives way at every plan, and all of them switch all the time.
        """
        if self.share is None:
            return Allotment(sla_ms, float("inf"), 1.0, -1)
        if running is not None:
            accuracy = accuracy.copy()
            accuracy[running] += self.hysteresis_ap
        fps = self._source_rate.fps
        demand = StreamDemand(check_ms, expected_ms, accuracy, sla_ms, fps)
        return self.share.allot(self.stream_id, demand)

    def _factors(self) -> tuple[float, np.ndarray, np.ndarray]:
        """The live correction of the detector, and per unit of its tracker's
        seeding and tracking frames."""
        if self.feedback is None:
            ones = np.ones(len(self._unit_kernel_code))
            return 1.0, ones, ones
        keys = self._tracker_keys or ["none"]
        seed = np.array([self.feedback.factor(seed_key(k)) for k in keys])
        track = np.array([self.feedback.factor(k) for k in keys])
        index = self._unit_tracker_index
        return self.feedback.factor(DETECT), seed[index], track[index]

    @property
    def margin(self) -> float:
        """The margin over all group lengths (each length may have its own)."""
        if self.fixed_margin is not None:
            return self.fixed_margin
        return self.feedback.margin

    def _margins(self) -> np.ndarray:
        """``(B,)`` each branch's margin: its group length's."""
        if self.fixed_margin is not None:
            return np.full(len(self.branches), self.fixed_margin)
        per_length = self.feedback.margins(self._group_lengths)
        return per_length[self._group_length_index]

    def _contention(self) -> ContentionLevels:
        levels = self.sensor.sense() if self.sensor else ContentionLevels()
        if not self.nearest_contention:
            return levels
        grid = self.models.latency.detector.surfaces_.grid
        values = (levels.cpu, levels.membw_mbps, levels.gpu_pct)
        nearest = [
            min(axis, key=lambda k, v=v: abs(k - v))
            for v, axis in zip(values, grid.axes, strict=True)
        ]
        return ContentionLevels(*nearest)

    def _choose(
        self,
        check_ms: np.ndarray,
        accuracy: np.ndarray,
        sla_ms: float | None,
        running: int | None,
        ceiling_ms: float = float("inf"),
    ) -> int:
        if sla_ms is None and ceiling_ms == float("inf"):
            return int(np.argmax(accuracy))
        fits = check_ms <= min(np.inf if sla_ms is None else sla_ms, ceiling_ms)
        if not fits.any():
            near = check_ms <= check_ms.min() * (1.0 + NEAR_FASTEST)
            return int(np.argmax(np.where(near, accuracy, -np.inf)))
        fitting_accuracy = np.where(fits, accuracy, -np.inf)
        best_ap = fitting_accuracy.max()
        if running is not None and fits[running]:
            if accuracy[running] >= best_ap - self.hysteresis_ap:
                return running
        # Most accurate that fits; among equals, the fastest.
        return int(np.argmin(np.where(fitting_accuracy >= best_ap, check_ms, np.inf)))

    # -- learning -----------------------------------------------------------------

    def _size_ratio(self, kernel: str) -> float:
        """How much larger ``kernel``'s boxes look than the profile's reference
        kernel's (1 for a profile without `KernelViews`)."""
        views = self.models.kernel_views
        return 1.0 if views is None else views.size_ratio(kernel)

    def observe(self, result: FrameResult) -> None:
        decide_ms = result.timings_ms.get("schedule", 0.0)
        if result.detected and decide_ms > 0:
            weight = 1.0 if self._decide_ms == 0 else DECIDE_MS_WEIGHT
            self._decide_ms += weight * (decide_ms - self._decide_ms)
        kernel = branch_kernel(result.branch)
        trusted = self.accuracy.sees_the_scene(kernel, result.frame.index)
        self.content.update(result, trusted, self._size_ratio(kernel), kernel)
        self.accuracy.observe(result, self.content.last_count)
        self._source_rate.update(result.frame)
        plan = self._plan
        if plan is None or self.feedback is None:
            return
        if not self._warm:
            # The stream's first frame runs cold whatever the warm-up (idle
            # PETS: yolox_nano s320 11.7-17.7 ms against 6.9 predicted): it is
            # no evidence of contention, and no group of the plan.
            self._warm = True
            return
        tracker = tracker_key(self.branches[plan.index])
        switched = self._switched and not self._group_ms
        objects = self.content.last_count
        charge_frame(self.feedback, plan, result, objects, tracker, switched)
        self._group_ms.append(result.latency_ms)
        frames = int(self._si[plan.index])
        if len(self._group_ms) == frames:
            self.feedback.observe_group(
                np.mean(self._group_ms), plan.planned_mean_ms, frames
            )
