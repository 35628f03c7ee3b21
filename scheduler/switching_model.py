"""The cost of switching detector kernels, from the profile's measured pairs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import numpy as np

from approxrt.profile_schema import KERNEL_COLUMNS
from approxrt.scheduler.latency_components import kernel_name, require_columns
from approxrt.scheduler.model_io import ModelReader, header

if TYPE_CHECKING:
    import pandas as pd


class SwitchingModel:
    """Extra ms of the first detection after switching kernels, per ordered pair.

    The median over all fitted samples of a pair (contention pooled: a switch is
    rare and its cost small beside a GoF). A pair never measured falls back to
    the median of the measured pairs into the same kernel, then of all pairs;
    staying on a kernel costs 0. Negative medians (noise) count as 0.

    Attributes (after `fit`): ``pairs_`` (``"<from>-><to>"`` to ms), ``into_``
    (kernel to ms, the fallback), ``default_ms_``, ``heldout_error_``.
    """

    KIND = "SwitchingModel"
    COLUMNS = (
        *(f"from_{c}" for c in KERNEL_COLUMNS),
        *(f"to_{c}" for c in KERNEL_COLUMNS),
        "extra_ms",
    )

    @classmethod
    def free(cls) -> SwitchingModel:
        """A model of a profile that measured no switch: every switch costs 0."""
        return cls()._set_pairs({})

    def fit(self, table: pd.DataFrame) -> Self:
        if len(table) == 0:  # nothing measured: switching is taken as free
            return self._set_pairs({})
        require_columns(table, self.COLUMNS, self.KIND)
        keyed = table.assign(pair=self.pair_names(table))
        medians = keyed.groupby("pair")["extra_ms"].median().clip(lower=0)
        return self._set_pairs({k: float(v) for k, v in medians.items()})

    def _set_pairs(self, pairs_ms: dict[str, float]) -> Self:
        self.pairs_ = dict(sorted(pairs_ms.items()))
        into: dict[str, list[float]] = {}
        for pair, ms in self.pairs_.items():
            into.setdefault(pair.split("->")[1], []).append(ms)
        self.into_ = {k: float(np.median(v)) for k, v in into.items()}
        values = list(self.pairs_.values())
        self.default_ms_ = float(np.median(values)) if values else 0.0
        self.heldout_error_: dict = {}
        return self

    @staticmethod
    def pair_names(table: pd.DataFrame) -> list[str]:
        """``"<from kernel>-><to kernel>"`` of each row."""
        sides = []
        for side in ("from", "to"):
            knobs = table[[f"{side}_{c}" for c in KERNEL_COLUMNS]].to_numpy()
            sides.append([kernel_name(*row) for row in knobs])
        return [f"{a}->{b}" for a, b in zip(*sides, strict=True)]

    def predict(self, from_kernel: str, to_kernels) -> np.ndarray:
        """``(n,)`` extra ms of switching from ``from_kernel`` to each kernel."""
        return np.array([self.pair_ms(from_kernel, k) for k in to_kernels])

    def pair_ms(self, from_kernel: str, to_kernel: str) -> float:
        if from_kernel == to_kernel:
            return 0.0
        pair = f"{from_kernel}->{to_kernel}"
        return self.pairs_.get(pair, self.into_.get(to_kernel, self.default_ms_))

    def to_dict(self) -> dict:
        return {
            **header(self.KIND),
            "pairs_ms": self.pairs_,
            "heldout_error": self.heldout_error_,
        }

    @classmethod
    def from_dict(cls, data: dict, name: str | None = None) -> Self:
        reader = ModelReader(data, name or cls.KIND, cls.KIND)
        pairs = reader.get("pairs_ms")
        if not isinstance(pairs, dict) or not all(
            isinstance(k, str)
            and "->" in k
            and isinstance(v, int | float)
            and not isinstance(v, bool)
            for k, v in pairs.items()
        ):
            raise reader.error(
                "pairs_ms", 'expected an object of "<from>-><to>" kernel pairs to ms'
            )
        model = cls()._set_pairs({k: float(v) for k, v in pairs.items()})
        model.heldout_error_ = reader.optional("heldout_error", {})
        return model
