"""Right ascension and declination in sexagesimal parts, rounded before they are split.

Every facility and notifier that writes ``HH:MM:SS.ss`` / ``±DD:MM:SS.s`` uses these two
functions (the Liverpool Telescope's RTML, Gemini's ToO URL, notification texts)::

    >>> str(ra_hms(359.99999999, 2))          # never 23:59:60.00, never 24:00:00.00
    '00:00:00.00'
    >>> str(dec_dms(-0.5 / 3600, 1))          # the sign of a declination just below 0 is kept
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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

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
