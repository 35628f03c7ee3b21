"""`SceneConfig`: the knobs of a synthetic scene, and its ``synthetic:`` spec."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields

from approxrt.sources.cutouts import BACKGROUNDS, CUTOUTS, Cutout, available_cutouts

SPEC_PREFIX = "synthetic"

# spec key -> SceneConfig field
SPEC_KEYS: dict[str, str] = {
    "objects": "objects",
    "size": "size_px",
    "speed": "speed_px",
    "frames": "frames",
    "width": "width",
    "height": "height",
    "seed": "seed",
    "enter_rate": "enter_rate",
    "enter_until": "enter_until",
    "bounce": "bounce",
    "fps": "fps",
    "classes": "classes",
    "cutouts": "cutouts",
    "background": "background",
    "noise": "noise",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class SceneConfig:
    """What a `SyntheticScene` generates.

    Attributes:
        objects: objects in the first frame; raising it crowds the scene (more
            boxes, more occlusion).
        size_px: ``(min, max)`` longer side of an object's box in pixels, drawn
            uniformly per object; smaller objects are harder to detect.
        speed_px: ``(min, max)`` pixels per frame, drawn uniformly per object, in a
            random direction; faster objects are harder to track.
        frames: length of the video.
        width: frame width in pixels.
        height: frame height in pixels.
        seed: everything random comes from it; the same seed gives the same scene.
        enter_rate: expected objects entering through the borders per frame
            (Poisson); above 0 the count changes over time.
        enter_until: no object enters from this frame on (None: until the end),
            so a crowd that built up leaves again: a count that rises and falls.
        bounce: whether objects bounce off the borders (the count stays fixed) or
            leave through them. None (default) means bounce exactly when
            ``enter_rate`` is 0.
        fps: frame rate written to the video and used for timestamps.
        classes: COCO classes of the objects; each needs a cut-out photo
            (person, motorcycle, cat, cup).
        cutouts: names of the photos to use (see `approxrt.sources.cutouts`), or
            None for every photo of ``classes``; each must be of one of ``classes``.
        background: ``grass``, ``gravel``, ``brick`` (photographed textures) or
            ``gray``.
        noise: standard deviation of per-frame Gaussian pixel noise (0 = none).
    """

    objects: int = 5
    size_px: tuple[int, int] = (80, 160)
    speed_px: tuple[float, float] = (1.0, 4.0)
    frames: int = 300
    width: int = 640
    height: int = 480
    seed: int = 0
    enter_rate: float = 0.0
    enter_until: int | None = None
    bounce: bool | None = None
    fps: float = 30.0
    classes: tuple[str, ...] = ("person",)
    cutouts: tuple[str, ...] | None = None
    background: str = "grass"
    noise: float = 0.0

    def __post_init__(self) -> None:
        for name in ("classes", "cutouts"):
            value = getattr(self, name)
            if isinstance(value, str):
                names = (n.strip() for n in value.replace("+", ",").split(","))
                object.__setattr__(self, name, tuple(n for n in names if n))
        for name in ("classes", "cutouts", "size_px", "speed_px"):
            value = getattr(self, name)
            if isinstance(value, list | tuple):
                object.__setattr__(self, name, tuple(value))
        _check_int("objects", self.objects, 0)
        _check_int("frames", self.frames, 1)
        _check_int("width", self.width, 32)
        _check_int("height", self.height, 32)
        _check_int("seed", self.seed, 0)
        if self.enter_until is not None:
            _check_int("enter_until", self.enter_until, 0)
        _check_range(
            "size", self.size_px, 8, min(self.width, self.height), integer=True
        )
        _check_range("speed", self.speed_px, 0.0, float(max(self.width, self.height)))
        for name in ("enter_rate", "noise"):
            _check_number(name, getattr(self, name), 0.0)
        if not self.fps > 0:
            raise ValueError(f"fps: expected a number > 0, got {self.fps!r}")
        if self.background not in BACKGROUNDS:
            raise ValueError(
                f"background: expected one of {', '.join(BACKGROUNDS)}, "
                f"got {self.background!r}"
            )
        _check_classes(self.classes)
        _check_cutouts(self.cutouts, self.classes)

    @property
    def cutout_pool(self) -> list[Cutout]:
        """The installed photos objects are drawn from."""
        pool = available_cutouts(self.classes)
        if self.cutouts is not None:
            pool = [c for c in pool if c.name in self.cutouts]
        return pool

    @property
    def bounces(self) -> bool:
        """Whether objects bounce off the borders (resolves ``bounce=None``)."""
        return self.enter_rate == 0 if self.bounce is None else bool(self.bounce)

    @classmethod
    def from_spec(cls, spec: str) -> SceneConfig:
        """Parse ``synthetic:objects=5,size=60-120,speed=1-4,classes=person+cat``.

        Ranges are ``min-max`` or one value; classes are joined with ``+``.
        Unknown keys raise ``ValueError`` listing the valid ones.
        """
        head, _, body = spec.strip().partition(":")
        if head.strip().lower() != SPEC_PREFIX:
            raise ValueError(
                f"synthetic spec: expected 'synthetic:key=value,...', got {spec!r}"
            )
        values: dict[str, object] = {}
        for item in filter(None, (part.strip() for part in body.split(","))):
            key, sep, text = (s.strip() for s in item.partition("="))
            if key not in SPEC_KEYS:
                close = difflib.get_close_matches(key, SPEC_KEYS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"synthetic spec: unknown key {key!r}{hint}; valid keys: "
                    f"{', '.join(SPEC_KEYS)}"
                )
            if not sep or not text:
                raise ValueError(
                    f"synthetic spec: key {key!r} needs a value, as {key}=..."
                )
            values[SPEC_KEYS[key]] = _parse_value(key, text)
        return cls(**values)

    def to_spec(self) -> str:
        """The ``synthetic:`` spec that parses back to this config."""
        parts = []
        by_field = {f: k for k, f in SPEC_KEYS.items()}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and f.name in ("classes", "cutouts"):
                text = "+".join(value)
            elif isinstance(value, tuple):
                text = f"{value[0]:g}-{value[1]:g}"
            elif value is None:
                continue
            else:
                text = f"{value:g}" if isinstance(value, float) else str(value).lower()
            parts.append(f"{by_field[f.name]}={text}")
        return f"{SPEC_PREFIX}:" + ",".join(parts)


def _parse_value(key: str, text: str) -> object:
    try:
        if key in ("size", "speed"):
            low, sep, high = text.partition("-")
            cast = int if key == "size" else float
            return (cast(low), cast(high if sep else low))
        if key in ("objects", "frames", "width", "height", "seed", "enter_until"):
            return int(text)
        if key in ("enter_rate", "fps", "noise"):
            return float(text)
    except ValueError:
        raise ValueError(
            f"synthetic spec: {key}={text!r} is not a valid "
            f"{'range like 60-120' if key in ('size', 'speed') else 'number'}"
        ) from None
    if key == "bounce":
        if text.lower() not in _TRUE | _FALSE:
            raise ValueError(f"synthetic spec: bounce={text!r}; expected true or false")
        return text.lower() in _TRUE
    if key in ("classes", "cutouts"):
        return tuple(name.strip() for name in text.split("+") if name.strip())
    return text


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")


def _check_number(name: str, value: object, low: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise ValueError(f"{name}: expected a number >= {low:g}, got {value!r}")


def _check_range(
    name: str, value: object, low: float, high: float, integer: bool = False
) -> None:
    kind = int if integer else (int, float)
    ok = (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)
        and low <= value[0] <= value[1] <= high
    )
    if not ok:
        raise ValueError(
            f"{name}: expected (min, max) with {low:g} <= min <= max <= "
            f"{high:g}, got {value!r}"
        )


def _check_classes(classes: tuple[str, ...]) -> None:
    known = sorted({c.class_name for c in CUTOUTS})
    installed = {c.class_name for c in available_cutouts()}
    if not classes:
        raise ValueError(f"classes: expected at least one of {', '.join(known)}")
    for name in classes:
        if name not in known:
            raise ValueError(
                f"classes: no cut-out photo of {name!r}; available: {', '.join(known)}"
            )
        if name not in installed:
            raise ValueError(
                f"classes: the photos of {name!r} come from scikit-image, "
                "which is not installed (pip install scikit-image)"
            )


def _check_cutouts(cutouts: tuple[str, ...] | None, classes: tuple[str, ...]) -> None:
    if cutouts is None:
        return
    by_name = {c.name: c for c in CUTOUTS}
    if not cutouts:
        raise ValueError("cutouts: expected at least one name, or None for all")
    for name in cutouts:
        if name not in by_name:
            raise ValueError(
                f"cutouts: unknown photo {name!r}; known: {', '.join(by_name)}"
            )
        if by_name[name].class_name not in classes:
            raise ValueError(
                f"cutouts: {name!r} shows a {by_name[name].class_name}, "
                f"which is not in classes {classes}; add it to classes"
            )
        if by_name[name].path is None:
            raise ValueError(
                f"cutouts: {name!r} needs the {by_name[name].package!r} "
                "package (pip install scikit-image)"
            )
