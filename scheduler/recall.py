"""`KernelRecall`: how much of what other kernels see each kernel sees, live.

The profile rates a kernel by the scenes it was profiled on; a live scene can
blind one of them. In the benchmark's synthetic crowd (up to 50 people)
yolox_nano s224 kept no box above the confidence threshold where nanodet_m
s224-s512 kept 16-28, yet the profile, whose most crowded scene holds 12,
ranked it with them: under load the adaptive run fell to it every frame (AP50
0.086 at 10 ms against the oracle's 0.378 with nanodet_m s224 and fastestdet).

No ground truth is needed to notice: a kernel's confident boxes on a detection
frame, against the latest detection frame of another kernel, are a recall
estimate. AP50 cannot exceed recall, so a kernel that sees a small share of
what its peers see gets its branches' predicted accuracy scaled down. Seeing
``full_share`` of the peer or more costs nothing: the profile already prices
the usual gaps between kernels (yolox_nano s416 finds a person or two fewer
than s640 on PETS), and only a gap far beyond them is news. A kernel scaled
down is seldom run again, so nothing would ever clear its record: the record
fades back to full recall with a half-life, and the kernel gets tried again
when the scene may have changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class KernelRecall:
    """Per-kernel share of a peer's confident boxes, smoothed over detections.

    Args:
        kernels: the kernel names (``"yolox_nano/s224"``) factors are asked for.
        window_frames: a peer's detection frame older than this is no evidence
            (the scene may have changed since).
        min_peer_boxes: a peer that saw fewer boxes says nothing (1 of 2 is
            noise, not blindness).
        weight: smoothing of each kernel's share per detection frame (0.5: one
            frame with a fifth of its peer's boxes or more keeps a kernel at
            ``full_share`` or above; one with none scales it by 0.83, two in a
            row by 0.42).
        full_share: the share at and above which a kernel is not scaled down.
        half_life_frames: how fast a kernel's shortfall fades once it is no
            longer run.
    """

    def __init__(
        self,
        kernels: Sequence[str],
        window_frames: int = 60,
        min_peer_boxes: int = 4,
        weight: float = 0.5,
        full_share: float = 0.6,
        half_life_frames: float = 300.0,
    ) -> None:
        self.window_frames = window_frames
        self.min_peer_boxes = min_peer_boxes
        self.weight = weight
        self.full_share = full_share
        self.half_life_frames = half_life_frames
        self._position = {k: i for i, k in enumerate(dict.fromkeys(kernels))}
        self._share = np.ones(len(self._position))
        self._updated = np.zeros(len(self._position))  # frame of each share
        self._short = False  # any kernel ever scaled below its peers
        self._last: dict[str, tuple[int, int]] = {}  # kernel -> (frame, boxes)

    def update(self, kernel: str, frame_index: int, boxes: int) -> None:
        """A detection frame of ``kernel`` kept ``boxes`` confident boxes."""
        peer = self._latest_peer(kernel, frame_index)
        self._last[kernel] = (frame_index, boxes)
        position = self._position.get(kernel)
        if peer is None or position is None:
            return
        now = self._faded(frame_index, position)
        self._share[position] = now + self.weight * (min(boxes / peer, 1.0) - now)
        self._updated[position] = frame_index
        self._short = self._short or self._share[position] < 1.0

    def _latest_peer(self, kernel: str, frame_index: int) -> int | None:
        """Boxes of the latest recent detection frame of another kernel."""
        recent = [
            (frame, boxes)
            for name, (frame, boxes) in self._last.items()
            if name != kernel and frame_index - frame <= self.window_frames
        ]
        if not recent:
            return None
        _, boxes = max(recent)
        return boxes if boxes >= self.min_peer_boxes else None

    def _faded(self, frame_index: int, at: int | slice = slice(None)) -> np.ndarray:
        """Each kernel's share at ``frame_index`` (or kernel ``at``'s): its
        shortfall halves every ``half_life_frames`` since its last update."""
        age = np.maximum(frame_index - self._updated[at], 0.0)
        return 1.0 - (1.0 - self._share[at]) * 0.5 ** (age / self.half_life_frames)

    def factors(self, frame_index: int) -> np.ndarray | None:
        """``(kernels,)`` what each kernel's predicted AP50 is scaled by at
        ``frame_index``, in the order of ``kernels`` (1 for one never compared);
        None while every kernel has seen all its peers saw (a decision then
        skips the scaling: its budget is 0.2 ms for 1,000 branches)."""
        if not self._short:
            return None
        return np.clip(self._faded(frame_index) / self.full_share, 0.0, 1.0)

    def share(self, kernel: str, frame_index: int) -> float:
        """The smoothed share of its peers' boxes ``kernel`` sees (1 if unknown)."""
        return float(self._faded(frame_index, self._position[kernel]))
