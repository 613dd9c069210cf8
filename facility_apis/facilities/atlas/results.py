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

import numpy as np

from ...core.errors import RemoteError
from ...core.photometry import Photometry
from .text_columns import read_table

REQUIRED = ("MJD", "m", "dm", "uJy", "duJy", "F", "chi/N", "RA", "Dec", "mag5sig")
#: The numeric columns the conversion reads, in the order ``_photometry`` takes them.
NUMBERS = ("MJD", "m", "dm", "uJy", "duJy", "chi/N", "RA", "Dec", "mag5sig")
FILTERS = {"c": "atlasc", "o": "atlaso"}
BANDS = tuple(FILTERS)
_FILTER_NAMES = np.array(list(FILTERS.values()), dtype=object)
ORIGIN_DIFFERENCE = "fp"
ORIGIN_REDUCED = "fp_reduced"
MAX_CHI_N = 10.0
#: Rows below this many bytes of text are read row by row: numpy's per-call cost outweighs its
#: speed on a small file (a 20-row result, 2.5 KB: 0.68 ms column-wise against 0.15 ms row by row;
#: level near 150 rows, 20 KB), and a gateway follows thousands of small results at once.
COLUMNS_FROM = 16_384
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


def _header(lines: Iterator[str]) -> tuple[str, dict[str, int]]:
    """The header line and the index of each column it names."""
    for line in lines:
        if line.startswith("#"):
            names = line.lstrip("#").split()
            return line, {name: index for index, name in enumerate(names)}
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
    ``RemoteError`` when it is malformed.

    A regular file (ASCII, one row a line, see ``text_columns``) of at least ``COLUMNS_FROM`` bytes
    of rows is read column-wise with numpy; any other goes row by row, which reads every irregular
    case and raises on a malformed one. Both give the same values, those of ``float()`` on each
    value."""
    lines = _lines(text)
    header, index = _header(lines)
    missing = [name for name in REQUIRED if name not in index]
    if missing:
        raise RemoteError(f"ATLAS result file lacks the column(s) {', '.join(missing)}", permanent=True)
    wanted = [index[name] for name in NUMBERS]
    with _gc_paused():
        body = text.find(header) + len(header)  # only blank lines come before the header
        table = read_table(text, body, len(index), wanted, index["F"], BANDS) if len(text) - body >= COLUMNS_FROM else None
        if table is None:
            table = _columns(*_table(lines, len(index), index["F"], wanted))
        numbers, codes, other_filters = table
        if not len(codes):
            return Photometry([], [], [], [], [], [], [], origin=origin, notes=("the result file holds no measurements",))
        return _photometry(numbers, codes, other_filters, snr_threshold, origin)


def _columns(filters: list[str], numbers: array) -> tuple[list[np.ndarray], np.ndarray, dict[str, int]]:
    """The row-by-row table in ``read_table``'s form, each column contiguous (as the encoder of
    the upload bodies writes it directly)."""
    code = {band: index for index, band in enumerate(BANDS)}
    codes = np.array([code.get(band, len(BANDS)) for band in filters], np.uint8)
    other: dict[str, int] = {}
    for band in filters:
        if band not in code:
            other[band] = other.get(band, 0) + 1
    return list(np.ascontiguousarray(np.frombuffer(numbers, np.float64).reshape(-1, len(NUMBERS)).T)), codes, other


def _photometry(numbers: list[np.ndarray], codes: np.ndarray, other_filters: dict[str, int], snr_threshold: float, origin: str) -> Photometry:
    """Apply the conversion rules (see the module docstring) to the ``NUMBERS`` columns
    (``numbers``) of points in the filters ``codes`` (indices in ``BANDS``). ``numbers`` is
    consumed: a column is let go once converted, which keeps the peak memory low."""
    column = dict(zip(NUMBERS, numbers, strict=True))
    numbers.clear()
    lim, df = column["mag5sig"], column["duJy"]
    for row in np.flatnonzero(~np.isfinite(lim)).tolist():  # the 3-sigma limit, by math.log10 as ever
        dujy = float(df[row])
        lim[row] = -2.5 * math.log10(3.0 * dujy) + 23.9 if dujy > 0 and math.isfinite(dujy) else NAN
    known = codes < len(BANDS)
    usable = known & np.isfinite(column["MJD"]) & np.isfinite(lim)
    kept = int(np.count_nonzero(usable))
    unusable = int(np.count_nonzero(known)) - kept
    rows = np.flatnonzero(usable) if kept < len(usable) else slice(None)
    m, dm, f, df, chi_n, lim = (column.pop(name)[rows] for name in ("m", "dm", "uJy", "duJy", "chi/N", "mag5sig"))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # NaN and infinite values are rules, not errors
        detected = (df > 0) & np.isfinite(f) & np.isfinite(m) & np.isfinite(dm) & (f / df >= snr_threshold) & ~(chi_n > MAX_CHI_N) & ~(m > lim)
    del f, df, chi_n
    notes = []
    if other_filters:
        listed = ", ".join(f"{count} in '{band}'" for band, count in sorted(other_filters.items()))
        notes.append(f"dropped points in filters other than c/o: {listed}")
    if unusable:
        notes.append(f"dropped {unusable} point(s) with no usable MJD or limiting magnitude")
    m[~detected] = NAN  # an upper limit has no magnitude
    dm[~detected] = NAN
    return Photometry(
        column.pop("MJD")[rows],
        m,
        dm,
        lim,
        _FILTER_NAMES[codes[rows]].tolist(),  # references to the two names, not a text per point
        column.pop("RA")[rows],
        column.pop("Dec")[rows],
        origin=origin,
        notes=tuple(notes),
    )
