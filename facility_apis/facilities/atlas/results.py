"""Parse an ATLAS forced photometry result file into SkyPortal photometry.

The file is space-separated text whose header line starts with ``###``; columns are found by
name (newer files add ``PA_DEG``). Rules, after the service's own documentation:

- filters ``c``/``o`` become ``atlasc``/``atlaso``; other filters are dropped with a note;
- a point is an upper limit when its flux SNR is below the threshold, ``chi/N`` > 10, ``m`` >
  ``mag5sig``, ``duJy`` is 0, or a flux value is NaN; its limit is ``mag5sig`` (or, when that is
  not a number, the 3-sigma limit from ``duJy``);
- a point whose MJD or limit cannot be known is dropped with a note.
"""

from __future__ import annotations

import math

from ...core.errors import RemoteError
from ...core.photometry import Photometry

REQUIRED = ("MJD", "m", "dm", "uJy", "duJy", "F", "chi/N", "RA", "Dec", "mag5sig")
FILTERS = {"c": "atlasc", "o": "atlaso"}
MAX_CHI_N = 10.0
NAN = float("nan")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return NAN


def _column(rows: list[tuple[str, ...]], index: int) -> list[float]:
    column = rows[index]
    try:
        return list(map(float, column))
    except ValueError:  # a stray token such as "-" or "null": fall back to the tolerant path
        return [_number(value) for value in column]


def _header(lines: list[str]) -> tuple[int, dict[str, int]]:
    for number, line in enumerate(lines):
        if line.startswith("#"):
            names = line.lstrip("#").split()
            return number, {name: index for index, name in enumerate(names)}
        if line.strip():
            break
    raise RemoteError("ATLAS result file has no header line starting with '#'")


def parse_results(text: str, *, snr_threshold: float = 3.0) -> Photometry:
    """Photometry from the text of an ATLAS result file; ``RemoteError`` when it is malformed."""
    lines = text.splitlines()
    header_line, index = _header(lines)
    missing = [name for name in REQUIRED if name not in index]
    if missing:
        raise RemoteError(f"ATLAS result file lacks the column(s) {', '.join(missing)}")
    width = len(index)
    rows = [line.split() for line in lines[header_line + 1 :] if line and not line.startswith("#")]
    rows = [row for row in rows if row]
    bad = next((n for n, row in enumerate(rows) if len(row) != width), None)
    if bad is not None:
        raise RemoteError(f"ATLAS result row {bad + 1} has {len(rows[bad])} values; the header names {width}")
    if not rows:
        return Photometry([], [], [], [], [], [], [], origin="fp", notes=("the result file holds no measurements",))

    columns = list(zip(*rows))
    mjd = _column(columns, index["MJD"])
    mag = _column(columns, index["m"])
    magerr = _column(columns, index["dm"])
    flux = _column(columns, index["uJy"])
    fluxerr = _column(columns, index["duJy"])
    chi_n = _column(columns, index["chi/N"])
    ra = _column(columns, index["RA"])
    dec = _column(columns, index["Dec"])
    limit = _column(columns, index["mag5sig"])
    filters = columns[index["F"]]

    out_mjd: list[float] = []
    out_mag: list[float | None] = []
    out_magerr: list[float | None] = []
    out_limit: list[float] = []
    out_filter: list[str] = []
    out_ra: list[float | None] = []
    out_dec: list[float | None] = []
    other_filters: dict[str, int] = {}
    unusable = 0
    isfinite, log10 = math.isfinite, math.log10
    for i, band in enumerate(filters):
        name = FILTERS.get(band)
        if name is None:
            other_filters[band] = other_filters.get(band, 0) + 1
            continue
        f, df, m, lim = flux[i], fluxerr[i], mag[i], limit[i]
        if not isfinite(lim):
            lim = -2.5 * log10(3.0 * df) + 23.9 if df > 0 and isfinite(df) else NAN
        if not (isfinite(mjd[i]) and isfinite(lim)):
            unusable += 1
            continue
        detected = (
            df > 0
            and isfinite(f)
            and isfinite(m)
            and isfinite(magerr[i])
            and f / df >= snr_threshold
            and not chi_n[i] > MAX_CHI_N
            and not m > lim
        )
        out_mjd.append(mjd[i])
        out_mag.append(m if detected else None)
        out_magerr.append(magerr[i] if detected else None)
        out_limit.append(lim)
        out_filter.append(name)
        out_ra.append(ra[i] if isfinite(ra[i]) else None)
        out_dec.append(dec[i] if isfinite(dec[i]) else None)

    notes = []
    if other_filters:
        listed = ", ".join(f"{count} in '{band}'" for band, count in sorted(other_filters.items()))
        notes.append(f"dropped points in filters other than c/o: {listed}")
    if unusable:
        notes.append(f"dropped {unusable} point(s) with no usable MJD or limiting magnitude")
    return Photometry(out_mjd, out_mag, out_magerr, out_limit, out_filter, out_ra, out_dec, origin="fp", notes=tuple(notes))
