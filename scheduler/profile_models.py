"""A profile's fitted models, rebuilt from their JSON dicts (``models/<name>.json``).

Loading imports numpy and core types only, so the scheduler can read a profile
in a process that has no ML framework, and the numbers it predicts are those
the fit step predicted bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from approxrt.branch import Branch
from approxrt.contention import ContentionLevels
from approxrt.scheduler.accuracy_model import ContentAccuracyModel
from approxrt.scheduler.accuracy_table import AccuracyTable
from approxrt.scheduler.kernel_views import KernelViews
from approxrt.scheduler.latency_model import BranchLatencyModel
from approxrt.scheduler.model_io import ModelFormatError

# File names of the models (``models/<name>.json``) and what each holds.
BRANCH_LATENCY = "branch_latency"
ACCURACY_TABLE = "accuracy_table"
CONTENT_LIGHT = "accuracy_content_light"
CONTENT_HEAVY = "accuracy_content_heavy"
KERNEL_VIEWS = "accuracy_kernel_views"


@dataclass(frozen=True)
class ProfileModels:
    """Everything the scheduler predicts with.

    Attributes:
        latency: per-branch latency (`BranchLatencyModel`).
        accuracy_table: content-agnostic AP50, or None without accuracy data.
        content_light: content-aware AP50 from light features, or None.
        content_heavy: the same with heavy features too, or None.
        kernel_views: how each kernel's boxes misread the content features
            (`KernelViews`), or None (profiles made before it: read as is).
    """

    latency: BranchLatencyModel
    accuracy_table: AccuracyTable | None = None
    content_light: ContentAccuracyModel | None = None
    content_heavy: ContentAccuracyModel | None = None
    kernel_views: KernelViews | None = None

    def predict_branch(
        self,
        branch: Branch,
        contention: ContentionLevels | None,
        objects: float,
        object_size_px: float,
        frame_wh: tuple[int, int],
        *,
        features: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Latency and accuracy of one branch.

        Args:
            features: content features of the segment (e.g. ``object_speed_px``,
                heavy vectors by name); light keys not given are taken from the
                other arguments. None uses the content-agnostic table.

        Returns:
            ``{"latency_ms": {"detect_frame", "track_frame", "gof_mean"},
            "accuracy": AP50}``; accuracy is NaN when the profile has no
            accuracy models.
        """
        latency = self.latency.predict_one(
            branch, contention, objects, object_size_px, frame_wh
        )
        return {
            "latency_ms": latency,
            "accuracy": self._accuracy(
                branch, objects, object_size_px, frame_wh, features
            ),
        }

    def _accuracy(self, branch, objects, object_size_px, frame_wh, features) -> float:
        if features is None or self.content_light is None:
            if self.accuracy_table is None:
                return float("nan")
            return float(self.accuracy_table.predict([branch])[0])
        given = {
            "objects": objects,
            "object_size_px": object_size_px,
            "object_speed_px": 0.0,
            "frame_w": frame_wh[0],
            "frame_h": frame_wh[1],
            **features,
        }
        model = self.content_light
        heavy = self.content_heavy
        if heavy is not None and all(p in features for p in heavy.heavy_features):
            model = heavy
        return float(model.predict([branch], given)[0])


def load_models(models: Mapping[str, Any]) -> ProfileModels:
    """`ProfileModels` from ``{name: dict}`` as the fit step wrote them.

    Raises:
        ModelFormatError: (a ValueError) naming the model and the key at fault.
    """
    if BRANCH_LATENCY not in models:
        raise ModelFormatError(
            f"models: no {BRANCH_LATENCY!r} model; the profile holds "
            f"{sorted(models) or 'none'}; run `approxrt profile fit` again"
        )
    latency = BranchLatencyModel.from_dict(models[BRANCH_LATENCY], BRANCH_LATENCY)
    table = _optional(models, ACCURACY_TABLE, AccuracyTable)
    light = _optional(models, CONTENT_LIGHT, ContentAccuracyModel)
    heavy = _optional(models, CONTENT_HEAVY, ContentAccuracyModel)
    views = _optional(models, KERNEL_VIEWS, KernelViews)
    return ProfileModels(latency, table, light, heavy, views)


def _optional(models: Mapping[str, Any], name: str, model_class: type) -> Any:
    return model_class.from_dict(models[name], name) if name in models else None
