"""OpenCV's single-object trackers (KCF, CSRT, MedianFlow, MOSSE), one per object.

Each object gets its own OpenCV tracker rather than one ``MultiTracker``: a
MultiTracker reports a single success flag for all boxes, so one lost object
would drop the whole frame. Here an object that fails (or whose tracker raises)
drops alone and the others carry on.

The trackers live in OpenCV's contrib modules (``opencv-contrib-python`` or
``opencv-contrib-python-headless``); their factory names moved between OpenCV
versions (``cv2.TrackerKCF_create`` vs ``cv2.legacy.TrackerKCF_create``), so they
are looked up by attribute.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Any, ClassVar

import cv2
import numpy as np

from approxrt.branches.trackers.base import Tracker

# Width and height, in downsampled pixels, below which a box cannot seed a tracker:
# OpenCV's trackers need a patch to build features from and raise on empty ones.
MIN_SIDE_PX = 2
# Lengths whose only prime factors are 2, 3 and 5: the sizes OpenCV's DFT is
# fastest at (see `KCFTracker`).
_FAST_DFT_SIDES = sorted(
    2**a * 3**b * 5**c
    for a in range(14)
    for b in range(9)
    for c in range(6)
    if 2**a * 3**b * 5**c <= 8192
)


def find_factory(kind: str, factory_names: tuple[str, ...]) -> Callable[[], Any]:
    """The first of ``factory_names`` that this OpenCV build provides.

    Names are looked up on ``cv2`` and ``cv2.legacy`` ("legacy.X" means the latter).

    Raises:
        RuntimeError: when none exists, which means the contrib modules are missing.
    """
    for dotted in factory_names:
        owner: Any = cv2
        *namespaces, attribute = dotted.split(".")
        for namespace in namespaces:
            owner = getattr(owner, namespace, None)
        factory = getattr(owner, attribute, None)
        if callable(factory):
            return factory
    raise RuntimeError(
        f"tracker {kind!r} needs OpenCV's contrib modules, but cv2 {cv2.__version__} "
        f"has none of {', '.join('cv2.' + n for n in factory_names)}. Install "
        "opencv-contrib-python-headless and uninstall opencv-python / "
        "opencv-python-headless, which provide the same cv2 module without contrib."
    )


def xyxy_to_rect(box: np.ndarray, width: int, height: int) -> tuple[int, ...] | None:
    """OpenCV's integer ``(x, y, w, h)`` for an xyxy box clipped to the image.

    Returns None when the clipped box is not finite or is narrower or shorter
    than `MIN_SIDE_PX`.
    """
    if not np.all(np.isfinite(box)):
        return None
    x1, x2 = np.clip(np.round(box[0::2]), 0, width).astype(int)
    y1, y2 = np.clip(np.round(box[1::2]), 0, height).astype(int)
    if x2 - x1 < MIN_SIDE_PX or y2 - y1 < MIN_SIDE_PX:
        return None
    return (int(x1), int(y1), int(x2 - x1), int(y2 - y1))


def fast_dft_side(side: int, limit: int) -> int:
    """The length nearest ``side`` (the shorter on a tie) whose prime factors are
    2, 3 and 5, at most ``limit`` (``2 <= side <= limit``)."""
    index = bisect_right(_FAST_DFT_SIDES, side)
    lower = _FAST_DFT_SIDES[index - 1]
    upper = _FAST_DFT_SIDES[min(index, len(_FAST_DFT_SIDES) - 1)]
    return upper if upper - side < side - lower and upper <= limit else lower


def fast_dft_rect(rect: tuple[int, ...], width: int, height: int) -> tuple[int, ...]:
    """``rect`` with each side moved to its `fast_dft_side`, about the same centre,
    shifted where needed to stay inside a ``width`` x ``height`` image."""
    x, y, w, h = rect
    new_w, new_h = fast_dft_side(w, width), fast_dft_side(h, height)
    new_x = min(max(0, round(x + (w - new_w) / 2)), width - new_w)
    new_y = min(max(0, round(y + (h - new_h) / 2)), height - new_h)
    return (int(new_x), int(new_y), int(new_w), int(new_h))


def rect_to_xyxy(rect) -> np.ndarray:
    """``(4,) float64`` xyxy of OpenCV's ``(x, y, w, h)`` (ints or floats)."""
    x, y, w, h = (float(v) for v in rect)
    return np.array([x, y, x + w, y + h])


def overlaps_image(box: np.ndarray, width: int, height: int) -> bool:
    """Whether an xyxy box is finite, non-empty and has area inside the image."""
    x1, y1, x2, y2 = box
    return bool(
        np.all(np.isfinite(box))
        and x2 > x1
        and y2 > y1
        and x2 > 0
        and y2 > 0
        and x1 < width
        and y1 < height
    )


class OpenCVTracker(Tracker):
    """One OpenCV tracker per object, on the downsampled frame.

    Subclasses name the OpenCV factory; see `Tracker` for ``downsample`` and
    ``confidence_decay``.

    Raises:
        RuntimeError: at construction when this OpenCV build lacks the tracker.
    """

    factory_names: ClassVar[tuple[str, ...]]
    # Whether to run one update on the seed frame right after init (see KCF).
    prime_on_seed_frame: ClassVar[bool] = False
    # Whether the tracked window's sides move to sizes fast for the DFT (see KCF).
    fast_dft_window: ClassVar[bool] = False

    def __init__(self, downsample: int = 1, confidence_decay: float = 0.95) -> None:
        super().__init__(downsample=downsample, confidence_decay=confidence_decay)
        self._factory = find_factory(self.name, self.factory_names)
        # How much larger than the object the window OpenCV tracks is (see MOSSE).
        self.context_scale = 1.0
        # Boxes whose area (downsampled px^2) is at most this are not tracked.
        self.min_area_px = 0.0
        self._trackers: list[Any | None] = []
        # Per object: the window centre's offset to the object centre, and the
        # object's (w, h); used only when context_scale != 1.
        self._offsets = np.zeros((0, 2))
        self._sizes = np.zeros((0, 2))

    def reset(self) -> None:
        super().reset()
        self._trackers = []
        self._offsets = np.zeros((0, 2))
        self._sizes = np.zeros((0, 2))

    def _start(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        windows = _scaled_about_centre(boxes, self.context_scale)
        self._sizes = boxes[:, 2:] - boxes[:, :2]
        self._trackers = []
        self._offsets = np.zeros((len(boxes), 2))
        for i, (box, window) in enumerate(zip(boxes, windows, strict=True)):
            tracker, rect = self._start_one(image, box, window)
            self._trackers.append(tracker)
            if rect is not None:
                self._offsets[i] = _centre(box) - _centre(rect_to_xyxy(rect))
        return np.array([t is not None for t in self._trackers], dtype=bool)

    def _start_one(self, image: np.ndarray, box: np.ndarray, window: np.ndarray):
        """A started OpenCV tracker and the rect it tracks, or ``(None, None)``.

        ``box`` is the object (it must be trackable); ``window`` what OpenCV tracks.
        """
        height, width = image.shape[:2]
        own = xyxy_to_rect(box, width, height)
        if own is None or own[2] * own[3] <= self.min_area_px:
            return None, None
        rect = xyxy_to_rect(window, width, height)  # holds ``own``: never None
        if self.fast_dft_window:
            rect = fast_dft_rect(rect, width, height)
        tracker = self._new_tracker()
        try:
            # The 4.5.1+ API returns None; the legacy API returns a success bool.
            started = tracker.init(image, rect) is not False
            if started and self.prime_on_seed_frame:
                started = bool(tracker.update(image)[0])
        except cv2.error:
            return None, None
        return (tracker, rect) if started else (None, None)

    def _new_tracker(self) -> Any:
        return self._factory()

    def _step(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = image.shape[:2]
        boxes = np.zeros((len(self._trackers), 4))
        ok = np.zeros(len(self._trackers), dtype=bool)
        for i, tracker in enumerate(self._trackers):
            if tracker is None:
                continue
            window, found = self._step_one(tracker, image)
            boxes[i] = self._object_box(i, window)
            ok[i] = found and overlaps_image(boxes[i], width, height)
            if not ok[i]:
                self._trackers[i] = None  # failed for good: free it, skip it later
        return boxes, ok

    def _object_box(self, i: int, window: np.ndarray) -> np.ndarray:
        if self.context_scale == 1.0 and not self.fast_dft_window:
            return window
        centre = _centre(window) + self._offsets[i]
        half = self._sizes[i] / 2
        return np.concatenate([centre - half, centre + half])

    @staticmethod
    def _step_one(tracker: Any, image: np.ndarray) -> tuple[np.ndarray, bool]:
        try:
            found, rect = tracker.update(image)
        except cv2.error:
            return np.zeros(4), False
        return rect_to_xyxy(rect), bool(found)


def _centre(box: np.ndarray) -> np.ndarray:
    return (np.asarray(box)[..., :2] + np.asarray(box)[..., 2:]) / 2


def _scaled_about_centre(boxes: np.ndarray, scale: float) -> np.ndarray:
    """``(n, 4)`` xyxy boxes grown (or shrunk) by ``scale`` about their centres."""
    centre = _centre(boxes)
    half = (boxes[:, 2:] - boxes[:, :2]) * (scale / 2)
    return np.concatenate([centre - half, centre + half], axis=1)


class KCFTracker(OpenCVTracker):
    """Kernelized correlation filter: fast, fixed box size, weak under occlusion.

    OpenCV's KCF learns its model in the first ``update``, not in ``init``, so used
    as is it learns the object's old position on the *next* frame and then lags one
    frame behind for good (on a real frame shifted by 8 px it reports no motion).
    It is therefore updated once on the seed frame itself, right after ``init``.

    Its cost depends on the box's exact sides, not only its area: each update
    runs DFTs of about the box's size, and OpenCV's DFT is several times slower
    at lengths with large prime factors. Measured here (one update, 1280x720
    crowd frame, box height 113 px): widths 80-130 px took 14.7 ms on average
    and up to 37.8 ms (width 109: 14.1 ms, width 108: 3.7 ms). So the window
    KCF tracks has each side moved to the nearest length whose prime factors
    are 2, 3 and 5 (at most about 5% away above 60 px), about the box's centre,
    and the reported box keeps the seeded size about the tracked centre (KCF's
    box size is fixed anyway): the same widths then took 5.2 ms on average, and
    the profiled cost of a box no longer depends on its exact size.

    Args:
        downsample: see `Tracker`.
        confidence_decay: see `Tracker`.
        detect_threshold: an object is lost when KCF's peak response falls below
            this. OpenCV's default, 0.5, loses most small pedestrians within a few
            frames (on PETS, 59 of 84 within 7 frames at ds1, 73 at ds4); at 0.2
            it loses 4 (14 at ds4) and the boxes it keeps are as accurate. Raising
            it drops doubtful boxes sooner.

    Raises:
        ValueError: when ``detect_threshold`` is outside ``[0, 1]``.
    """

    name = "kcf"
    # Only this factory takes TrackerKCF_Params (OpenCV >= 4.5.1 with contrib).
    factory_names = ("TrackerKCF_create",)
    prime_on_seed_frame = True
    fast_dft_window = True

    def __init__(
        self,
        downsample: int = 1,
        confidence_decay: float = 0.95,
        detect_threshold: float = 0.2,
    ) -> None:
        if not 0 <= detect_threshold <= 1:
            raise ValueError(
                "detect_threshold: expected a number in [0, 1], "
                f"got {detect_threshold!r}"
            )
        super().__init__(downsample=downsample, confidence_decay=confidence_decay)
        self.detect_threshold = float(detect_threshold)

    def _new_tracker(self) -> Any:
        params = cv2.TrackerKCF_Params()
        params.detect_thresh = self.detect_threshold
        return self._factory(params)


class CSRTTracker(OpenCVTracker):
    """Discriminative correlation filter with channel and spatial reliability.

    The most accurate and by far the slowest of these: OpenCV rescales every
    object to a fixed 200 px template, so its cost hardly falls with
    ``downsample``.

    Args:
        downsample: see `Tracker`.
        confidence_decay: see `Tracker`.
        min_area_px: boxes whose area after downsampling is at most this many
            square pixels are not tracked (10 as in ApproxDet), since CSRT needs a
            patch to learn from; raising it drops more small objects.

    Raises:
        ValueError: when ``min_area_px`` is negative.
    """

    name = "csrt"
    factory_names = ("TrackerCSRT_create", "legacy.TrackerCSRT_create")

    def __init__(
        self,
        downsample: int = 1,
        confidence_decay: float = 0.95,
        min_area_px: float = 10.0,
    ) -> None:
        if not min_area_px >= 0:
            raise ValueError(
                f"min_area_px: expected a number >= 0, got {min_area_px!r}"
            )
        super().__init__(downsample=downsample, confidence_decay=confidence_decay)
        self.min_area_px = float(min_area_px)


class MedianFlowTracker(OpenCVTracker):
    """Median of forward-backward Lucas-Kanade flow of points in the box; rescales.

    Works on the grayscale frame, converted once per frame: OpenCV's MedianFlow
    converts both of its frames to grayscale itself on every update of every
    object, and given grayscale it returns the very same boxes, 14% faster per
    object update (6 PETS pedestrians over 59 frames: 1.04 ms against 1.21 ms).
    """

    name = "medianflow"
    grayscale = True
    factory_names = ("legacy.TrackerMedianFlow_create", "TrackerMedianFlow_create")


class MOSSETracker(OpenCVTracker):
    """Minimum output sum of squared error filter: the cheapest, the least robust.

    Fixed box size. Unlike KCF and CSRT, OpenCV's MOSSE learns its filter on
    exactly the window it is given, with no surrounding context; on a pedestrian
    box of about 20 x 50 px it reports the object lost in the first frame or two
    (on PETS, 74 of 84 objects by frame 7 at ds1 and all of them at ds2). So it
    tracks a window ``context_scale`` times the box about the box's centre, and
    reports a box of the seeded size about the tracked centre.

    Args:
        downsample: see `Tracker`.
        confidence_decay: see `Tracker`.
        context_scale: side of the tracked window over the side of the box;
            raising it keeps small objects tracked longer, at the risk of
            following the background (1 tracks the bare box).

    Raises:
        ValueError: when ``context_scale`` is less than 1.
    """

    name = "mosse"
    factory_names = ("legacy.TrackerMOSSE_create", "TrackerMOSSE_create")

    def __init__(
        self,
        downsample: int = 1,
        confidence_decay: float = 0.95,
        context_scale: float = 3.0,
    ) -> None:
        if not context_scale >= 1:
            raise ValueError(
                f"context_scale: expected a number >= 1, got {context_scale!r}"
            )
        super().__init__(downsample=downsample, confidence_decay=confidence_decay)
        self.context_scale = float(context_scale)
