"""Sky coordinates for people: sexagesimal RA/Dec and galactic l/b, without astropy.

Every facility and notifier that writes ``HH:MM:SS.ss`` / ``±DD:MM:SS.s`` uses ``ra_hms`` and
``dec_dms`` (their parts, for protocols that send them apart, as RTML does) or ``hms``/``dms``
(the text)::

    >>> hms(359.99999999, 2)                  # never 23:59:60.00, never 24:00:00.00
    '00:00:00.00'
    >>> dms(-0.5 / 3600, 1)                   # the sign of a declination just below 0 is kept
    '-00:00:00.5'
    >>> part = dec_dms(-12.5, 2)
    >>> part.sign, part.whole, part.minutes, part.seconds_text
    ('-', 12, 30, '00.00')

The value is first rounded, exactly (rational arithmetic, halves away from zero), to a whole
number of the last digit kept (e.g. hundredths of a second), then split with integer division.
So seconds and minutes are always below 60, an RA that rounds up to 24 h wraps to 0 h, and a
declination that rounds up to 90° reads ``+90:00:00``. The sign of a declination is ``-`` when the
*rounded* value is below zero: ``-0.5″`` kept to one decimal is ``-00:00:00.5``, kept to none it
is ``+00:00:00`` (zero has no sign). Naive conversions get these wrong: splitting first gives
``23:59:60.00``, astropy's ``Angle.to_string`` gives ``24:00:00.00``, and ``int()`` of ``-0.5°``
drops the sign.

``galactic(ra, dec)`` rotates ICRS to galactic coordinates with the matrix of the Hipparcos
Catalogue (ESA 1997, Vol. 1, §1.5.3, eq. 1.5.11), which realises the IAU 1958 galactic system in
the ICRS. It agrees with astropy's ``Galactic`` frame to within 0.03 arcsecond (astropy goes
through FK5, whose frame bias the matrix leaves out), more than enough to label a source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

#: ICRS → galactic rotation: rows are the galactic x, y, z axes in ICRS (Hipparcos, eq. 1.5.11).
ICRS_TO_GALACTIC = (
    (-0.0548755604162154, -0.8734370902348850, -0.4838350155487132),
    (+0.4941094278755837, -0.4448296299600112, +0.7469822444972189),
    (-0.8676661490190047, -0.1980763734312015, +0.4559837761750669),
)

#: Most digits kept after the decimal point of the seconds.
MAX_DECIMALS = 9

_SECONDS_PER_DEGREE_RA = 240  # 86400 s of time / 360°
_ARCSECONDS_PER_DEGREE = 3600


@dataclass(frozen=True)
class Sexagesimal:
    """An angle as ``sign``, ``whole`` (hours of RA, or degrees of Dec), ``minutes`` and seconds.

    The seconds are held exactly as ``units``, an integer count of ``10**-decimals`` seconds
    (``seconds_text`` spells them with exactly ``decimals`` digits after the point; ``seconds``
    is the float). ``signed`` says whether the sign is part of the text (declinations) or not
    (right ascensions, always ``+``). ``str()`` gives ``[±]WW:MM:SS[.s...]``.
    """

    sign: str
    whole: int
    minutes: int
    units: int
    decimals: int
    signed: bool

    @property
    def seconds(self) -> float:
        return self.units / 10**self.decimals

    @property
    def seconds_text(self) -> str:
        """The seconds with two integer digits and ``decimals`` decimals, e.g. ``"05.20"``."""
        whole, fraction = divmod(self.units, 10**self.decimals)
        return f"{whole:02d}" + (f".{fraction:0{self.decimals}d}" if self.decimals else "")

    def text(self, separator: str = ":") -> str:
        """``[±]WW<sep>MM<sep>SS.ss``; the sign only for a declination."""
        sign = self.sign if self.signed else ""
        return f"{sign}{self.whole:02d}{separator}{self.minutes:02d}{separator}{self.seconds_text}"

    def __str__(self) -> str:
        return self.text()


def _scale(decimals: int) -> int:
    if not (isinstance(decimals, int) and 0 <= decimals <= MAX_DECIMALS):
        raise ValueError(f"decimals must be an integer from 0 to {MAX_DECIMALS}")
    return 10**decimals


def _half_up(value: Fraction) -> int:
    """``value`` (not negative) rounded to an integer, halves up."""
    return math.floor(value + Fraction(1, 2))


def _split(units: int, per_second: int) -> tuple[int, int, int]:
    """Whole, minutes and second-units of a count of ``1/per_second`` seconds."""
    whole, rest = divmod(units, 3600 * per_second)
    minutes, seconds = divmod(rest, 60 * per_second)
    return whole, minutes, seconds


def ra_hms(ra_deg: float, decimals: int = 2) -> Sexagesimal:
    """Right ascension ``ra_deg`` (degrees, any finite value, taken modulo 360°) as hours,
    minutes and seconds of time with ``decimals`` decimals (0 to 9): hours 0 to 23, minutes and
    seconds below 60. ``ValueError`` for a value that is not finite or a bad ``decimals``."""
    scale = _scale(decimals)
    if not math.isfinite(ra_deg):
        raise ValueError("right ascension must be a finite number of degrees")
    day = 86400 * scale
    units = _half_up((Fraction(ra_deg) % 360) * _SECONDS_PER_DEGREE_RA * scale) % day
    hours, minutes, seconds = _split(units, scale)
    return Sexagesimal("+", hours, minutes, seconds, decimals, signed=False)


def dec_dms(dec_deg: float, decimals: int = 1) -> Sexagesimal:
    """Declination ``dec_deg`` (degrees, −90 to 90) as a sign, degrees, arcminutes and
    arcseconds with ``decimals`` decimals (0 to 9); the sign is ``-`` exactly when the rounded
    value is below zero. ``ValueError`` for a value outside [−90, 90], not finite, or a bad
    ``decimals``."""
    scale = _scale(decimals)
    if not (math.isfinite(dec_deg) and -90.0 <= dec_deg <= 90.0):
        raise ValueError("declination must be a finite number of degrees from -90 to 90")
    units = _half_up(abs(Fraction(dec_deg)) * _ARCSECONDS_PER_DEGREE * scale)
    degrees, minutes, seconds = _split(units, scale)
    sign = "-" if dec_deg < 0 and units > 0 else "+"
    return Sexagesimal(sign, degrees, minutes, seconds, decimals, signed=True)


def hms(ra: float, precision: int = 2) -> str:
    """Right ascension in degrees as ``HH:MM:SS.ss`` (``precision`` decimals of a second of time),
    in [00:00:00, 24:00:00); see :func:`ra_hms`."""
    return str(ra_hms(ra, precision))


def dms(dec: float, precision: int = 1) -> str:
    """Declination in degrees as ``±DD:MM:SS.s`` (``precision`` decimals of an arcsecond), the
    sign always written; see :func:`dec_dms`."""
    return str(dec_dms(dec, precision))


def galactic(ra: float, dec: float) -> tuple[float, float]:
    """Galactic longitude and latitude ``(l, b)`` in degrees, ``l`` in [0, 360), for ICRS ``ra``,
    ``dec`` in degrees."""
    alpha, delta = math.radians(ra), math.radians(dec)
    vector = (math.cos(delta) * math.cos(alpha), math.cos(delta) * math.sin(alpha), math.sin(delta))
    x, y, z = (sum(row[i] * vector[i] for i in range(3)) for row in ICRS_TO_GALACTIC)
    longitude = math.degrees(math.atan2(y, x)) % 360.0
    latitude = math.degrees(math.atan2(z, math.hypot(x, y)))
    return (0.0 if longitude >= 360.0 else longitude), latitude


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """The angle between two positions (degrees in and out), by the haversine formula, which
    stays exact for the small separations cone searches and duplicate checks compare."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    a = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(a))))
