"""`SyntheticScene`: a generated video with exact ground truth.

Real photographs of COCO objects (see `approxrt.sources.cutouts`) move in straight
lines over a textured background. Everything is drawn from one seed, so a scene is
the same on every machine. The knobs change exactly the content features the
scheduler reads: object count, object size and speed, and how often the count
changes (objects entering through the borders and leaving through them).

Ground truth: one box per object with any visible pixel, ``tracker_id`` = the
object's identity (1, 2, ...), ``class_id`` = its COCO class, and a
``data["visibility"]`` column: the share of the object's full box that is visible
in this frame, after clipping to the frame and after later-drawn objects cover it
(objects are drawn in order of identity, so a newer object hides an older one).
Boxes are clipped to the frame. The writers in `approxrt.sources.scene_io` mark
boxes less than ``min_visibility`` visible as "do not score" rather than drop them.

    scene = SyntheticScene(SceneConfig(objects=5, size_px=(60, 120), seed=0))
    image, truth = scene.frame(0), scene.ground_truth(0)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from approxrt.detections import Detections
from approxrt.frame import Frame
from approxrt.sources import scene_io
from approxrt.sources.base import Source, timed_ms
from approxrt.sources.cutouts import Cutout, load_background, resized_cutout
from approxrt.sources.scene_config import SceneConfig


@dataclass
class _Track:
    """One object's whole life: its look and its top-left corner per frame."""

    identity: int
    cutout: str
    class_id: int
    flip: bool
    width: int
    height: int
    first_frame: int
    corners: list[tuple[float, float]] = field(default_factory=list)

    def corner_at(self, index: int) -> tuple[int, int] | None:
        offset = index - self.first_frame
        if 0 <= offset < len(self.corners):
            x, y = self.corners[offset]
            return math.floor(x + 0.5), math.floor(y + 0.5)
        return None


class SyntheticScene:
    """A deterministic generated video with exact ground truth.

    Args:
        config: what to generate; see `SceneConfig` for every knob.

    All object paths are simulated here (cheap: a few numbers per object per
    frame); frames and ground truth are rendered on demand, in any order.
    """

    def __init__(self, config: SceneConfig | None = None) -> None:
        self.config = config or SceneConfig()
        self.cutouts = self.config.cutout_pool
        self.background = load_background(
            self.config.background, self.config.width, self.config.height
        )
        self.tracks = _simulate(self.config, self.cutouts)

    @classmethod
    def from_spec(cls, spec: str) -> SyntheticScene:
        """A scene from ``"synthetic:objects=5,size=60-120,..."``; see `SceneConfig`."""
        return cls(SceneConfig.from_spec(spec))

    def __len__(self) -> int:
        return self.config.frames

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as ``(height, width, 3) uint8`` BGR."""
        self._check_index(index)
        image = self.background.copy()
        for track, (x1, y1, x2, y2) in self._placed(index):
            patch = resized_cutout(track.cutout, track.width, track.height, track.flip)
            x, y = track.corner_at(index)
            image[y1:y2, x1:x2] = patch[y1 - y : y2 - y, x1 - x : x2 - x]
        if self.config.noise > 0:
            rng = np.random.default_rng((self.config.seed, index))
            noise = rng.normal(0.0, self.config.noise, image.shape)
            image = np.clip(image + noise, 0, 255).astype(np.uint8)
        return image

    def ground_truth(self, index: int) -> Detections:
        """Frame ``index``'s objects with a ``data["visibility"]`` column (0..1]."""
        self._check_index(index)
        placed = self._placed(index)
        if not placed:
            empty = Detections.empty()
            empty.data["visibility"] = np.zeros(0, np.float32)
            return empty
        # Paint each object's position into an owner map in drawing order; what an
        # object still owns afterwards is what the viewer sees of it.
        owner = np.full((self.config.height, self.config.width), -1, np.int32)
        for slot, (_, (x1, y1, x2, y2)) in enumerate(placed):
            owner[y1:y2, x1:x2] = slot
        visible_px = np.bincount(owner.ravel() + 1, minlength=len(placed) + 1)[1:]
        full_px = np.array([t.width * t.height for t, _ in placed], np.float32)
        visibility = (visible_px / full_px).astype(np.float32)
        keep = visibility > 0
        return Detections(
            np.array([box for _, box in placed], np.float32),
            np.ones(len(placed), np.float32),
            np.array([t.class_id for t, _ in placed], np.int64),
            np.array([t.identity for t, _ in placed], np.int64),
            {"visibility": visibility},
        )[keep]

    def frames(self) -> Iterator[tuple[int, np.ndarray, Detections]]:
        """``(index, image, ground_truth)`` for every frame in order."""
        for index in range(len(self)):
            yield index, self.frame(index), self.ground_truth(index)

    def write(self, directory: str | Path, **options) -> dict[str, Path]:
        """Video, MOT gt, COCO gt and seqinfo.ini into ``directory``; see `scene_io`."""
        return scene_io.write_scene(self, directory, **options)

    def write_video(self, path: str | Path, codec: str = "mp4v") -> Path:
        """Every frame into a video file (``mp4v`` or ``MJPG``)."""
        return scene_io.write_video(self, path, codec)

    def write_mot_gt(
        self, path: str | Path, min_visibility: float = scene_io.DEFAULT_MIN_VISIBILITY
    ) -> Path:
        """MOTChallenge gt ``frame,id,x,y,w,h,flag,-1,-1,-1``; flag 0 = hidden."""
        return scene_io.write_mot_gt(self, path, min_visibility)

    def write_coco_gt(
        self, path: str | Path, min_visibility: float = scene_io.DEFAULT_MIN_VISIBILITY
    ) -> Path:
        """COCO ground-truth json; hidden boxes as ``iscrowd`` ignore regions."""
        return scene_io.write_coco_gt(self, path, min_visibility)

    def _placed(self, index: int) -> list[tuple[_Track, tuple[int, int, int, int]]]:
        """Tracks in the frame, bottom first, with their box clipped to the frame."""
        width, height = self.config.width, self.config.height
        placed = []
        for track in self.tracks:
            corner = track.corner_at(index)
            if corner is None:
                continue
            x, y = corner
            x1, y1 = max(x, 0), max(y, 0)
            x2, y2 = min(x + track.width, width), min(y + track.height, height)
            if x2 > x1 and y2 > y1:
                placed.append((track, (x1, y1, x2, y2)))
        return placed

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.config.frames:
            raise IndexError(f"frame index {index} outside 0..{self.config.frames - 1}")


class SyntheticSource(Source):
    """A `SyntheticScene` read as a source; ``decode_ms`` is the render time.

    Args:
        scene: the scene, or a `SceneConfig`, or a ``"synthetic:..."`` spec.
        source_id: name carried by every frame; defaults to ``"synthetic"``.
    """

    def __init__(
        self,
        scene: SyntheticScene | SceneConfig | str | None = None,
        *,
        source_id: str | None = None,
    ) -> None:
        super().__init__(source_id if source_id is not None else "synthetic")
        if isinstance(scene, str):
            scene = SyntheticScene.from_spec(scene)
        elif scene is None or isinstance(scene, SceneConfig):
            scene = SyntheticScene(scene)
        self.scene = scene
        self.fps = scene.config.fps
        self.frame_count = scene.config.frames
        self.width, self.height = scene.config.width, scene.config.height
        self._position = 0

    def _read_next(self) -> Frame | None:
        if self._position >= self.scene.config.frames:
            return None
        index = self._position
        self._position += 1
        start_s = time.perf_counter()
        image = self.scene.frame(index)
        return Frame(image, index, index / self.fps, self.source_id, timed_ms(start_s))

    def _release(self) -> None:
        """Nothing to free: frames are rendered on demand."""


def _simulate(config: SceneConfig, cutouts: list[Cutout]) -> list[_Track]:
    rng = np.random.default_rng(config.seed)
    tracks: list[_Track] = []
    alive: list[tuple[_Track, np.ndarray, np.ndarray]] = []
    for _ in range(config.objects):
        alive.append(_spawn(config, cutouts, rng, len(tracks) + 1, 0, inside=True))
        tracks.append(alive[-1][0])
    for index in range(config.frames):
        entering = config.enter_until is None or index < config.enter_until
        if index > 0 and entering:
            for _ in range(rng.poisson(config.enter_rate)):
                alive.append(
                    _spawn(config, cutouts, rng, len(tracks) + 1, index, inside=False)
                )
                tracks.append(alive[-1][0])
        still_alive = []
        for track, position, velocity in alive:
            track.corners.append((float(position[0]), float(position[1])))
            position += velocity
            if config.bounces:
                _bounce(config, track, position, velocity)
            elif _gone(config, track, position, velocity):
                continue
            still_alive.append((track, position, velocity))
        alive = still_alive
    return tracks


def _spawn(
    config: SceneConfig,
    cutouts: list[Cutout],
    rng: np.random.Generator,
    identity: int,
    first_frame: int,
    inside: bool,
) -> tuple[_Track, np.ndarray, np.ndarray]:
    cutout = cutouts[rng.integers(len(cutouts))]
    longer = int(rng.integers(config.size_px[0], config.size_px[1] + 1))
    if cutout.aspect >= 1:
        width, height = longer, max(1, round(longer / cutout.aspect))
    else:
        width, height = max(1, round(longer * cutout.aspect)), longer
    track = _Track(
        identity,
        cutout.name,
        cutout.class_id,
        bool(rng.integers(2)),
        width,
        height,
        first_frame,
    )
    speed = rng.uniform(*config.speed_px)
    if inside:
        position = np.array(
            [
                rng.uniform(0, config.width - width),
                rng.uniform(0, config.height - height),
            ]
        )
        angle = rng.uniform(0, 2 * math.pi)
    else:
        position, angle = _entry(config, width, height, rng)
    # Objects that must cross the frame need some speed, or they never arrive.
    if not inside:
        speed = max(speed, 0.5)
    velocity = speed * np.array([math.cos(angle), math.sin(angle)])
    return track, position, velocity


def _entry(
    config: SceneConfig, width: int, height: int, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """A corner just outside one border, and a heading within 60° of inward."""
    side = int(rng.integers(4))
    spread = rng.uniform(-math.pi / 3, math.pi / 3)
    x = rng.uniform(0, config.width - width)
    y = rng.uniform(0, config.height - height)
    if side == 0:  # left
        return np.array([-width + 1.0, y]), spread
    if side == 1:  # right
        return np.array([config.width - 1.0, y]), math.pi + spread
    if side == 2:  # top
        return np.array([x, -height + 1.0]), math.pi / 2 + spread
    return np.array([x, config.height - 1.0]), -math.pi / 2 + spread


def _bounce(
    config: SceneConfig, track: _Track, position: np.ndarray, velocity: np.ndarray
) -> None:
    limits = (config.width - track.width, config.height - track.height)
    for axis in (0, 1):
        if position[axis] < 0:
            position[axis] = -position[axis]
            velocity[axis] = abs(velocity[axis])
        elif position[axis] > limits[axis]:
            position[axis] = 2 * limits[axis] - position[axis]
            velocity[axis] = -abs(velocity[axis])
        position[axis] = min(max(position[axis], 0.0), float(limits[axis]))


def _gone(
    config: SceneConfig, track: _Track, position: np.ndarray, velocity: np.ndarray
) -> bool:
    """Whether the object is wholly outside and moving away (never coming back)."""
    x, y = position
    return bool(
        (x + track.width <= 0 and velocity[0] <= 0)
        or (x >= config.width and velocity[0] >= 0)
        or (y + track.height <= 0 and velocity[1] <= 0)
        or (y >= config.height and velocity[1] >= 0)
    )
