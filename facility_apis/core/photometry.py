"""Photometry in SkyPortal's magnitude space, held column-wise (cheap for large results)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: SkyPortal refuses a photometry upload of more rows than this ("Maximum number of photometry rows
#: to post exceeded: N > 10000. Please break up the data into smaller sets", its handler's
#: MAX_NUMBER_ROWS), through the API and in ``add_external_photometry`` alike.
MAX_UPLOAD_ROWS = 10_000


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@dataclass(frozen=True)
class Photometry:
    """Points of one target: ``mag``/``magerr`` are ``None`` for a non-detection, whose
    ``limiting_mag`` is then the upper limit. ``notes`` say what was left out and why.

    ``origin`` names the series (SkyPortal's ``origin``, part of its duplicate check): one text for
    all points, or a list with one entry per point when the points come from several sources (e.g.
    BHTOM's telescopes). ``altdata``, when given, is one JSON object per point, stored by SkyPortal
    with that point (e.g. the observer who took it).
    """

    mjd: list[float]
    mag: list[float | None]
    magerr: list[float | None]
    limiting_mag: list[float]
    filter: list[str]
    ra: list[float | None] | None = None
    dec: list[float | None] | None = None
    magsys: str = "ab"
    origin: str | list[str | None] | None = None
    notes: tuple[str, ...] = field(default=())
    altdata: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        lengths = {len(column) for column in self._columns().values()}
        if len(lengths) > 1:
            raise ValueError(f"photometry columns differ in length: {sorted(lengths)}")

    def _columns(self) -> dict[str, list[Any]]:
        columns = {
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

    @property
    def detections(self) -> int:
        return sum(1 for mag in self.mag if mag is not None)

    def summary(self) -> str:
        """e.g. ``"120 points (35 detections, 85 upper limits)"``."""
        total, detected = len(self), self.detections
        return f"{_count(total, 'point')} ({_count(detected, 'detection')}, {_count(total - detected, 'upper limit')})"

    def uploads(self, obj_id: str, instrument_id: int, group_ids: Iterable[int] = (), *, max_rows: int = MAX_UPLOAD_ROWS) -> list[dict[str, Any]]:
        """The bodies of ``PUT /api/photometry`` (see :meth:`to_skyportal`) that carry these points
        in uploads SkyPortal accepts: at most ``max_rows`` points each, in order."""
        body = self.to_skyportal(obj_id, instrument_id, group_ids)
        columns = [name for name, value in body.items() if isinstance(value, list) and name != "group_ids"]
        count = len(self)
        return [
            {**body, **{name: body[name][start : start + max_rows] for name in columns}}
            for start in range(0, max(count, 1), max_rows)
        ]

    def to_skyportal(self, obj_id: str, instrument_id: int, group_ids: Iterable[int] = ()) -> dict[str, Any]:
        """The body of SkyPortal's ``PUT /api/photometry`` (magnitude space)."""
        body: dict[str, Any] = {"obj_id": obj_id, "instrument_id": instrument_id, "magsys": self.magsys}
        if isinstance(self.origin, str) and self.origin:
            body["origin"] = self.origin
        groups = sorted(set(group_ids))
        if groups:
            body["group_ids"] = groups
        body |= {name: list(values) for name, values in self._columns().items()}
        return body
