"""The one JSON encoder for what the package stores and sends: photometry columns as numpy arrays
are written by orjson in C, with no Python object per value.

Differences from ``json.dumps`` (both read back to the same values): NaN and infinities become
``null`` (JSON has no NaN; SkyPortal reads ``null`` as "no value"), non-ASCII text is written as
UTF-8, not ``\\u`` escapes, and a float is written in the shortest form that reads back to the
same double (``1e-7``, not ``1e-07``). ``orjson.Fragment`` holds JSON already encoded, written as
it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

Fragment = orjson.Fragment
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _other(value: Any) -> Any:
    """What orjson cannot write itself: a strided numpy view (copied contiguous)."""
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(value: Any) -> bytes:
    """``value`` as UTF-8 JSON: dicts (keys made text), lists, tuples, numbers, text, ``None``,
    numpy arrays of numbers or booleans and ``Fragment``. Raises
    ``TypeError`` naming the first value of another type (e.g. a ``set``)."""
    try:
        return orjson.dumps(value, default=_other, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"cannot write as JSON: {exc}") from None


def encode_text(value: Any) -> str:
    """``encode(value)`` as text (what a database's JSON column takes)."""
    return encode(value).decode("utf-8")
