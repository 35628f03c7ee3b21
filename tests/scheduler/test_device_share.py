"""The joint plan of a device's streams (`DeviceShare`), on hand-made numbers
whose answers are worked out by hand or by trying every plan."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hand_profile import profile_models, space

from approxrt.decision import DecisionContext
from approxrt.detections import Detections
from approxrt.frame import Frame
from approxrt.result import FrameResult
from approxrt.scheduler.device_share import (
    DeviceShare,
    StreamDemand,
    _Problem,
    plan_streams,
)
from approxrt.scheduler.feedback import LatencyFeedback
from approxrt.scheduler.policy import AdaptivePolicy

MS = np.array([5.0, 10.0, 20.0, 40.0])
AP = np.array([0.5, 0.6, 0.7, 0.8])


def demand(sla_ms, fps=10.0, ms=MS, ap=AP) -> StreamDemand:
    return StreamDemand(ms, ms, ap, sla_ms, fps)  # no margin: planned = expected


def shared_ms(plan, demands) -> dict[str, float]:
    return {i: demands[i].planned_ms[plan[i].index] * plan[i].slowdown for i in demands}


def test_a_stream_alone_gets_its_most_accurate_branch_that_fits():
    plan = plan_streams({"a": demand(25.0)})["a"]
    assert (plan.index, plan.slowdown, plan.sla_ms) == (2, 1.0, 25.0)
    assert plan.ceiling_ms == 20.0  # not the top branch: the plan bounds it


def test_two_streams_that_fit_alone_but_not_together_are_both_kept_inside():
    # Alone, 40 ms fits 45. Together at 10 fps, a frame starting while the
    # other's runs waits half of it: at (40, 40) T = 40 + 0.5 * (T / 100) * 40,
    # so T = 50 for both. (40, 20) takes 42.9 and 28.6 ms, both fit: AP 1.5,
    # more than (20, 20) at 1.4.
    demands = {"a": demand(45.0), "b": demand(45.0)}
    plan = plan_streams(demands)
    assert sorted(plan[i].index for i in "ab") == [2, 3]
    assert sorted(shared_ms(plan, demands).values()) == pytest.approx(
        [28.571, 42.857], abs=1e-3
    )


def test_a_stream_that_cannot_fit_runs_its_fastest_and_holds_no_one_back():
    demands = {"a": demand(45.0), "hopeless": demand(1.0)}
    plan = plan_streams(demands)
    assert plan["hopeless"].index == 0
    # a keeps 40 ms: it waits for half the 5 ms stream's frames now and then.
    assert plan["a"].index == 3
    assert shared_ms(plan, demands)["a"] == pytest.approx(40.33, abs=0.01)


def test_a_stream_whose_frame_rate_is_unknown_counts_as_always_busy():
    demands = {"a": demand(45.0, fps=None), "b": demand(45.0, fps=None)}
    plan = plan_streams(demands)
    ms = {i: MS[plan[i].index] for i in "ab"}
    for me, other in ("ab", "ba"):
        assert plan[me].slowdown == pytest.approx(1 + 0.5 * ms[other] / ms[me])
    assert all(t <= 45.0 for t in shared_ms(plan, demands).values())


def test_the_plan_is_near_the_best_of_every_plan_on_random_devices():
    """Two to four streams of eight branches: the plan is compared with trying
    every combination under the same model. On 300 such devices when written:
    a plan that fits on all 293 where one exists, 0.015 AP50 per stream below
    the best on average, the best itself on 67%."""
    rng = np.random.default_rng(0)
    feasible, found, gaps = 0, 0, []
    for _ in range(150):
        demands = {
            f"s{k}": demand(
                float(rng.uniform(15, 80)),
                float(rng.choice([5, 10, 15, 30])),
                np.sort(rng.uniform(3, 60, 8)),
                np.sort(rng.uniform(0.3, 0.9, 8)),
            )
            for k in range(rng.integers(2, 5))
        }
        ids = sorted(demands)
        problem = _Problem([demands[i] for i in ids], 0.5)
        every = np.array(list(itertools.product(*map(range, problem.sizes))))
        fits = problem.excess(every) == 0
        if not fits.any():
            continue
        feasible += 1
        plan = plan_streams(demands)
        chosen = np.array(
            [list(problem.frontiers[k]).index(plan[i].index) for k, i in enumerate(ids)]
        )
        if problem.excess(chosen[None])[0] == 0:
            found += 1
            best = problem.accuracy(every[fits]).max()
            gaps.append((best - problem.accuracy(chosen[None])[0]) / len(ids))
    assert feasible > 100
    assert found >= 0.97 * feasible
    assert np.mean(gaps) <= 0.02


def test_a_stream_that_leaves_frees_its_time_at_once():
    share = DeviceShare(replan_s=60.0)
    share.allot("a", demand(45.0))
    assert share.allot("b", demand(45.0)).slowdown > 1.0
    share.leave("a")
    alone = share.allot("b", demand(45.0))
    assert (alone.slowdown, alone.index) == (1.0, 3)
    assert share.streams == ["b"]


def _frame(index: int) -> Frame:
    return Frame(np.zeros((360, 480, 3), np.uint8), index, index / 30.0)


def _result(decision, frame, latency_ms) -> FrameResult:
    return FrameResult(
        frame=frame,
        detections=Detections.empty(),
        branch=decision.branch,
        detected=True,
        timings_ms={"detect": latency_ms},
        latency_ms=latency_ms,
    )


def test_streams_sharing_a_device_plan_cheaper_branches_and_learn_no_false_slowdown():
    """Two schedulers on one share, over detection-only branches, frames at
    30 fps, planned with the starting margin of 1.15. Alone, s416 (8.3 ms, 9.5
    planned) fits a 10.5 ms SLA. Beside each other at s416 each frame waits for
    half of the other's now and then: 10.9 ms planned, too much; a switch up to
    s416 beside s320 needs 10.6 with the 5% switching headroom. So both run
    s320. Frames that take what was planned (the siblings' slowdown included)
    leave the correction at 1: the slowdown is not counted again as unexplained
    contention."""
    sla_ms = 10.5
    every_frame = [b for b in space() if b.sampling_interval == 1]
    share = DeviceShare(replan_s=0.0)
    policies = {
        name: AdaptivePolicy(
            profile_models(),
            every_frame,
            feedback=LatencyFeedback(),
            share=share if name != "alone" else None,
            stream_id=name,
        )
        for name in ["alone", "a", "b"]
    }
    running = dict.fromkeys(policies)
    for index in range(8):
        frame = _frame(index)
        for name, policy in policies.items():
            context = DecisionContext(frame, sla_ms, running[name], ())
            decision = policy.decide(context)
            running[name] = decision.branch
            policy.observe(_result(decision, frame, decision.latency_ms))
            if name != "alone":
                assert decision.latency_ms <= sla_ms
    assert {name: str(branch) for name, branch in running.items()} == {
        "alone": "yolox_nano/s416/si1",
        "a": "yolox_nano/s320/si1",
        "b": "yolox_nano/s320/si1",
    }
    assert decision.details["shared_slowdown"] == pytest.approx(1.086, abs=1e-3)
    factors = [policies[name].feedback.factor("detect") for name in "ab"]
    assert factors == pytest.approx([1.0, 1.0])
