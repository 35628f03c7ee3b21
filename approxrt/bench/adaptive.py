"""`approxrt bench adaptive`: policies side by side on the same streams and loads.

For every stream x contention scenario x SLA of a `Scenario`, in one run:

- **adaptive**: `approxrt.scheduler.policy.AdaptivePolicy` as `approxrt run
  --sla-ms` builds it;
- **approxdet-style**: the ablation (fixed 1.3 margin, content-agnostic
  accuracy, nearest profiled contention level, no online correction);
- **fixed**: the default branch and the other fixed baselines (each detector
  every frame at its default size), run once per scenario and held to each SLA;
- **best-static**: the most accurate candidate that meets the SLA on the idle
  device, chosen offline from measured latencies and accuracies;
- **oracle**: with hindsight, per group of frames, the most accurate candidate
  whose measured latency fits (`approxrt.bench.oracle`).

Every live policy sees the stream as a camera delivers it (``camera_fps``) and
the scenario's contention at the same moments of its stream.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from approxrt.adaptive import build_policy
from approxrt.bench import oracle as hindsight
from approxrt.bench.contention_driver import ContentionDriver
from approxrt.bench.scenario import ContentionSpec, Scenario
from approxrt.bench.streams import (
    BenchVideo,
    detections_table,
    latency_scores,
    load_video,
    paced_run,
    score,
)
from approxrt.branch import Branch
from approxrt.config import Config
from approxrt.evaluation.ap import evaluate_ap
from approxrt.evaluation.streaming import streaming_ap50
from approxrt.loop import FixedBranch
from approxrt.result import FrameResult
from approxrt.runner import prepare_kernel
from approxrt.scheduler.profile_models import ProfileModels
from approxrt.scheduler.simulator import oracle

ORACLE_SAMPLING = (1, 2, 4, 8, 20)


@dataclass
class BenchResult:
    """Rows of results.csv, and per-frame timelines for the plots."""

    rows: list[dict] = field(default_factory=list)
    timelines: dict[str, dict] = field(default_factory=dict)


def run_adaptive_benchmark(
    scenario: Scenario,
    base: Path,
    config: Config,
    models: ProfileModels,
    candidates: Sequence[Branch],
    progress: bool = True,
) -> BenchResult:
    result = BenchResult()
    generator = _generator(scenario, config.profile.cpu_backend)
    with generator as running:
        for spec in scenario.videos:
            video = load_video(spec, base)
            _bench_video(scenario, video, config, models, candidates, running, result)
    return result


def _generator(scenario: Scenario, cpu_backend: str):
    """The contention generator of the scenario's traces, loading the CPU as the
    profile's latency step did (``profile.cpu_backend``): the profile's levels
    then mean the same load as the trace's."""
    if not any(c.needs_generator for c in scenario.contention.values()):
        return contextlib.nullcontext()
    from approxrt.profiler.contention import ContentionGenerator

    generator = ContentionGenerator(settle_s=0.0, backend=cpu_backend)
    levels = [s.levels for spec in scenario.contention.values() for s in spec.steps]
    try:
        # The GPU load's CUDA start-up takes seconds: started lazily, a stream's
        # first GPU step would land that late in its run (or stall a recording).
        generator.start_loads(levels)
    except BaseException:
        generator.close()
        raise
    return generator


def _bench_video(scenario, video, config, models, candidates, generator, result):
    fixed = scenario.fixed_branches()
    seeding = fixed[0]
    finalists = oracle_candidates(models, candidates)
    needed = list(dict.fromkeys([*candidates, *fixed, *finalists]))
    kernel = prepare_kernel(
        config.replace(classes=video.classes), needed, video.frames[0].image
    )
    outputs = hindsight.offline_outputs(video, kernel, finalists)
    accuracy = hindsight.segment_accuracy(video, outputs, scenario.segment_frames)

    def record(spec):
        return hindsight.record_trace(
            video,
            kernel,
            finalists,
            seeding,
            lambda: ContentionDriver(spec, generator),
            scenario.camera_fps,
            accuracy,
        )

    idle = record(ContentionSpec())
    slas = {
        name: spec.slas_ms or scenario.slas_ms
        for name, spec in scenario.contention.items()
    }
    statics = {
        sla: hindsight.best_static(idle, outputs, video, finalists, sla)
        for sla in {s for values in slas.values() for s in values}
    }
    runs = sum(len(fixed) + 3 * len(values) for values in slas.values())
    bar = tqdm(total=runs, desc=f"{video.name}: runs", unit="run")
    for name, spec in scenario.contention.items():
        trace = record(spec)

        def paced(policy, sla_ms, spec=spec):
            time.sleep(scenario.settle_s)  # let the last run's load drain
            with ContentionDriver(spec, generator) as driver:
                run = paced_run(
                    video, kernel, policy, sla_ms, scenario.camera_fps, driver
                )
            bar.update()
            return run

        fixed_runs = {b: paced(FixedBranch(b), None) for b in fixed}
        for sla in slas[name]:
            row = {"video": video.name, "contention": name, "sla_ms": sla}
            live = {f"fixed:{b}": run for b, run in fixed_runs.items()}
            static = statics[sla]
            if static is not None:
                live[f"best-static:{static}"] = fixed_runs.get(static) or paced(
                    FixedBranch(static), sla
                )
            for label, ablation in (("adaptive", False), ("approxdet-style", True)):
                policy = build_policy(
                    models, candidates, config, approxdet_style=ablation
                )
                live[label] = paced(policy, sla)
            for label, run in live.items():
                scores = score(run, video, sla, scenario.camera_fps)
                result.rows.append({**row, "policy": label, **scores})
            simulation = oracle(trace, finalists, sla)
            result.rows.append(
                {
                    **row,
                    "policy": "oracle",
                    **_oracle_scores(
                        simulation, outputs, video, scenario.camera_fps, sla
                    ),
                }
            )
            result.timelines[f"{video.name}/{name}/{sla:g}"] = {
                label: _timeline(run.results) for label, run in live.items()
            } | {"contention": _steps(spec)}
    bar.close()


def oracle_candidates(
    models: ProfileModels, candidates: Sequence[Branch]
) -> list[Branch]:
    """Per kernel and sampling interval, the candidate the profile rates most
    accurate: what a per-group choice with hindsight picks among."""
    accuracy = models.accuracy_table.predict(candidates)
    best: dict[tuple, tuple[float, Branch]] = {}
    for branch, ap in zip(candidates, accuracy, strict=True):
        if branch.sampling_interval not in ORACLE_SAMPLING:
            continue
        key = (branch.kernel, branch.sampling_interval)
        if key not in best or ap > best[key][0]:
            best[key] = (float(ap), branch)
    return [branch for _, branch in best.values()]


def _oracle_scores(simulation, outputs, video: BenchVideo, camera_fps, sla_ms) -> dict:
    stitched = hindsight.stitched_outputs(simulation, outputs)
    table = detections_table(stitched)
    times = hindsight.compute_times(simulation.latency_ms)
    stream = streaming_ap50(
        video.gt, table, times, camera_fps, video.class_ids, queued=True
    )
    return {
        "ap50": evaluate_ap(video.gt, table, video.class_ids).mean_ap50,
        "streaming_ap50": stream.mean_ap50,
        **latency_scores(
            simulation.latency_ms,
            simulation.detected,
            [str(b) for b in simulation.branch],
            [],
            sla_ms,
        ),
        "dropped_frames": 0,
    }


def _timeline(results: Sequence[FrameResult]) -> dict:
    return {
        "t_s": [r.frame.arrival_s for r in results],
        "latency_ms": [r.latency_ms for r in results],
        "detected": [r.detected for r in results],
        "branch": [str(r.branch) for r in results],
    }


def _steps(spec) -> dict:
    return {
        "at_s": [s.at_s for s in spec.steps],
        "cpu": [s.cpu for s in spec.steps],
        "membw_mbps": [s.membw_mbps for s in spec.steps],
        "gpu_pct": [s.gpu_pct for s in spec.steps],
        "program": None
        if spec.program is None
        else [spec.program.at_s, spec.program.until_s],
    }
