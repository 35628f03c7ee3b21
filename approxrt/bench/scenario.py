"""The adaptive benchmark's scenario file: videos, SLAs, contention, baselines.

A YAML file (paths relative to it)::

    videos:
      - name: pets
        source: ../../../shared/data/video/pets09_s2l1/video.avi
        gt: ../../../shared/data/video/pets09_s2l1/gt/gt.txt   # MOT gt; a
        max_frames: 300                 # synthetic: source has exact truth
    camera_fps: 30                      # frames arrive at this rate (as a camera)
    slas_ms: [10, 20, 33.3]
    contention:
      none: {}
      cpu_steps: {steps: [{at_s: 0, cpu: 0}, {at_s: 2, cpu: 1}, {at_s: 4, cpu: 2}]}
      ffmpeg: {program: {command: [ffmpeg, ...], at_s: 2, until_s: 8}}
    default_branch: yolox_nano/s416/si1
    fixed: [nanodet_m/s416/si1, fastestdet/s352/si1]

Every run of a scenario sees the same contention at the same time of its
stream: ``steps`` set the generator's levels (cores kept busy, MB/s of memory
traffic) and ``program`` runs a real program the profile never saw.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from approxrt.branch import Branch
from approxrt.config import read_yaml_mapping, validation_problems
from approxrt.contention import ContentionLevels


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VideoSpec(_Strict):
    """A stream of the benchmark; ``gt`` is needed unless it is synthetic."""

    name: str
    source: str
    gt: str | None = None
    classes: list[str] = ["person"]
    max_frames: int | None = Field(default=None, gt=0)


class LevelStep(_Strict):
    at_s: float = Field(ge=0)
    cpu: float = 0.0
    membw_mbps: float = 0.0
    gpu_pct: float = 0.0

    @property
    def levels(self) -> ContentionLevels:
        return ContentionLevels(self.cpu, self.membw_mbps, self.gpu_pct)


class ProgramSpec(_Strict):
    """A real co-running program, started at ``at_s`` and ended at ``until_s``."""

    command: list[str] = Field(min_length=1)
    at_s: float = Field(default=0.0, ge=0)
    until_s: float | None = None


class ContentionSpec(_Strict):
    """Load during a stream; ``slas_ms`` replaces the scenario's SLAs for it
    (e.g. the idle device also at SLAs below the default branch's latency)."""

    steps: list[LevelStep] = []
    program: ProgramSpec | None = None
    slas_ms: list[float] | None = None

    @property
    def needs_generator(self) -> bool:
        return any(step.levels != ContentionLevels() for step in self.steps)


class Scenario(_Strict):
    videos: list[VideoSpec] = Field(min_length=1)
    slas_ms: list[float] = Field(min_length=1)
    contention: dict[str, ContentionSpec] = Field(min_length=1)
    camera_fps: float = Field(default=30.0, gt=0)
    default_branch: str = "yolox_nano/s416/si1"
    fixed: list[str] = []
    segment_frames: int = Field(default=30, gt=0)
    settle_s: float = Field(default=1.0, ge=0)

    def fixed_branches(self) -> list[Branch]:
        """The default branch first, then the other fixed baselines."""
        names = dict.fromkeys([self.default_branch, *self.fixed])
        return [Branch.parse(name) for name in names]


def load_scenario(path: str | Path) -> tuple[Scenario, Path]:
    """The scenario at ``path`` and the folder its relative paths start from.

    Raises:
        ValueError: naming the file and every field at fault.
    """
    path = Path(path)
    values = read_yaml_mapping(path, "scenario")
    try:
        scenario = Scenario(**values)
        scenario.fixed_branches()
    except ValidationError as error:
        raise ValueError(f"scenario {path}: {validation_problems(error)}") from None
    return scenario, path.parent


def resolve(base: Path, value: str) -> str:
    """``value`` relative to the scenario's folder, unless absolute or not a path."""
    if value.startswith("synthetic:") or "://" in value or Path(value).is_absolute():
        return value
    return str((base / value).resolve())
