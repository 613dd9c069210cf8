"""Parse an ATLAS forced photometry result file into SkyPortal photometry.

The file is space-separated text whose header line starts with ``###``; columns are found by
name (newer files add ``PA_DEG``). Rules, after the service's own documentation:

- filters ``c``/``o`` become ``atlasc``/``atlaso``; other filters are dropped with a note;
- a point is an upper limit when its flux SNR is below the threshold, ``chi/N`` > 10, ``m`` >
  ``mag5sig``, ``duJy`` is 0, or a flux value is NaN; its limit is ``mag5sig`` (or, when that is
  not a number, the 3-sigma limit from ``duJy``);
- a point whose MJD or limit cannot be known is dropped with a note.

A file this parser cannot read (no header, a column missing, a row of another width) raises a
*permanent* ``RemoteError``: ATLAS serves a finished task's file as it is, so reading it again
cannot succeed.

``origin`` marks the series in SkyPortal: ``fp`` for difference-image photometry (SkyPortal's own
ATLAS class stores it so, so points it stored are recognised as the same), ``fp_reduced`` for
photometry on the reduced images, which includes the host and reads brighter.
"""

from __future__ import annotations

import gc
import math
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from operator import itemgetter

from ...core.errors import RemoteError
from ...core.photometry import Photometry

REQUIRED = ("MJD", "m", "dm", "uJy", "duJy", "F", "chi/N", "RA", "Dec", "mag5sig")
#: The numeric columns the conversion reads, in the order ``_photometry`` takes them.
NUMBERS = ("MJD", "m", "dm", "uJy", "duJy", "chi/N", "RA", "Dec", "mag5sig")
FILTERS = {"c": "atlasc", "o": "atlaso"}
ORIGIN_DIFFERENCE = "fp"
ORIGIN_REDUCED = "fp_reduced"
MAX_CHI_N = 10.0
NAN = float("nan")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return NAN


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` one at a time (``\n``, ``\r\n`` or ``\r`` ends), without holding a
    list of them all: the file's text is the only copy of it kept."""
    if "\r" in text:
        yield from text.splitlines()
        return
    start, find = 0, text.find
    while True:
        end = find("\n", start)
        if end < 0:
            if start < len(text):
                yield text[start:]
            return
        yield text[start:end]
        start = end + 1


def _header(lines: Iterator[str]) -> dict[str, int]:
    for line in lines:
        if line.startswith("#"):
            names = line.lstrip("#").split()
            return {name: index for index, name in enumerate(names)}
        if line.strip():
            break
    raise RemoteError("ATLAS result file has no header line starting with '#'", permanent=True)


@contextmanager
def _gc_paused():
    """Building 100,000s of small objects, none of them cyclic, triggers garbage collections
    that find nothing and cost a good part of the parse: skip them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _table(lines: Iterator[str], width: int, band: int, wanted: list[int]) -> tuple[list[str], array]:
    """The data lines as columns: their filters, and the ``wanted`` numeric columns row after row
    in one flat array of doubles (``len(wanted)`` values a row; a value that is not a number is
    NaN). No per-row objects outlive their line. Every row must hold ``width`` values."""
    pick = itemgetter(*wanted)
    per_row = len(wanted)
    filters: list[str] = []
    numbers = array("d")
    add_filter, extend = filters.append, numbers.extend
    for number, line in enumerate(lines, start=1):
        row = line.split()
        if len(row) != width:
            if not row or row[0].startswith("#"):
                continue
            raise RemoteError(f"ATLAS result row {number} has {len(row)} values; the header names {width}", permanent=True)
        add_filter(row[band])
        try:
            extend(map(float, pick(row)))
        except ValueError:  # a stray token such as "-" or "null": it costs its own point only
            del numbers[(len(filters) - 1) * per_row :]  # what this row added before the error
            extend([_number(value) for value in pick(row)])
    return filters, numbers


def parse_results(text: str, *, snr_threshold: float = 3.0, origin: str = ORIGIN_DIFFERENCE) -> Photometry:
    """Photometry (of the series ``origin``) from the text of an ATLAS result file; a permanent
    ``RemoteError`` when it is malformed."""
    lines = _lines(text)
    index = _header(lines)
    missing = [name for name in REQUIRED if name not in index]
    if missing:
        raise RemoteError(f"ATLAS result file lacks the column(s) {', '.join(missing)}", permanent=True)
    with _gc_paused():
        filters, numbers = _table(lines, len(index), index["F"], [index[name] for name in NUMBERS])
        if not filters:
            return Photometry([], [], [], [], [], [], [], origin=origin, notes=("the result file holds no measurements",))
        return _photometry(filters, numbers, snr_threshold, origin)


def _photometry(filters: list[str], numbers: array, snr_threshold: float, origin: str) -> Photometry:
    """Apply the conversion rules row by row (see the module docstring); ``numbers`` holds the
    ``NUMBERS`` columns, row after row."""
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
    values = iter(numbers)
    rows = zip(filters, zip(*[values] * len(NUMBERS), strict=True), strict=True)  # one row at a time, read from the array
    for band, (mjd, m, dm, f, df, chi_n, ra, dec, lim) in rows:
        name = FILTERS.get(band)
        if name is None:
            other_filters[band] = other_filters.get(band, 0) + 1
            continue
        if not isfinite(lim):
            lim = -2.5 * log10(3.0 * df) + 23.9 if df > 0 and isfinite(df) else NAN
        if not (isfinite(mjd) and isfinite(lim)):
            unusable += 1
            continue
        detected = (
            df > 0
            and isfinite(f)
            and isfinite(m)
            and isfinite(dm)
            and f / df >= snr_threshold
            and not chi_n > MAX_CHI_N
            and not m > lim
        )
        out_mjd.append(mjd)
        out_mag.append(m if detected else None)
        out_magerr.append(dm if detected else None)
        out_limit.append(lim)
        out_filter.append(name)
        out_ra.append(ra if isfinite(ra) else None)
        out_dec.append(dec if isfinite(dec) else None)

    notes = []
    if other_filters:
        listed = ", ".join(f"{count} in '{band}'" for band, count in sorted(other_filters.items()))
        notes.append(f"dropped points in filters other than c/o: {listed}")
    if unusable:
        notes.append(f"dropped {unusable} point(s) with no usable MJD or limiting magnitude")
    return Photometry(out_mjd, out_mag, out_magerr, out_limit, out_filter, out_ra, out_dec, origin=origin, notes=tuple(notes))
