"""Contention traces: files read into steps, bad files named by line, plays in order."""

import time
from itertools import groupby

import pytest

from approxrt.contention import ContentionLevels
from approxrt.profiler.contention import (
    ContentionGenerator,
    ContentionTrace,
    TraceStep,
    load_trace,
)

EXPECTED = ContentionTrace(
    (
        TraceStep(0.0, ContentionLevels(cpu=1)),
        TraceStep(30.0, ContentionLevels(cpu=1.5, membw_mbps=2000)),
        TraceStep(45.5, ContentionLevels(cpu=1.5, membw_mbps=2000)),
        TraceStep(60.0, ContentionLevels()),
    )
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_csv_trace_reads_into_steps_with_blank_levels_as_zero(tmp_path):
    path = write(
        tmp_path,
        "trace.csv",
        "at_s,cpu,membw_mbps,gpu_pct\n0,1,,\n30,1.5,2000,0\n45.5,1.5,2000,0\n60,,,\n",
    )
    assert load_trace(path) == EXPECTED


def test_a_yaml_trace_reads_into_the_same_steps(tmp_path):
    path = write(
        tmp_path,
        "trace.yaml",
        "- {at_s: 0, cpu: 1}\n"
        "- {at_s: 30, cpu: 1.5, membw_mbps: 2000}\n"
        "- at_s: 45.5\n  cpu: 1.5\n  membw_mbps: 2000\n"
        "- {at_s: 60}\n",
    )
    assert load_trace(path) == EXPECTED


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("t.csv", "at_s,cpu\n0,1\n5,2\n5,1\n", r"t\.csv:4: at_s=5 comes after at_s=5"),
        ("t.csv", "at_s,cpu\n0,1\n9,2\n3,1\n", r"t\.csv:4: .*times must increase"),
        ("t.csv", "at_s,cpu,disk\n0,1,2\n", r"t\.csv:1: .*unknown: disk"),
        ("t.csv", "cpu\n1\n", r"t\.csv:1: header 'cpu' must name at_s"),
        ("t.csv", "at_s,cpu\n0,1\n4,lots\n", r"t\.csv:3: cpu must be a number"),
        ("t.csv", "at_s,cpu\n0,-1\n", r"t\.csv:2: cpu must be a finite number >= 0"),
        ("t.csv", "at_s,gpu_pct\n0,150\n", r"t\.csv:2: .*gpu_pct: expected 0\.\.100"),
        ("t.csv", "at_s,cpu\n,1\n", r"t\.csv:2: at_s is missing"),
        ("t.csv", "at_s,cpu\n", r"no steps"),
        ("t.yaml", "- {at_s: 0}\n- {at_s: 2, cpu: 1}\n- {at_s: 1}\n", r"t\.yaml:3: "),
        ("t.yaml", "- {at_s: 0}\n- {at_s: 1, cores: 2}\n", r"t\.yaml:2: unknown key"),
        ("t.yaml", "at_s: 0\n", r"expected a list of steps"),
        ("t.yaml", "- 3\n", r"t\.yaml:1: expected a mapping"),
        ("t.yaml", "- {at_s: 0\n", r"not valid YAML"),
        ("t.json", "[]", r"expected a \.csv, \.yaml or \.yml file"),
    ],
)
def test_bad_trace_files_are_rejected_naming_the_line(tmp_path, name, text, match):
    with pytest.raises(ValueError, match=match):
        load_trace(write(tmp_path, name, text))


def test_a_trace_built_in_code_must_have_increasing_times():
    with pytest.raises(ValueError, match="times must increase"):
        ContentionTrace(
            (TraceStep(1, ContentionLevels()), TraceStep(1, ContentionLevels()))
        )
    with pytest.raises(ValueError, match="at least one step"):
        ContentionTrace(())


def test_spans_hold_each_step_until_the_next_and_cut_at_the_end():
    spans = EXPECTED.spans(EXPECTED.end_s)
    assert [(step.at_s, end_s) for step, end_s in spans] == [
        (0, 30),
        (30, 45.5),
        (45.5, 60),
        (60, 60),
    ]
    assert [(step.at_s, end) for step, end in EXPECTED.spans(40)] == [(0, 30), (30, 40)]
    held = ContentionTrace.constant(ContentionLevels(cpu=1)).spans(90)
    assert [(step.at_s, end_s) for step, end_s in held] == [(0, 90)]


def test_a_trace_plays_its_steps_in_order_at_their_times():
    trace = ContentionTrace(
        (
            TraceStep(0.0, ContentionLevels(cpu=0.5)),
            TraceStep(1.2, ContentionLevels(cpu=1, membw_mbps=400)),
            TraceStep(2.4, ContentionLevels(cpu=0.5)),
            TraceStep(3.2, ContentionLevels()),
        )
    )
    with ContentionGenerator(settle_s=0.2, backend="builtin") as generator:
        start = time.monotonic()
        played = list(generator.play(trace, interval_s=0.5))
        took_s = time.monotonic() - start
        assert generator.asked == ContentionLevels()
    times = [at_s for at_s, _ in played]
    asked = [reading.asked for _, reading in played]
    # Each step yields readings after it settles, in the order of the trace.
    assert [step.levels for step in trace.steps[:3]] == [k for k, _ in groupby(asked)]
    assert times == sorted(times) and 3.1 <= times[-1] <= 3.5
    for at_s, reading in played:  # each window lies inside the step it reports
        window_start_s = at_s - reading.window_s
        step = [s for s in trace.steps if s.at_s <= window_start_s][-1]
        assert reading.asked == step.levels
    # Calibrating the memory load happens before the trace's clock starts.
    assert took_s > times[-1]
    first_step = [r for _, r in played if r.asked == trace.steps[0].levels]
    second_step = [r for _, r in played if r.asked == trace.steps[1].levels]
    # Measured follows asked (loosely: 0.5 s windows on a shared machine).
    assert max(r.cpu for r in first_step) < min(r.cpu for r in second_step)
    assert all(r.membw_mbps == 0 for r in first_step)
    assert all(300 <= r.membw_mbps <= 500 for r in second_step)


def test_play_can_hold_the_last_step_past_the_trace_end():
    trace = ContentionTrace.constant(ContentionLevels(cpu=0.5))
    with ContentionGenerator(settle_s=0.1, backend="builtin") as generator:
        played = list(generator.play(trace, interval_s=0.3, until_s=1.0))
    assert len(played) == 3 and 0.95 <= played[-1][0] <= 1.3
