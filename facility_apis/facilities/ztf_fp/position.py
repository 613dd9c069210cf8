"""Where to measure: the source's coordinates, or a flux-weighted centroid of the host's photometry.

The form's choices are SkyPortal's own words (its ZTF forced-photometry form), so payloads made for
SkyPortal's class keep working. A centroid is the SNR-weighted mean position of the host's
detections of the source: points with a position, a positive flux and uncertainty, SNR
(``flux / fluxerr``) above 3, and not themselves forced photometry (SkyPortal's ``origin`` holds
``fp``); the two narrower choices keep only points from an alert stream, and only those of ZTF
(instrument ``ZTF`` or its camera ``CFH12k``). The mean is taken on unit vectors, so it is right
across RA 0/360 and near the poles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ...core.interface import HostPoint

SOURCE = "Source (object's coordinates)"
CENTROID = "Flux weighted centroid"
CENTROID_ALERTS = "Flux weighted centroid (alert photometry only)"
CENTROID_ZTF_ALERTS = "Flux weighted centroid (ZTF alert photometry only)"
CHOICES = (SOURCE, CENTROID, CENTROID_ALERTS, CENTROID_ZTF_ALERTS)
MIN_SNR = 3.0
ZTF_INSTRUMENTS = frozenset({"ztf", "cfh12k"})


def wants_centroid(position: object) -> bool:
    return position in (CENTROID, CENTROID_ALERTS, CENTROID_ZTF_ALERTS)


def rule(position: str) -> str:
    """Which points a centroid choice uses, in words (for an error message)."""
    words = "detections with a position, SNR above 3 and an origin without 'fp'"
    if position == CENTROID_ALERTS:
        words += ", from an alert stream"
    elif position == CENTROID_ZTF_ALERTS:
        words += ", from an alert stream, measured by ZTF"
    return words


def _usable(point: HostPoint, position: str) -> float | None:
    """The point's weight (its SNR) if the choice uses it, else ``None``."""
    values = (point.ra, point.dec, point.flux, point.fluxerr)
    if any(value is None or not math.isfinite(value) for value in values):  # type: ignore[arg-type]
        return None
    if point.fluxerr <= 0 or "fp" in (point.origin or "").lower():  # type: ignore[operator]
        return None
    if position in (CENTROID_ALERTS, CENTROID_ZTF_ALERTS) and not point.alert:
        return None
    if position == CENTROID_ZTF_ALERTS and (point.instrument or "").lower() not in ZTF_INSTRUMENTS:
        return None
    snr = point.flux / point.fluxerr  # type: ignore[operator]
    return snr if snr > MIN_SNR else None


def flux_weighted_centroid(points: Iterable[HostPoint], position: str) -> tuple[float, float, int] | None:
    """``(ra, dec, points used)`` in degrees for a centroid choice; ``None`` when no point qualifies."""
    x = y = z = 0.0
    used = 0
    for point in points:
        weight = _usable(point, position)
        if weight is None:
            continue
        ra, dec = math.radians(point.ra), math.radians(point.dec)  # type: ignore[arg-type]
        x += weight * math.cos(dec) * math.cos(ra)
        y += weight * math.cos(dec) * math.sin(ra)
        z += weight * math.sin(dec)
        used += 1
    norm = math.sqrt(x * x + y * y + z * z)
    if not used or norm == 0:
        return None
    ra = math.degrees(math.atan2(y, x)) % 360.0
    dec = math.degrees(math.asin(max(-1.0, min(1.0, z / norm))))
    return (0.0 if ra >= 360.0 else ra), dec, used
