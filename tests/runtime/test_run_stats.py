"""`RunStats`: exact summaries of short runs, bounded memory over long ones."""

import dataclasses
import tracemalloc

import numpy as np
import pytest

from approxrt import stats as stats_module
from approxrt.bench.streams import latency_scores
from approxrt.branch import Branch
from approxrt.detections import Detections
from approxrt.frame import Frame
from approxrt.result import STAGES, FrameResult
from approxrt.stats import RunStats

BRANCH = Branch.parse("yolox_nano/s320/si4/kcf/ds2")
IMAGE = np.zeros((4, 4, 3), np.uint8)


def _results(count: int, seed: int = 0, sla_ms: float | None = 20.0):
    """Latency like a real run's: a detection frame every 4th, heavy-tailed."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        detected = index % 4 == 0
        infer = rng.lognormal(2.5, 0.4) if detected else 0.0
        track = rng.lognormal(0.5, 0.3)
        timings = dict.fromkeys(STAGES, 0.0)
        timings.update(infer=infer, track=track, associate=0.1 * detected)
        yield FrameResult(
            Frame(IMAGE, index, index / 10),
            Detections.empty(),
            BRANCH,
            detected,
            timings,
            infer + track + 0.1 * detected + 0.05,
            sla_ms=sla_ms,
        )


def _numpy_summary(results):
    """Latency per frame, and the mean of each whole group of 4 (a last group
    the run's end cut short is no group held to the SLA)."""
    latency = np.array([r.latency_ms for r in results])
    whole = latency[: len(latency) // 4 * 4]
    return latency, whole.reshape(-1, 4).mean(axis=1)


def test_a_short_run_is_summarised_exactly():
    results = list(_results(103))
    stats = RunStats()
    for result in results:
        stats.add(result)
    summary = stats.summary()
    latency, gof = _numpy_summary(results)
    assert summary.frames == 103 and summary.detection_frames == 26
    assert (summary.first_frame_index, summary.last_frame_index) == (0, 102)
    assert summary.latency_ms["p95"] == pytest.approx(np.percentile(latency, 95))
    assert summary.latency_ms["mean"] == pytest.approx(latency.mean())
    assert summary.gof_mean_latency_p95_ms == pytest.approx(np.percentile(gof, 95))
    assert summary.frame_sla_violation_rate == pytest.approx(np.mean(latency > 20))
    assert summary.gof_sla_violation_rate == pytest.approx(np.mean(gof > 20))
    assert summary.overhead_ms == pytest.approx(0.05)
    tracked = [r.timings_ms["track"] for r in results if not r.detected]
    assert summary.tracker_ms_per_tracking_frame == pytest.approx(np.mean(tracked))


def _summarise(results):
    stats = RunStats()
    for result in results:
        stats.add(result)
    return stats.summary()


def _groups_over(results) -> float:
    """``latency_scores``' share of groups over the SLA (the benchmarks')."""
    return latency_scores(
        [r.latency_ms for r in results],
        [r.detected for r in results],
        [str(r.branch) for r in results],
        [],
        20.0,
    )["groups_over_sla"]


def test_a_group_the_stream_end_cut_short_is_not_held_to_the_sla():
    whole = list(_results(12))
    # The run ends one frame into a fourth group: its detection frame alone,
    # 50 ms, would read as a group over the 20 ms SLA.
    cut = [*whole, dataclasses.replace(list(_results(13))[12], latency_ms=50.0)]
    _, gof = _numpy_summary(whole)
    expected = np.mean(gof > 20)
    assert _summarise(cut).gof_sla_violation_rate == pytest.approx(expected)
    assert _summarise(whole).gof_sla_violation_rate == pytest.approx(expected)
    assert _groups_over(cut) == pytest.approx(expected) == _groups_over(whole)
    # Whole, the same group counts: four frames with a mean over 20 ms.
    over = [dataclasses.replace(r, latency_ms=50.0) for r in _results(16)][12:]
    assert _summarise([*whole, *over]).gof_sla_violation_rate == pytest.approx(
        (np.sum(gof > 20) + 1) / 4
    )
    assert _groups_over([*whole, *over]) == pytest.approx((np.sum(gof > 20) + 1) / 4)
    # A run shorter than its one group is still judged.
    assert _summarise(cut[12:]).gof_sla_violation_rate == 1.0


def test_past_the_exact_window_percentiles_stay_within_the_sketch_accuracy(
    monkeypatch,
):
    monkeypatch.setattr(stats_module, "EXACT_QUANTILE_VALUES", 500)
    results = list(_results(6000, seed=1))
    stats = RunStats()
    for result in results:
        stats.add(result)
    summary = stats.summary()
    latency, gof = _numpy_summary(results)
    for q in (50, 95, 99):
        assert summary.latency_ms[f"p{q}"] == pytest.approx(
            np.percentile(latency, q), rel=0.02
        )
    assert summary.gof_mean_latency_p95_ms == pytest.approx(
        np.percentile(gof, 95), rel=0.02
    )
    assert summary.latency_ms["max"] == latency.max()
    assert summary.frames == 6000


def test_memory_stops_growing_with_the_number_of_frames(monkeypatch):
    monkeypatch.setattr(stats_module, "EXACT_QUANTILE_VALUES", 1000)
    stats = RunStats()
    results = _results(40_000, seed=2)
    for result in _take(results, 10_000):
        stats.add(result)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for result in _take(results, 30_000):
        stats.add(result)
    grown = sum(
        s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename")
    )
    tracemalloc.stop()
    # Growing lists would hold ~30,000 x 10 numbers (megabytes) more.
    assert grown < 64_000, grown
    assert stats.summary().frames == 40_000


def _take(iterator, count):
    for _ in range(count):
        yield next(iterator)
