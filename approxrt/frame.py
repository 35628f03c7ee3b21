"""`Frame`: one decoded image and where it came from."""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
