"""Comparing ``Photometry`` in tests: it holds numpy arrays and has no field-wise ``==``, so two
results are compared through ``fields``, every field as plain Python values."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from typing import Any

from facility_apis.core.photometry import NUMBER_COLUMNS, Photometry


def fields(photometry: Photometry) -> dict[str, Any]:
    """Every field of ``photometry``: a number column as a list of floats with ``None`` where the
    value is NaN (or ``None`` when the column is absent), the rest as held;
    ``fields(a) == fields(b)`` is what ``a == b`` was when the columns were lists."""
    out: dict[str, Any] = {}
    for field in dataclass_fields(photometry):
        value = getattr(photometry, field.name)
        out[field.name] = photometry.values(field.name) if field.name in NUMBER_COLUMNS and value is not None else value
    return out
