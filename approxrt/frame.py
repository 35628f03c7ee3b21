"""`Frame`: one decoded image and where it came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame.

    Attributes:
        image: ``(h, w, 3) uint8`` BGR pixels (OpenCV order).
        index: 0-based position in its source; MOTChallenge files write ``index + 1``.
        timestamp_s: capture time in seconds from the start of the source.
        source_id: the stream this frame belongs to.
        decode_ms: time spent reading and decoding it.
        arrival_s: when it reached the runtime, in seconds on the run's stream
            clock (0 = the first frame's arrival; see
            `approxrt.sources.realtime`); None when no stream clock stamped it.
    """

    image: np.ndarray
    index: int
    timestamp_s: float
    source_id: str = "0"
    decode_ms: float = 0.0
    arrival_s: float | None = None
    # Images derived from ``image`` (a tracker's downsampled or grayscale view),
    # made once per frame however many trackers ask: the accuracy profiler replays
    # up to 18 tracker runs over each frame (`approxrt.profiler.replay`).
    _derived: dict[tuple, np.ndarray] = field(
        default_factory=dict, init=False, repr=False
    )

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def derived(
        self, key: tuple, make: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        """``make(image)``, computed on the first call with ``key`` and then reused.

        ``key`` must name everything ``make`` depends on (e.g. ``("grayscale", 2)``);
        the result is shared, so callers must not write into it.
        """
        if key not in self._derived:
            self._derived[key] = make(self.image)
        return self._derived[key]

    def fresh(self) -> Frame:
        """This frame with nothing derived yet (the pixels are shared, not copied).

        What a timed call is given when one frame is used again and again (the
        latency profiler's clips): a live stream's frames are new each time, so
        each pays for its own derived views.
        """
        return replace(self)
