"""Real photographs of COCO objects, cut out for synthetic scenes.

The photos ship inside pip packages, so they are available offline: matplotlib's
sample data (Grace Hopper) and scikit-image's bundled images (no download: these
files are inside the scikit-image wheel). Each crop rectangle is the box that the
YOLOX-nano COCO detector itself draws around the object on the full photo, so the
whole crop is the object's box: pasted into a scene, the crop's rectangle is the
exact ground-truth box.

``min_size_px`` is the smallest longer side at which YOLOX-nano (input 416, on a
640x480 frame over the grass background) found the photo, pasted alone, at IoU
>= 0.5 and score >= 0.3 in at least 11 of 12 placements. Measured rates at 80 /
100 / 130 px: Grace Hopper 0.83 / 0.92 / 1.0, astronaut 0.50 / 0.83 / 1.0,
cameraman 0.58 / 0.83 / 1.0; the motorcycle needs 160 px, the cat and the cup 200.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from approxrt.classes import COCO_CLASSES


@dataclass(frozen=True)
class Cutout:
    """One object photo and where the object sits in it.

    Attributes:
        name: short unique name.
        class_name: its COCO class.
        package: the pip package that ships the photo.
        relative_path: the photo's path inside that package's folder.
        crop_xyxy: the object's box in the photo, in pixels.
        min_size_px: smallest longer side at which YOLOX-nano reliably finds it.
    """

    name: str
    class_name: str
    package: str
    relative_path: str
    crop_xyxy: tuple[int, int, int, int]
    min_size_px: int

    @property
    def class_id(self) -> int:
        return COCO_CLASSES.index(self.class_name)

    @property
    def path(self) -> Path | None:
        """The photo file, or None when its package is not installed."""
        return package_file(self.package, self.relative_path)

    @property
    def aspect(self) -> float:
        """Width over height of the crop."""
        x1, y1, x2, y2 = self.crop_xyxy
        return (x2 - x1) / (y2 - y1)


CUTOUTS: tuple[Cutout, ...] = (
    Cutout(
        "grace_hopper",
        "person",
        "matplotlib",
        "mpl-data/sample_data/grace_hopper.jpg",
        (8, 41, 512, 581),
        100,
    ),
    Cutout(
        "astronaut", "person", "skimage", "data/astronaut.png", (12, 20, 369, 507), 130
    ),
    Cutout("cameraman", "person", "skimage", "data/camera.png", (5, 64, 301, 502), 130),
    Cutout(
        "motorcycle",
        "motorcycle",
        "skimage",
        "data/motorcycle_left.png",
        (110, 64, 710, 446),
        160,
    ),
    Cutout("chelsea", "cat", "skimage", "data/chelsea.png", (0, 0, 451, 300), 200),
    Cutout("coffee", "cup", "skimage", "data/coffee.png", (162, 16, 421, 295), 200),
)

# Grey textures photographed by scikit-image's authors; "gray" is a flat fill.
BACKGROUNDS: dict[str, tuple[str, str] | None] = {
    "grass": ("skimage", "data/grass.png"),
    "gravel": ("skimage", "data/gravel.png"),
    "brick": ("skimage", "data/brick.png"),
    "gray": None,
}


def package_file(package: str, relative_path: str) -> Path | None:
    """A data file inside an installed package's folder, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / relative_path
        if candidate.is_file():
            return candidate
    return None


def available_cutouts(class_names: tuple[str, ...] | None = None) -> list[Cutout]:
    """Cut-outs whose photo is installed, optionally only of ``class_names``."""
    return [
        c
        for c in CUTOUTS
        if c.path is not None and (class_names is None or c.class_name in class_names)
    ]


@functools.lru_cache(maxsize=16)
def load_cutout(name: str) -> np.ndarray:
    """The crop of cut-out ``name`` as ``(h, w, 3) uint8`` BGR (read-only, cached)."""
    cutout = next((c for c in CUTOUTS if c.name == name), None)
    if cutout is None:
        raise ValueError(
            f"cutout: unknown name {name!r}; known: "
            f"{', '.join(c.name for c in CUTOUTS)}"
        )
    if cutout.path is None:
        raise ValueError(
            f"cutout {name!r}: package {cutout.package!r} is not installed"
        )
    image = cv2.imread(str(cutout.path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cutout {name!r}: cannot read {str(cutout.path)!r}")
    x1, y1, x2, y2 = cutout.crop_xyxy
    crop = np.ascontiguousarray(image[y1:y2, x1:x2])
    crop.flags.writeable = False
    return crop


@functools.lru_cache(maxsize=512)
def resized_cutout(name: str, width: int, height: int, flip: bool) -> np.ndarray:
    """Cut-out ``name`` resized to ``width`` x ``height``, mirrored when ``flip``."""
    patch = cv2.resize(load_cutout(name), (width, height), interpolation=cv2.INTER_AREA)
    if flip:
        patch = np.ascontiguousarray(patch[:, ::-1])
    patch.flags.writeable = False
    return patch


def load_background(name: str, width: int, height: int) -> np.ndarray:
    """Background ``name`` as a ``(height, width, 3) uint8`` BGR image."""
    if name not in BACKGROUNDS:
        raise ValueError(
            f"background: unknown {name!r}; known: {', '.join(BACKGROUNDS)}"
        )
    source = BACKGROUNDS[name]
    if source is None:
        return np.full((height, width, 3), 114, np.uint8)
    path = package_file(*source)
    if path is None:
        raise ValueError(
            f"background {name!r}: package {source[0]!r} is not installed "
            "(pip install scikit-image, or use background=gray)"
        )
    texture = cv2.imread(str(path), cv2.IMREAD_COLOR)
    # Tile rather than stretch, so the texture keeps its grain at any frame size.
    reps = (-(-height // texture.shape[0]), -(-width // texture.shape[1]), 1)
    return np.ascontiguousarray(np.tile(texture, reps)[:height, :width])
