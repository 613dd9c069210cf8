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


def primary_fields(ra: float, dec: float) -> list[int]:
    """The primary-grid fields whose focal plane holds ``(ra, dec)`` (degrees), ascending."""
    _fields()
    from ztffields import radec_to_fieldid

    if not (math.isfinite(ra) and math.isfinite(dec)):
        return []
    found = radec_to_fieldid([[ra, dec]])
    return sorted({int(i) for i in found.to_numpy() if int(i) < PRIMARY_LIMIT})
