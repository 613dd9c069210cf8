"""Photometry in SkyPortal's magnitude space, held as columns: numpy arrays of doubles, written
to JSON in C (``core.json_text``), so a result of 100,000 points makes no Python object per
point on its way from the facility's file to SkyPortal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .json_text import encode

#: SkyPortal refuses a photometry upload of more rows than this ("Maximum number of photometry rows
#: to post exceeded: N > 10000. Please break up the data into smaller sets", its handler's
#: MAX_NUMBER_ROWS), through the API and in ``add_external_photometry`` alike.
MAX_UPLOAD_ROWS = 10_000
#: The columns held as float64 arrays (NaN where a point has no value).
NUMBER_COLUMNS = ("mjd", "mag", "magerr", "limiting_mag", "ra", "dec")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _numbers(values: Sequence[float | None] | np.ndarray, name: str) -> np.ndarray:
    """``values`` as a one-dimensional float64 array, ``None`` read as NaN (an array of doubles is
    taken as it is, not copied); ``ValueError`` naming the column for anything else."""
    if isinstance(values, np.ndarray) and values.dtype == np.float64 and values.ndim == 1:
        return values
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"photometry column {name!r} holds a value that is not a number") from None
    if array.ndim != 1:
        raise ValueError(f"photometry column {name!r} must be one-dimensional")
    return array


@dataclass(frozen=True, eq=False)
class Photometry:
    """Points of one target. ``mjd`` (MJD, UTC), ``mag``, ``magerr`` and ``limiting_mag`` (AB
    unless ``magsys`` says otherwise), ``ra`` and ``dec`` (degrees, ICRS) are float64 arrays, given
    as arrays or as sequences with ``None`` for a missing value: ``mag`` and ``magerr`` are NaN for
    a non-detection, whose ``limiting_mag`` is then the upper limit; ``ra``/``dec`` are NaN where
    unknown (``ra`` and ``dec`` go together). ``filter`` holds SkyPortal bandpass names
    (``atlaso``, ``ztfg``). ``notes`` say what was left out and why. Columns of different lengths,
    or a column that is not numbers, raise ``ValueError``.

    ``origin`` names the series (SkyPortal's ``origin``, part of its duplicate check): one text for
    all points, or a list with one entry per point when the points come from several sources (e.g.
    BHTOM's telescopes). ``altdata``, when given, is one JSON object per point, stored by SkyPortal
    with that point (e.g. the observer who took it).
    """

    mjd: np.ndarray
    mag: np.ndarray
    magerr: np.ndarray
    limiting_mag: np.ndarray
    filter: Sequence[str]
    ra: np.ndarray | None = None
    dec: np.ndarray | None = None
    magsys: str = "ab"
    origin: str | list[str | None] | None = None
    notes: tuple[str, ...] = field(default=())
    altdata: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if (self.ra is None) != (self.dec is None):
            raise ValueError("photometry columns 'ra' and 'dec' go together: give both or neither")
        for name in NUMBER_COLUMNS:
            values = getattr(self, name)
            if values is not None:
                object.__setattr__(self, name, _numbers(values, name))
        lengths = {len(column) for column in self._columns().values()}
        if len(lengths) > 1:
            raise ValueError(f"photometry columns differ in length: {sorted(lengths)}")

    def _columns(self) -> dict[str, Any]:
        columns: dict[str, Any] = {
            "mjd": self.mjd,
            "mag": self.mag,
            "magerr": self.magerr,
            "limiting_mag": self.limiting_mag,
            "filter": self.filter,
        }
        if self.ra is not None and self.dec is not None:
            columns |= {"ra": self.ra, "dec": self.dec}
        if isinstance(self.origin, list):
            columns["origin"] = self.origin
        if self.altdata is not None:
            columns["altdata"] = self.altdata
        return columns

    def __len__(self) -> int:
        return len(self.mjd)

    def values(self, name: str) -> list[Any]:
        """The column ``name`` as Python values, ``None`` where a number is missing (NaN): for
        reading a result and for tests, not for the way to SkyPortal (see ``uploads``);
        ``KeyError`` for a column these points do not hold (``ra`` of points without positions)."""
        columns = self._columns()
        if name not in columns:
            raise KeyError(f"these points hold no column {name!r} (they hold {', '.join(columns)})")
        column = columns[name]
        if name in NUMBER_COLUMNS:
            return [None if value != value else value for value in column.tolist()]  # NaN != NaN
        return list(column)

    @property
    def detections(self) -> int:
        """How many points are detections (a ``mag`` that is not NaN)."""
        return int(np.count_nonzero(~np.isnan(self.mag)))

    def summary(self) -> str:
        """e.g. ``"120 points (35 detections, 85 upper limits)"``."""
        total, detected = len(self), self.detections
        return f"{_count(total, 'point')} ({_count(detected, 'detection')}, {_count(total - detected, 'upper limit')})"

    def uploads(self, obj_id: str, instrument_id: int, group_ids: Iterable[int] = (), *, max_rows: int = MAX_UPLOAD_ROWS) -> list[bytes]:
        """The JSON bodies (UTF-8) of SkyPortal's ``PUT /api/photometry`` (magnitude space,
        columnar: ``obj_id``, ``instrument_id``, ``magsys``, ``origin`` and ``group_ids`` once, a
        list per column) that carry these points in uploads SkyPortal accepts: at most
        ``max_rows`` points each, in order, at least one. A NaN (a non-detection's ``mag``, an
        unknown ``ra``) is written as ``null``, which SkyPortal reads as no value."""
        fixed: dict[str, Any] = {"obj_id": obj_id, "instrument_id": instrument_id, "magsys": self.magsys}
        if isinstance(self.origin, str) and self.origin:
            fixed["origin"] = self.origin
        groups = sorted(set(group_ids))
        if groups:
            fixed["group_ids"] = groups
        columns = self._columns()
        return [
            encode({**fixed, **{name: values[start : start + max_rows] for name, values in columns.items()}})
            for start in range(0, max(len(self), 1), max_rows)
        ]
