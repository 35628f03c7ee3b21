"""Contention traces: levels that change at given times, read from CSV or YAML.

A trace is a list of steps, each a time ``at_s`` (seconds from the start of the
play) and the levels that hold from then until the next step. The trace ends at
its last step, whose levels are set on arrival (leave them blank or 0 to end
idle); a play may hold the last step longer (``approxrt contend --duration``).
Times must increase; levels may repeat. Blank or missing levels are 0.

CSV, with a header naming ``at_s`` and any of the level columns::

    at_s,cpu,membw_mbps,gpu_pct
    0,1,0,0
    30,1.5,2000,0
    60,,,

YAML, a list of mappings with the same keys::

    - {at_s: 0, cpu: 1}
    - {at_s: 30, cpu: 1.5, membw_mbps: 2000}
    - {at_s: 60}
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from approxrt.contention import ContentionLevels

LEVEL_KEYS = tuple(f.name for f in fields(ContentionLevels))
KEYS = ("at_s", *LEVEL_KEYS)


@dataclass(frozen=True)
class TraceStep:
    """Levels that hold from `at_s` seconds after the start until the next step."""

    at_s: float
    levels: ContentionLevels


@dataclass(frozen=True)
class ContentionTrace:
    """Steps in increasing time; see the module docstring for the file formats."""

    steps: tuple[TraceStep, ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("ContentionTrace.steps: expected at least one step")
        for earlier, later in zip(self.steps, self.steps[1:], strict=False):
            if later.at_s <= earlier.at_s:
                raise ValueError(
                    f"ContentionTrace.steps: times must increase, got at_s="
                    f"{later.at_s:g} after at_s={earlier.at_s:g}"
                )

    @classmethod
    def constant(cls, levels: ContentionLevels) -> ContentionTrace:
        """One step at time 0 (held as long as the play's `until_s`)."""
        return cls((TraceStep(0.0, levels),))

    @property
    def end_s(self) -> float:
        return self.steps[-1].at_s

    def spans(self, end_s: float) -> list[tuple[TraceStep, float]]:
        """Each step with the time it gives way, for a play that ends at `end_s`."""
        ends = [step.at_s for step in self.steps[1:]] + [end_s]
        return [
            (step, min(step_end_s, end_s))
            for step, step_end_s in zip(self.steps, ends, strict=True)
            if step.at_s <= end_s
        ]


def load_trace(path: str | Path) -> ContentionTrace:
    """Read a trace from a ``.csv`` or ``.yaml``/``.yml`` file.

    Raises:
        ValueError: naming the file and line of the first bad step.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix in (".yaml", ".yml"):
        rows = _yaml_rows(path)
    else:
        raise ValueError(
            f"contention trace {path}: expected a .csv, .yaml or .yml file, "
            f"got {suffix or 'no suffix'!r}"
        )
    steps = [_step(values, f"{path}:{line}") for line, values in rows]
    if not steps:
        raise ValueError(f"contention trace {path}: no steps in the file")
    for (line, _), earlier, later in zip(rows[1:], steps, steps[1:], strict=False):
        if later.at_s <= earlier.at_s:
            raise ValueError(
                f"{path}:{line}: at_s={later.at_s:g} comes after at_s="
                f"{earlier.at_s:g}; times must increase"
            )
    return ContentionTrace(tuple(steps))


def _csv_rows(path: Path) -> list[tuple[int, dict]]:
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        unknown = set(reader.fieldnames or ()) - set(KEYS)
        if "at_s" not in (reader.fieldnames or ()) or unknown:
            raise ValueError(
                f"{path}:1: header {','.join(reader.fieldnames or [])!r} must name "
                f"at_s and any of {', '.join(LEVEL_KEYS)}"
                + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
            )
        return [(reader.line_num, row) for row in reader]


def _yaml_rows(path: Path) -> list[tuple[int, dict]]:
    """Each list item with its line number (from the YAML node, 1-based)."""
    try:
        node = yaml.compose(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"contention trace {path}: not valid YAML: {error}") from None
    if not isinstance(node, yaml.SequenceNode):
        raise ValueError(
            f"{path}: expected a list of steps like '- {{at_s: 0, cpu: 1}}'"
        )
    rows = []
    for item in node.value:
        line = item.start_mark.line + 1
        values = yaml.safe_load(yaml.serialize(item))
        if not isinstance(values, dict):
            raise ValueError(
                f"{path}:{line}: expected a mapping like {{at_s: 0, cpu: 1}}"
            )
        rows.append((line, values))
    return rows


def _number(values: dict, key: str, where: str) -> float:
    value = values.get(key)
    if value is None or value == "":
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{where}: {key} must be a finite number >= 0, got {value!r}")
    return number


def _step(values: dict, where: str) -> TraceStep:
    unknown = set(values) - set(KEYS)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"expected {', '.join(KEYS)}"
        )
    if values.get("at_s") in (None, ""):
        raise ValueError(f"{where}: at_s is missing; every step needs its time")
    numbers = {key: _number(values, key, where) for key in KEYS}
    try:
        levels = ContentionLevels(**{key: numbers[key] for key in LEVEL_KEYS})
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    return TraceStep(numbers["at_s"], levels)
