"""The frames latency is measured on: real video frames and synthetic scenes.

- Detector cells run on the video's first frames resized to each profiled frame
  size (PETS is 480x360, so its 1280x720 frames are upscaled real frames): the
  content stays the same across sizes, so the size's own cost shows alone. With
  no video they run on a synthetic stand-in scene of each size.
- Tracker and association cells run on synthetic scenes, whose ground truth gives
  exact object counts and sizes; the boxes seed the trackers.
- Branch validation runs on the video at its own size and on a crowded synthetic
  scene at the largest profiled size, where tracking dominates.

Frames are rendered once and kept: scenes are cheap to keep for a few frames and
slow to render again under contention.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2

from approxrt.detections import Detections
from approxrt.frame import Frame
from approxrt.sources import open_source
from approxrt.sources.scene_config import SceneConfig
from approxrt.sources.synthetic import SyntheticScene

# Distinct frames a detector cell cycles through (detections vary with content).
DETECTOR_IMAGES = 5
# Object sizes of `profile.tracker_object_sizes_px` are given at this frame size.
REFERENCE_WH = (1280, 720)
# A crowd: 60 people of 80-130 px (at 1280x720) on a plain ground. The 14
# kernels of YOLOX-nano, NanoDet-m and FastestDet seed 16 trackers on average
# there (0 at YOLOX-nano 224, 34 at NanoDet-m 512); larger people are found no
# more often and cost KCF and MOSSE far more per object (their cost grows with
# the box's area), which the validation's time budget cannot afford.
CROWD_OBJECTS = 60
CROWD_SIZE_PX = (80, 130)
CROWD_SEED = 3


def scaled_size_px(size_px: int, width: int, height: int) -> int:
    """``size_px`` (given at 1280x720) at a ``width`` x ``height`` frame."""
    scale = min(width / REFERENCE_WH[0], height / REFERENCE_WH[1])
    return max(8, min(round(size_px * scale), width, height))


def read_video(path: Path, count: int) -> list[Frame]:
    """The first ``count`` frames of ``path`` (all of them when shorter)."""
    frames = []
    with open_source(str(path)) as source:
        for frame in source:
            frames.append(frame)
            if len(frames) >= count:
                break
    if not frames:
        raise ValueError(f"video {path}: it gave no frames")
    return frames


def render(scene: SyntheticScene, count: int) -> list[Frame]:
    """The first ``count`` frames of ``scene`` as `Frame` objects."""
    fps = scene.config.fps
    return [Frame(scene.frame(i), i, i / fps) for i in range(count)]


def crowd_scene(width: int, height: int, frames: int) -> SyntheticScene:
    """The validation scene with at least 30 objects, where tracking dominates."""
    return SyntheticScene(
        SceneConfig(
            objects=CROWD_OBJECTS,
            size_px=tuple(scaled_size_px(s, width, height) for s in CROWD_SIZE_PX),
            frames=frames,
            width=width,
            height=height,
            seed=CROWD_SEED,
            background="gray",
        )
    )


def stand_in_scene(width: int, height: int, frames: int) -> SyntheticScene:
    """A few people at ``width`` x ``height``, used where no video was given."""
    size = tuple(scaled_size_px(s, width, height) for s in (120, 240))
    return SyntheticScene(
        SceneConfig(objects=8, size_px=size, frames=frames, width=width, height=height)
    )


class FrameBank:
    """Frames for detector cells and loop runs, made on first use and kept.

    Args:
        video_frames: the video's first frames, or empty for none.
    """

    def __init__(self, video_frames: list[Frame]) -> None:
        self.video_frames = video_frames
        self._detector: dict[tuple[int, int], list[Frame]] = {}
        self._stand_in: dict[tuple[int, int], list[Frame]] = {}

    def detector_frames(self, width: int, height: int) -> list[Frame]:
        """`DETECTOR_IMAGES` frames of ``width`` x ``height``."""
        key = (width, height)
        if key not in self._detector:
            if self.video_frames:
                images = [
                    cv2.resize(f.image, key, interpolation=cv2.INTER_LINEAR)
                    for f in self.video_frames[:DETECTOR_IMAGES]
                ]
                self._detector[key] = [Frame(im, i, 0.0) for i, im in enumerate(images)]
            else:
                self._detector[key] = self.stand_in(width, height, DETECTOR_IMAGES)
        return self._detector[key]

    def stand_in(self, width: int, height: int, count: int) -> list[Frame]:
        """``count`` frames of the stand-in scene (rendered once per size)."""
        key = (width, height)
        if len(self._stand_in.get(key, ())) < count:
            self._stand_in[key] = render(stand_in_scene(width, height, count), count)
        return self._stand_in[key][:count]

    def stream(self, width: int, height: int, count: int) -> list[Frame]:
        """A clip for loop runs: the video's frames, else the stand-in scene."""
        if self.video_frames:
            return self.video_frames[:count]
        return self.stand_in(width, height, count)


@dataclass(frozen=True)
class TrackerScene:
    """Frames of a synthetic scene and each frame's exact boxes (with ids)."""

    frames: list[Frame]
    truth: list[Detections]


class TrackerScenes:
    """Synthetic scenes with an exact object count and size, the last one kept.

    Cells are ordered so that every tracker runs on one scene before the next
    scene is rendered; keeping one scene keeps memory small.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._scene: TrackerScene | None = None

    def get(
        self, objects: int, size_px: int, width: int, height: int, frames: int
    ) -> TrackerScene:
        """``frames`` frames of ``objects`` objects whose longer side is ``size_px``."""
        key = (objects, size_px, width, height, frames)
        if key != self._key or self._scene is None:
            scene = SyntheticScene(
                SceneConfig(
                    objects=objects,
                    size_px=(size_px, size_px),
                    frames=frames,
                    width=width,
                    height=height,
                )
            )
            self._scene = TrackerScene(
                render(scene, frames), [scene.ground_truth(i) for i in range(frames)]
            )
            self._key = key
        return self._scene
