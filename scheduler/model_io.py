"""Reading fitted models back from their JSON dicts, with errors that say where.

Every model's ``to_dict()`` is plain JSON (numbers, strings, lists) with a
``kind`` and a ``format_version``; ``from_dict`` reads it back through these
helpers, so a malformed file fails with the model's name and the key at fault
rather than deep inside numpy. Floats survive JSON exactly (Python writes the
shortest repr that reads back to the same double), which is what lets a profile
loaded in a fresh process predict bit-identical numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

FORMAT_VERSION = 1


class ModelFormatError(ValueError):
    """A fitted model's dict is malformed: names the model and the key."""


class ModelReader:
    """Checked access to one model's dict; errors name ``model`` and the key."""

    def __init__(self, data: object, model: str, kind: str) -> None:
        if not isinstance(data, Mapping):
            raise ModelFormatError(
                f"model {model!r}: expected a JSON object, got {type(data).__name__}"
            )
        self.data, self.model = data, model
        found = data.get("kind")
        if found != kind:
            raise ModelFormatError(
                f"model {model!r}: key 'kind' is {found!r}, expected {kind!r}"
            )
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelFormatError(
                f"model {model!r}: key 'format_version' is {version!r}; this approxrt "
                f"reads version {FORMAT_VERSION}; fit the profile again"
            )

    def error(self, key: str, problem: str) -> ModelFormatError:
        return ModelFormatError(f"model {self.model!r}: key {key!r}: {problem}")

    def get(self, key: str) -> Any:
        """The value at dotted ``key``; a number part indexes a list."""
        value: Any = self.data
        for part in key.split("."):
            if isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            elif isinstance(value, Mapping) and part in value:
                value = value[part]
            else:
                raise self.error(key, "missing")
        return value

    def optional(self, key: str, default: Any = None) -> Any:
        try:
            return self.get(key)
        except ModelFormatError:
            return default

    def number(self, key: str) -> float:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {value!r}")
        return float(value)

    def strings(self, key: str) -> list[str]:
        value = self.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of strings, got {value!r}")
        return value

    def array(self, key: str, shape: tuple[int | None, ...]) -> np.ndarray:
        """A float64 array of ``shape`` (None = any length along that axis)."""
        value = self.get(key)
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.error(key, "expected a (nested) list of numbers") from None
        if array.ndim != len(shape) or any(
            want is not None and got != want
            for got, want in zip(array.shape, shape, strict=True)
        ):
            wanted = "x".join("n" if s is None else str(s) for s in shape)
            raise self.error(key, f"expected shape {wanted}, got {array.shape}")
        if not np.all(np.isfinite(array)):
            raise self.error(key, "holds a non-finite number")
        return array


def header(kind: str) -> dict[str, Any]:
    """The keys every model dict starts with."""
    return {"kind": kind, "format_version": FORMAT_VERSION}


def json_number(value: float) -> float | None:
    """``value`` as a JSON-safe float; None for NaN or infinity (no data)."""
    value = float(value)
    return value if math.isfinite(value) else None
