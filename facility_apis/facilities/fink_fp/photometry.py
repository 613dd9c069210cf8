"""Fink's forced photometry rows (Rubin ``DiaForcedSource`` fields) as SkyPortal photometry.

Rules: ``psfFlux``/``psfFluxErr`` are in nJy, so AB magnitudes have zero point 31.4
(``m = 31.4 − 2.5 log10(f / nJy)``); a detection when the flux reaches the SNR threshold times its
uncertainty: ``mag = 31.4 − 2.5 log10(psfFlux)``, ``magerr = 1.0857 · psfFluxErr / psfFlux``; every
point's limit is the magnitude of that threshold flux, ``31.4 − 2.5 log10(threshold · psfFluxErr)``,
and a point below it is an upper limit there. Bands ``u g r i z y`` become ``lsstu`` ... ``lssty``.
``midpointMjdTai`` is TAI: the MJD is moved to UTC (TAI − UTC = 37 s since 2017-01-01, and no
leap second since). Points without a time, a band, or a positive uncertainty are dropped, and so
are points outside the request's optional MJD window; the notes count them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ...core.photometry import Photometry

ZERO_POINT_NJY = 31.4
TAI_MINUS_UTC_DAYS = 37.0 / 86400.0
BANDS = {band: f"lsst{band}" for band in "ugrizy"}
ORIGIN = "fink_fp"
ID, TIME, BAND, FLUX, FLUX_ERR = "r:diaObjectId", "r:midpointMjdTai", "r:band", "r:psfFlux", "r:psfFluxErr"
COLUMNS = (ID, TIME, BAND, FLUX, FLUX_ERR)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def object_id(value: Any) -> str | None:
    """A ``diaObjectId`` cell as its digits; ``None`` when it is not an exact integer (a float
    has lost digits beyond 2^53 and is never trusted)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return value.strip().lstrip("0") or "0"
    return None


def convert(
    rows: Iterable[Mapping[str, Any]], ids: list[str], *, snr_threshold: float = 3.0, mjd_start: float | None = None, mjd_end: float | None = None
) -> tuple[Photometry, Counter[str]]:
    """Photometry of the rows, and the points kept per ``diaObjectId`` (of ``ids``, the ones asked for)."""
    mjd: list[float] = []
    mag: list[float | None] = []
    magerr: list[float | None] = []
    limit: list[float] = []
    bands: list[str] = []
    per_id: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    other_bands: Counter[str] = Counter()
    wanted = set(ids)
    for row in rows:
        found = object_id(row.get(ID))
        if ID in row and found is None:
            dropped["with an unreadable diaObjectId"] += 1
            continue
        if found is not None and found not in wanted:
            dropped["of other objects"] += 1
            continue
        time = _number(row.get(TIME))
        band = BANDS.get(str(row.get(BAND) or ""))
        flux, err = _number(row.get(FLUX)), _number(row.get(FLUX_ERR))
        if time is None:
            dropped["without a time"] += 1
            continue
        if band is None:
            other_bands[str(row.get(BAND))] += 1
            continue
        if err is None or err <= 0:
            dropped["without a positive uncertainty"] += 1
            continue
        when = time - TAI_MINUS_UTC_DAYS
        if (mjd_start is not None and when < mjd_start) or (mjd_end is not None and when > mjd_end):
            dropped["outside the MJD window"] += 1
            continue
        detected = flux is not None and flux > 0 and flux >= snr_threshold * err
        mjd.append(when)
        mag.append(ZERO_POINT_NJY - 2.5 * math.log10(flux) if detected else None)  # type: ignore[arg-type]
        magerr.append(1.0857 * err / flux if detected else None)  # type: ignore[operator]
        limit.append(ZERO_POINT_NJY - 2.5 * math.log10(snr_threshold * err))
        bands.append(band)
        per_id[found if found is not None else ids[0] if len(ids) == 1 else "?"] += 1
    notes = [f"dropped {count} point(s) {why}" for why, count in sorted(dropped.items())]
    if other_bands:
        listed = ", ".join(f"{count} in '{band}'" for band, count in sorted(other_bands.items()))
        notes.append(f"dropped points in bands other than u, g, r, i, z, y: {listed}")
    return Photometry(mjd, mag, magerr, limit, bands, origin=ORIGIN, notes=tuple(notes)), per_id
