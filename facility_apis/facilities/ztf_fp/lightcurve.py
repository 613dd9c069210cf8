"""Parse a ZTF forced photometry light curve into SkyPortal photometry.

The file (IPAC's ZFPS output) is text: ``#`` comment lines (the requested position and column
descriptions), then a line naming the columns, separated by commas and spaces (``index, field,
ccdid, qid, filter, ..., jd, ..., forcediffimflux, forcediffimfluxunc, ..., procstatus``; some
versions comment it out as well), then one whitespace-separated row per epoch, ``null`` where a
value is missing. Columns are found by name, so extra or reordered columns do not matter.

Rules (the ZFPS documentation, as SkyPortal applies them):

- ``mjd = jd − 2400000.5``; filters ``ZTF_g``/``ZTF_r``/``ZTF_i`` become ``ztfg``/``ztfr``/``ztfi``;
- a detection when ``forcediffimflux / forcediffimfluxunc`` reaches the SNR threshold (flux and
  uncertainty positive, ``zpdiff`` known): ``mag = zpdiff − 2.5 log10(forcediffimflux)``,
  ``magerr = 1.0857 · forcediffimfluxunc / forcediffimflux``; otherwise an upper limit at
  ``diffmaglim``; AB magnitudes;
- the procstatus policy: an epoch is kept when each of its codes (one, or several
  comma-separated) is 0, or, with ``keep_flagged``, one of 56, 57 and 58;
- epochs in other filters, with another procstatus, or without ``jd`` or ``diffmaglim`` are
  dropped, and the notes count them.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from ...core.errors import RemoteError
from ...core.photometry import Photometry
from .codes import FLAGGED

REQUIRED = ("jd", "filter", "forcediffimflux", "forcediffimfluxunc", "zpdiff", "diffmaglim", "procstatus")
FILTERS = {"ZTF_g": "ztfg", "ZTF_r": "ztfr", "ZTF_i": "ztfi"}
JD_MJD = 2400000.5
ORIGIN = "fp"
_NAMES = re.compile(r"[\s,]+")


def _names(line: str) -> list[str]:
    return [name for name in _NAMES.split(line.lstrip("#").strip()) if name]


def _header(lines: list[str]) -> tuple[int, list[str]]:
    """The line naming the columns (commented out or not) and its names."""
    for number, line in enumerate(lines):
        names = _names(line)
        if all(column in names for column in REQUIRED):
            return number, names
        if line.strip() and not line.lstrip().startswith("#"):
            break  # data before any header line
    raise RemoteError("the ZTF light curve has no header line naming " + ", ".join(REQUIRED), permanent=True)


def _value(text: str) -> float | None:
    if text.lower() == "null":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _codes(text: str) -> tuple[int, ...] | None:
    """The procstatus codes of an epoch (``"0"``, ``"56,57"``); ``None`` when unreadable."""
    try:
        return tuple(int(code) for code in text.split(",") if code.strip())
    except ValueError:
        return None


def parse_lightcurve(text: str, *, snr_threshold: float = 3.0, keep_flagged: bool = False) -> Photometry:
    """Photometry from the text of a ZFPS light curve; ``RemoteError`` when it is malformed (no
    header line naming the required columns, or a row whose width differs from the header's)."""
    lines = text.splitlines()
    header_at, names = _header(lines)
    index = {name: position for position, name in enumerate(names)}
    allowed = {0} | (FLAGGED if keep_flagged else set())
    mjd: list[float] = []
    mag: list[float | None] = []
    magerr: list[float | None] = []
    limit: list[float] = []
    bands: list[str] = []
    dropped_status: Counter[str] = Counter()
    dropped_filter: Counter[str] = Counter()
    no_jd = no_limit = 0
    for number, line in enumerate(lines[header_at + 1 :], start=header_at + 2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        row = line.split()
        if len(row) != len(names):
            raise RemoteError(f"ZTF light curve line {number} has {len(row)} values; its header names {len(names)}")
        codes = _codes(row[index["procstatus"]])
        if codes is None or not codes or not set(codes) <= allowed:
            dropped_status[row[index["procstatus"]]] += 1
            continue
        band = FILTERS.get(row[index["filter"]])
        if band is None:
            dropped_filter[row[index["filter"]]] += 1
            continue
        jd, lim = _value(row[index["jd"]]), _value(row[index["diffmaglim"]])
        if jd is None:
            no_jd += 1
            continue
        if lim is None:
            no_limit += 1
            continue
        flux, unc, zp = (_value(row[index[name]]) for name in ("forcediffimflux", "forcediffimfluxunc", "zpdiff"))
        detected = flux is not None and unc is not None and zp is not None and unc > 0 and flux > 0 and flux / unc >= snr_threshold
        mjd.append(jd - JD_MJD)
        mag.append(zp - 2.5 * math.log10(flux) if detected else None)  # type: ignore[operator,arg-type]
        magerr.append(1.0857 * unc / flux if detected else None)  # type: ignore[operator]
        limit.append(lim)
        bands.append(band)
    notes = []
    if dropped_status:
        listed = ", ".join(f"{count} with {status}" for status, count in sorted(dropped_status.items()))
        kept = "0, 56, 57 or 58" if keep_flagged else "0"
        notes.append(f"dropped epochs with a procstatus other than {kept}: {listed}")
    if dropped_filter:
        listed = ", ".join(f"{count} in '{band}'" for band, count in sorted(dropped_filter.items()))
        notes.append(f"dropped epochs in filters other than ZTF_g/ZTF_r/ZTF_i: {listed}")
    if no_jd:
        notes.append(f"dropped {no_jd} epoch(s) without a jd")
    if no_limit:
        notes.append(f"dropped {no_limit} epoch(s) without a diffmaglim")
    if not mjd and not notes:
        notes.append("the light curve holds no epochs")
    return Photometry(mjd, mag, magerr, limit, bands, origin=ORIGIN, notes=tuple(notes))
