"""BHTOM's photometry download, read: the semicolon-separated light curve and its filter names.

Layout (BHTOM API guide, "Photometry download"; the file BHTOM writes with pandas ``to_csv(sep=";")``,
sorted by MJD): a header line ``MJD;Magnitude;Error;Facility;Filter;Observer``, then one line per
active magnitude point. A negative ``Error`` marks a non-detection whose ``Magnitude`` is the limit
(guide, upload section: "Non-detections (limits) can be denoted with negative mag error"; the
calibration writes ``-1``). A point is unique by all six columns (BHTOM's ``ReducedDatum`` is
``unique_together`` on them).

BHTOM names a filter ``band(CATALOG)`` for photometry calibrated by its network (``V(GaiaSP)``,
``G(Gaia)``) and ``SURVEY(band)`` for survey data it ingests (``ZTF(zg)``, ``ATLAS(o)``), as its
light-curve plots list them. :data:`FILTERS` maps each to a SkyPortal bandpass (sncosmo's names) and
to the offset that makes the magnitude AB; a filter not in the table is reported and its points
kept out, never guessed.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ...core.errors import RemoteError
from ...core.photometry import Photometry

COLUMNS = ("MJD", "Magnitude", "Error", "Facility", "Filter", "Observer")

#: Johnson-Cousins AB - Vega offsets (Blanton & Roweis 2007, AJ 133, 734, table 1).
_JC = {"U": 0.79, "B": -0.09, "V": 0.02, "R": 0.21, "I": 0.45}
#: Gaia EDR3 AB - Vega offsets from the passbands' zero points (Riello et al. 2021, A&A 649, A3, table C.2).
_GAIA = {"G": 0.1136, "BP": 0.0155, "RP": 0.3561}

#: BHTOM filter name -> (SkyPortal bandpass, magnitude offset to AB). Vega-based filters carry
#: their AB - Vega offset; AB-based filters carry 0. The one table of the mapping.
FILTERS: dict[str, tuple[str, float]] = {
    # The network's photometry, standardised on Gaia synthetic photometry (Johnson-Cousins in Vega, SDSS in AB).
    "U(GaiaSP)": ("bessellux", _JC["U"]),
    "B(GaiaSP)": ("bessellb", _JC["B"]),
    "V(GaiaSP)": ("bessellv", _JC["V"]),
    "R(GaiaSP)": ("bessellr", _JC["R"]),
    "I(GaiaSP)": ("besselli", _JC["I"]),
    "u(GaiaSP)": ("sdssu", 0.0),
    "g(GaiaSP)": ("sdssg", 0.0),
    "r(GaiaSP)": ("sdssr", 0.0),
    "i(GaiaSP)": ("sdssi", 0.0),
    "z(GaiaSP)": ("sdssz", 0.0),
    # Gaia (alerts and DR3 epoch photometry), Vega.
    "G(Gaia)": ("gaia::g", _GAIA["G"]),
    "BP(Gaia)": ("gaia::gbp", _GAIA["BP"]),
    "RP(Gaia)": ("gaia::grp", _GAIA["RP"]),
    "G(GAIA)": ("gaia::g", _GAIA["G"]),
    "BP(GAIA)": ("gaia::gbp", _GAIA["BP"]),
    "RP(GAIA)": ("gaia::grp", _GAIA["RP"]),
    "G(GAIA_ALERTS)": ("gaia::g", _GAIA["G"]),
    "GSA(G)": ("gaia::g", _GAIA["G"]),
    "G(GAIA DR3)": ("gaia::g", _GAIA["G"]),
    "BP(GAIA DR3)": ("gaia::gbp", _GAIA["BP"]),
    "RP(GAIA DR3)": ("gaia::grp", _GAIA["RP"]),
    # Surveys BHTOM ingests, AB unless noted.
    "ZTF(zg)": ("ztfg", 0.0),
    "ZTF(zr)": ("ztfr", 0.0),
    "ZTF(zi)": ("ztfi", 0.0),
    "ATLAS(c)": ("atlasc", 0.0),
    "ATLAS(o)": ("atlaso", 0.0),
    "PS1(g)": ("ps1::g", 0.0),
    "PS1(r)": ("ps1::r", 0.0),
    "PS1(i)": ("ps1::i", 0.0),
    "PS1(z)": ("ps1::z", 0.0),
    "SDSS(u)": ("sdssu", 0.0),
    "SDSS(g)": ("sdssg", 0.0),
    "SDSS(r)": ("sdssr", 0.0),
    "SDSS(i)": ("sdssi", 0.0),
    "SDSS(z)": ("sdssz", 0.0),
    "DECAPS(g)": ("desg", 0.0),
    "DECAPS(r)": ("desr", 0.0),
    "DECAPS(i)": ("desi", 0.0),
    "DECAPS(z)": ("desz", 0.0),
    "ASASSN(g)": ("sdssg", 0.0),
    "ASASSN(V)": ("bessellv", _JC["V"]),
    "OGLE(I)": ("besselli", _JC["I"]),
    "KMTNET(I)": ("besselli", _JC["I"]),
}

#: Signal-to-noise ratio of the limiting magnitude given with a detection.
DEPTH_SIGMA = 5.0
_SNR_PER_MAG_ERROR = 2.5 / math.log(10)  # SNR ~ 1.0857 / error


@dataclass(frozen=True)
class Point:
    """One line of the download, as BHTOM wrote it."""

    mjd: float
    magnitude: float
    error: float
    facility: str
    filter: str
    observer: str

    @property
    def night(self) -> int:
        """The integer MJD: the observing night the point belongs to (cursor bookkeeping)."""
        return math.floor(self.mjd)

    def key(self) -> str:
        """The point's identity, as BHTOM's uniqueness rule has it (all six columns)."""
        return f"{self.mjd!r};{self.magnitude!r};{self.error!r};{self.facility};{self.filter};{self.observer}"


def parse_download(text: str) -> tuple[list[Point], int]:
    """``(points, unreadable line count)`` of a download. A header other than :data:`COLUMNS`
    raises ``RemoteError``: the answer is not BHTOM's photometry layout. A line with a missing or
    non-finite number is counted and skipped."""
    reader = csv.reader(io.StringIO(text), delimiter=";")
    header = next(reader, None)
    if header is None or tuple(column.strip() for column in header) != COLUMNS:
        found = ";".join(header or [])[:80] or "nothing"
        raise RemoteError(f"BHTOM's photometry download did not start with the header {';'.join(COLUMNS)} (found {found!r})")
    points: list[Point] = []
    unreadable = 0
    for line in reader:
        if not any(cell.strip() for cell in line):
            continue
        try:
            mjd, magnitude, error = (float(cell) for cell in line[:3])
            facility, band, observer = (cell.strip() for cell in line[3:6])
        except ValueError:
            unreadable += 1
            continue
        if len(line) != len(COLUMNS) or not all(math.isfinite(x) for x in (mjd, magnitude, error)) or mjd <= 0:
            unreadable += 1
            continue
        points.append(Point(mjd, magnitude, error, facility, band, observer))
    return points, unreadable


def to_photometry(points: Iterable[Point], instrument_filters: Iterable[str] = ()) -> tuple[Photometry, Counter[str]]:
    """SkyPortal photometry (AB) of ``points`` and the count of points kept out, by reason.

    A detection's ``limiting_mag`` is the 5-sigma depth its error implies; a limit (negative error)
    has no magnitude. Each point keeps its BHTOM facility (``origin`` ``bhtom:<facility>``) and, in
    its ``altdata``, the facility, observer and BHTOM filter name. With ``instrument_filters``
    (the SkyPortal instrument's bandpasses), a point in another bandpass is kept out too: SkyPortal
    would refuse the whole upload for it.
    """
    allowed = set(instrument_filters)
    mjd, mag, magerr, limit, bands, origins, extras = [], [], [], [], [], [], []
    kept_out: Counter[str] = Counter()
    for point in points:
        mapped = FILTERS.get(point.filter)
        if mapped is None:
            kept_out[f"filter '{point.filter}' has no SkyPortal bandpass"] += 1
            continue
        bandpass, offset = mapped
        if allowed and bandpass not in allowed:
            kept_out[f"bandpass {bandpass} is not among the instrument's filters"] += 1
            continue
        value = round(point.magnitude + offset, 4)
        mjd.append(point.mjd)
        bands.append(bandpass)
        origins.append(f"bhtom:{point.facility}" if point.facility else "bhtom")
        extras.append({"bhtom_filter": point.filter, "facility": point.facility, "observer": point.observer})
        if point.error < 0:
            mag.append(None)
            magerr.append(None)
            limit.append(value)
        else:
            mag.append(value)
            magerr.append(point.error)
            depth = 2.5 * math.log10(_SNR_PER_MAG_ERROR / (DEPTH_SIGMA * point.error)) if point.error > 0 else 0.0
            limit.append(round(value + depth, 4))
    notes = tuple(f"{count} point{'s' if count > 1 else ''} kept out: {reason}" for reason, count in sorted(kept_out.items()))
    photometry = Photometry(mjd, mag, magerr, limit, bands, origin=origins, notes=notes, altdata=extras)
    return photometry, kept_out
