"""`KernelViews`: how each kernel's boxes misread the size of the scene's objects.

The content-aware accuracy model reads a segment's light features as the
profile's reference kernel saw them (`profiler.features`). Live, the only
boxes are those of the kernel running, and a small input misses the small
objects, so the ones it keeps look larger: on PETS yolox_nano s224's boxes
measure 1.22x the reference's (sqrt of the mean area), s320's 1.10x. Larger
objects read as an easier scene, and the model then rates the small input
close to the large ones. In the benchmark's idle PETS run at a 10 ms SLA,
live content from s224 put its predicted AP50 at 0.90-0.93 (0.80 measured on
the profile's PETS segments) beside 0.90 for yolox_nano s416 si2 with KCF
(0.88 measured), and the run held s224 every frame for 80% of the stream.

`fit` learns each kernel's size ratio to the reference over the profiled
segments (a geometric mean, so one segment of three big boxes does not
outweigh the rest); `size_ratio` divides it out of a live measurement. The
object count is left alone: a kernel missing most of a crowd says little
about how many there are, and `ContentEstimate` already holds the recent peak
of kernels that see the scene.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import numpy as np

from approxrt.scheduler.model_io import ModelReader, header, json_number

if TYPE_CHECKING:
    import pandas as pd


class KernelViews:
    """Per-kernel ratio of the box size it sees to the reference kernel's.

    Args:
        min_segments: a kernel seen on fewer segments (where both it and the
            reference kept boxes) keeps ratio 1.
        ratio_bounds: the ratio is clipped to these, so a kernel that keeps one
            odd box per segment cannot rescale the scene wildly.
    """

    KIND = "KernelViews"

    def __init__(
        self, min_segments: int = 3, ratio_bounds: tuple[float, float] = (0.5, 2.0)
    ) -> None:
        self.min_segments = min_segments
        self.ratio_bounds = ratio_bounds

    def get_params(self) -> dict[str, Any]:
        return {
            "min_segments": self.min_segments,
            "ratio_bounds": list(self.ratio_bounds),
        }

    def fit(self, kernel_features: pd.DataFrame, features: pd.DataFrame) -> Self:
        """Fit on ``accuracy/kernel_features`` against ``accuracy/features``
        (the reference's light features of the same segments)."""
        keys = ["video", "segment"]
        missing = [
            c
            for c in (*keys, "kernel", "object_size_px")
            if c not in kernel_features.columns
        ]
        if missing:
            raise ValueError(
                f"{self.KIND}: kernel features table lacks columns {missing}"
            )
        reference = features[[*keys, "object_size_px"]]
        joined = kernel_features.merge(reference, on=keys, suffixes=("", "_reference"))
        seen = (joined["object_size_px"] > 0) & (joined["object_size_px_reference"] > 0)
        joined = joined[seen]
        log_ratio = np.log(
            joined["object_size_px"] / joined["object_size_px_reference"]
        )
        grouped = log_ratio.groupby(joined["kernel"], sort=True)
        counts, means = grouped.size(), grouped.mean()
        kept = counts.index[counts >= self.min_segments]
        self.size_ratio_ = {
            str(kernel): float(np.clip(np.exp(means[kernel]), *self.ratio_bounds))
            for kernel in kept
        }
        self.segments_ = {str(kernel): int(counts[kernel]) for kernel in kept}
        return self

    def size_ratio(self, kernel: str) -> float:
        """What ``kernel``'s box size is divided by to read as the reference's
        (1 for a kernel the profile did not see)."""
        return self.size_ratio_.get(kernel, 1.0)

    def to_dict(self) -> dict:
        return {
            **header(self.KIND),
            "params": self.get_params(),
            "size_ratio": {k: json_number(v) for k, v in self.size_ratio_.items()},
            "segments": self.segments_,
        }

    @classmethod
    def from_dict(cls, data: dict, name: str | None = None) -> Self:
        reader = ModelReader(data, name or cls.KIND, cls.KIND)
        params = reader.get("params")
        if not isinstance(params, dict):
            raise reader.error("params", "expected an object")
        try:
            model = cls(
                min_segments=int(params["min_segments"]),
                ratio_bounds=tuple(float(b) for b in params["ratio_bounds"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise reader.error("params", f"bad or missing {error}") from None
        ratios = reader.get("size_ratio")
        if not isinstance(ratios, dict) or not all(
            isinstance(v, int | float) and v > 0 for v in ratios.values()
        ):
            raise reader.error("size_ratio", "expected {kernel: positive number}")
        model.size_ratio_ = {str(k): float(v) for k, v in ratios.items()}
        model.segments_ = reader.optional("segments", {})
        return model
