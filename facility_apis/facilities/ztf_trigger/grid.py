"""The ZTF field grid: field centres and the fields that hold a position, from ``ztffields``.

``ztffields`` (the maintained package of ZTF's field definitions, M. Rigault) is an optional
dependency (extra ``ztf``), imported only when a field is looked up. Its table holds the primary
grid (ids below 880) and the secondary grid (ids above 999), centres in degrees (ICRS).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ...core.errors import PayloadError

#: Ids of ZTF's primary grid are below this (ztffields' own split of its table).
PRIMARY_LIMIT = 880
MISSING = "cannot be checked: this deployment lacks the ZTF field grid (install facility-apis[ztf], which brings ztffields)"


def _fields() -> Any:
    """``ztffields.Fields``, or ``PayloadError`` on ``$.field_ids`` when the package is missing."""
    try:
        from ztffields import Fields
    except ImportError:
        raise PayloadError.single("$.field_ids", MISSING) from None
    return Fields


def centres(field_ids: Iterable[int]) -> dict[int, tuple[float, float]]:
    """Each field's centre ``(ra, dec)`` in degrees; ``PayloadError`` naming every id the grid
    does not have."""
    table = _fields().get_field_centroids()
    known = {int(i) for i in table.index}
    wanted = [int(i) for i in field_ids]
    unknown = [i for i in wanted if i not in known]
    if unknown:
        listed = ", ".join(str(i) for i in unknown)
        verb = "is not a ZTF field id" if len(unknown) == 1 else "are not ZTF field ids"
        raise PayloadError.single("$.field_ids", f"{listed} {verb} (the ZTF field grid has no such field)")
    return {i: (round(float(table.loc[i, "ra"]), 6), round(float(table.loc[i, "dec"]), 6)) for i in wanted}


def fields_holding(ra: float, dec: float) -> list[int]:
    """The fields of both grids whose focal plane holds ``(ra, dec)`` (degrees), ascending."""
    _fields()
    from ztffields import radec_to_fieldid

    if not (math.isfinite(ra) and math.isfinite(dec)):
        return []
    return sorted({int(i) for i in radec_to_fieldid([[ra, dec]]).to_numpy()})


def primary_fields(ra: float, dec: float) -> list[int]:
    """The primary-grid fields whose focal plane holds ``(ra, dec)`` (degrees), ascending."""
    return [i for i in fields_holding(ra, dec) if i < PRIMARY_LIMIT]


def refuse_fields_missing(field_ids: Iterable[int], ra: float, dec: float) -> None:
    """``PayloadError`` on ``$.field_ids`` naming each given field whose focal plane does not hold
    ``(ra, dec)``: ZTF would observe the wrong sky there. The message lists the fields that do."""
    holding = fields_holding(ra, dec)
    missing = [int(i) for i in field_ids if int(i) not in holding]
    if missing:
        listed = ", ".join(map(str, missing))
        verb = "does not hold" if len(missing) == 1 else "do not hold"
        fields = f"the fields holding it are {', '.join(map(str, holding))}" if holding else "no ZTF field holds it"
        raise PayloadError.single("$.field_ids", f"{listed} {verb} the source (RA {ra:.5f}, Dec {dec:+.5f}): {fields}")
