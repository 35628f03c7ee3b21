"""The videos accuracy is profiled on: `VideoSpec` (a file with its truth, or a
synthetic scene) and the default synthetic scenes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path

from approxrt.evaluation import resolve_gt_path
from approxrt.profiler.detection_cache import is_synthetic
from approxrt.sources import SceneConfig, VideoFileSource

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# Default synthetic scenes: content the PETS video lacks (many small objects, few
# large ones, fast motion, objects entering and leaving, a crowd), so the accuracy
# model sees object count, size and speed vary independently. `synth_crowd` keeps
# 19-21 confident person boxes a frame (yolox_nano s640): without it the profile's
# densest segment held 11.9, and a crowd of 20 read as that (adaptive.md, stop 27). A
# gravel background hides most of such a crowd (6-7 boxes), so it has none.
SYNTHETIC_SCENES = {
    "synth_few_large_slow": "objects=3,size=150-220,speed=0.5-2,seed=11",
    "synth_many_small": "objects=20,size=50-80,speed=0.5-2.5,seed=12",
    "synth_fast": "objects=6,size=90-140,speed=8-14,seed=13,background=gravel",
    "synth_entering": "objects=8,size=60-120,speed=2-6,enter_rate=0.15,seed=14,"
    "background=brick",
    "synth_crowd": "objects=45,size=40-90,speed=2-5,bounce=false,enter_rate=0.5,"
    "seed=16",
}


@dataclass(frozen=True)
class VideoSpec:
    """A video to profile accuracy on.

    Attributes:
        name: its name in every table and its cache folder (letters, digits,
            ``.``, ``_``, ``-``).
        source: a video file path or a ``synthetic:key=value,...`` spec.
        truth: a MOT gt.txt, a sequence folder holding gt/gt.txt, or a COCO json;
            None for a synthetic scene (its exact ground truth) or an unlabelled
            video (the reference branch's output).
        gt_format: layout of a MOT gt.txt (``mot15``, ``mot16``, ...).
        max_frames: frames profiled at most (None: all).
    """

    name: str
    source: str
    truth: str | None = None
    gt_format: str = "mot15"
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"VideoSpec.name: expected letters, digits, '.', '_' or '-', got "
                f"{self.name!r}"
            )
        if self.max_frames is not None and (
            not isinstance(self.max_frames, int) or self.max_frames < 1
        ):
            raise ValueError(
                f"VideoSpec.max_frames of {self.name!r}: expected an int >= 1 or "
                f"None, got {self.max_frames!r}"
            )

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        truth: str | Path | None = None,
        name: str | None = None,
        max_frames: int | None = None,
    ) -> VideoSpec:
        """A video file; a sequence folder's ``gt/gt.txt`` beside it is its truth.

        The name defaults to the file's stem, or to its folder's name when the
        file is a sequence folder's ``video.*`` (the MOT and `scene_io` layout).
        """
        path = Path(path)
        beside = path.parent / "gt" / "gt.txt"
        if truth is None and beside.is_file():
            truth = beside
        if name is None:
            name = path.parent.name if path.stem == "video" else path.stem
        return cls(name, str(path), str(truth) if truth else None, "mot15", max_frames)

    @classmethod
    def parse(cls, text: str, max_frames: int | None = None) -> VideoSpec:
        """A video from the command line: ``[NAME=]PATH`` or ``[NAME=]synthetic:...``.

        Without a name, a path is named as in `from_path` and a synthetic spec
        ``synthetic_<first 8 hex digits of its SHA-256>``.
        """
        name, sep, rest = text.partition("=")
        # A NAME has no "/" or ":", so "dir/a=b.avi" or "synthetic:x=1" is no name.
        if sep and _NAME.match(name):
            return replace(cls._unnamed(rest, max_frames), name=name)
        return cls._unnamed(text, max_frames)

    @classmethod
    def _unnamed(cls, source: str, max_frames: int | None) -> VideoSpec:
        if not is_synthetic(source):
            return cls.from_path(source, max_frames=max_frames)
        digest = hashlib.sha256(source.encode()).hexdigest()[:8]
        return cls(f"synthetic_{digest}", source, max_frames=max_frames)

    @property
    def synthetic(self) -> bool:
        return is_synthetic(self.source)

    def check(self) -> None:
        """Raise a ValueError naming this video when its source or truth is bad."""
        if not self.synthetic and not Path(self.source).is_file():
            raise ValueError(
                f"video {self.name!r}: source {self.source!r} is not a file (expected "
                "a video file or a 'synthetic:key=value,...' spec)"
            )
        try:
            if self.synthetic:
                SceneConfig.from_spec(self.source)
            else:
                # Opening decodes the first frame: a file that is no video fails now.
                VideoFileSource(self.source).close()
        except ValueError as error:
            raise ValueError(f"video {self.name!r}: {error}") from None
        if self.truth is not None:
            try:
                resolve_gt_path(self.truth)
            except ValueError as error:
                raise ValueError(f"video {self.name!r}: truth: {error}") from None

    def __str__(self) -> str:
        return f"{self.name}={self.source}"


def synthetic_videos(
    frames: int = 200, width: int = 640, height: int = 480
) -> list[VideoSpec]:
    """The default synthetic scenes (`SYNTHETIC_SCENES`), person only."""
    return [
        VideoSpec(
            name,
            f"synthetic:{spec},frames={frames},width={width},height={height}",
        )
        for name, spec in SYNTHETIC_SCENES.items()
    ]
