"""`ContentionLevels`: how much of the device other programs take, as one value.

The profiler generates these levels, the profile records them with every sample,
and the scheduler predicts latency at them. The units are the generator's knobs:

- ``cpu``: CPU cores kept busy by other programs; a fraction is a duty cycle
  (1.5 = one core fully busy and a second one half of the time).
- ``membw_mbps``: memory bandwidth other programs use, in MB/s.
- ``gpu_pct``: GPU utilisation other programs cause, in percent.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

_SPEC_SHAPE = "cpu=N,membw=MBPS,gpu=PCT (any subset, e.g. cpu=1.5,membw=2000)"
_SPEC_KEYS = {"cpu": "cpu", "membw": "membw_mbps", "gpu": "gpu_pct"}


@dataclass(frozen=True)
class ContentionLevels:
    """Contention on the three resources; all zero means an idle device."""

    cpu: float = 0.0
    membw_mbps: float = 0.0
    gpu_pct: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(
                    f"ContentionLevels.{name}: expected a number, got {value!r}"
                )
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"ContentionLevels.{name}: expected a finite number >= 0, "
                    f"got {value!r}"
                )
        if self.gpu_pct > 100:
            raise ValueError(
                f"ContentionLevels.gpu_pct: expected 0..100, got {self.gpu_pct!r}"
            )

    def to_dict(self) -> dict[str, float]:
        # Spelt out: `asdict` deep-copies field by field, and every scheduler
        # decision records its contention.
        return {
            "cpu": float(self.cpu),
            "membw_mbps": float(self.membw_mbps),
            "gpu_pct": float(self.gpu_pct),
        }

    def __str__(self) -> str:
        return f"cpu={self.cpu:g},membw={self.membw_mbps:g},gpu={self.gpu_pct:g}"

    @classmethod
    def parse(cls, spec: str) -> ContentionLevels:
        """Levels from ``"cpu=1,membw=2000"`` (the CLI's and trace files' form)."""
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, text = part.partition("=")
            field = _SPEC_KEYS.get(key.strip())
            if not sep or field is None:
                raise ValueError(
                    f"contention {spec!r}: bad part {part!r}; expected {_SPEC_SHAPE}"
                )
            try:
                values[field] = float(text)
            except ValueError:
                raise ValueError(
                    f"contention {spec!r}: {key.strip()} must be a number, got {text!r}"
                ) from None
        return cls(**values)
