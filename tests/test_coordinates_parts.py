"""Sexagesimal RA/Dec: rounded before splitting, checked by properties against exact arithmetic and
against astropy where astropy is right."""

import doctest
import math
import re
from fractions import Fraction

import pytest
from astropy import units as u
from astropy.coordinates import Angle
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from facility_apis.core import coordinates as sexagesimal
from facility_apis.core.coordinates import dec_dms, ra_hms

DECIMALS = st.integers(min_value=0, max_value=6)
RA = st.floats(min_value=0.0, max_value=360.0, exclude_max=True, allow_nan=False)
DEC = st.floats(min_value=-90.0, max_value=90.0, allow_nan=False)


def ra_degrees(part) -> Fraction:
    return (part.whole * 3600 + part.minutes * 60 + Fraction(part.units, 10**part.decimals)) / 240


def dec_degrees(part) -> Fraction:
    value = part.whole + Fraction(part.minutes, 60) + Fraction(part.units, 10**part.decimals * 3600)
    return -value if part.sign == "-" else value


def test_the_module_examples_hold():
    assert doctest.testmod(sexagesimal).failed == 0


@given(RA, DECIMALS)
def test_ra_parts_are_in_range_and_within_half_a_last_digit(ra, decimals):
    part = ra_hms(ra, decimals)
    assert 0 <= part.whole <= 23 and 0 <= part.minutes <= 59 and 0 <= part.units < 60 * 10**decimals
    assert part.sign == "+" and not part.signed
    assert re.fullmatch(r"\d\d:\d\d:\d\d" + (rf"\.\d{{{decimals}}}" if decimals else ""), str(part))
    difference = abs(ra_degrees(part) - Fraction(ra))
    difference = min(difference, 360 - difference)  # 24 h wraps to 0 h
    assert difference <= Fraction(1, 2 * 240 * 10**decimals)


@given(DEC, DECIMALS)
def test_dec_parts_are_in_range_keep_the_sign_and_are_within_half_a_last_digit(dec, decimals):
    part = dec_dms(dec, decimals)
    assert 0 <= part.whole <= 90 and 0 <= part.minutes <= 59 and 0 <= part.units < 60 * 10**decimals
    if part.whole == 90:
        assert part.minutes == part.units == 0
    assert re.fullmatch(r"[+-]\d\d:\d\d:\d\d" + (rf"\.\d{{{decimals}}}" if decimals else ""), str(part))
    assert abs(dec_degrees(part) - Fraction(dec)) <= Fraction(1, 2 * 3600 * 10**decimals)
    rounded_to_zero = part.whole == part.minutes == part.units == 0
    assert part.sign == ("-" if dec < 0 and not rounded_to_zero else "+")


def _clear_of_ties(value: float, per_degree: int, decimals: int) -> bool:
    """Far enough from a rounding tie that float and exact arithmetic agree on the digit."""
    scaled = value * per_degree * 10**decimals
    return abs(scaled - math.floor(scaled) - 0.5) > 1e-4


@settings(deadline=None)  # astropy's first conversion loads its tables
@given(RA, DECIMALS)
def test_ra_agrees_with_astropy_except_where_astropy_writes_24_hours(ra, decimals):
    assume(_clear_of_ties(ra, 240, decimals))
    theirs = Angle(ra, unit=u.deg).to_string(unit=u.hourangle, sep=":", precision=decimals, pad=True)
    assume(not theirs.startswith("24"))
    assert str(ra_hms(ra, decimals)) == theirs


@settings(deadline=None)
@given(DEC, DECIMALS)
def test_dec_agrees_with_astropy(dec, decimals):
    assume(_clear_of_ties(abs(dec), 3600, decimals))
    part = dec_dms(dec, decimals)
    theirs = Angle(dec, unit=u.deg).to_string(unit=u.deg, sep=":", precision=decimals, pad=True, alwayssign=True)
    # astropy keeps a "-" on a value that rounds to zero; this module writes zero as "+".
    if part.whole == part.minutes == part.units == 0:
        theirs = "+" + theirs[1:]
    assert str(part) == theirs


@pytest.mark.parametrize(
    ("ra", "decimals", "text"),
    [
        (359.99999999, 2, "00:00:00.00"),  # splitting first gives 23:59:60.00; astropy 24:00:00.00
        ((23 * 3600 + 59 * 60 + 59.9999) / 240, 3, "00:00:00.000"),  # RA 23:59:59.9999 rounds up and wraps
        ((23 * 3600 + 59 * 60 + 59.9999) / 240, 4, "23:59:59.9999"),
        ((12 * 3600 + 59 * 60 + 59.996) / 240, 2, "13:00:00.00"),  # the carry runs through minutes to hours
        (0.0, 0, "00:00:00"),
        (-15.0, 0, "23:00:00"),  # any finite angle, taken modulo 360°
        (375.0, 1, "01:00:00.0"),
    ],
)
def test_ra_edge_cases(ra, decimals, text):
    assert str(ra_hms(ra, decimals)) == text


@pytest.mark.parametrize(
    ("dec", "decimals", "text"),
    [
        (-0.5 / 3600, 1, "-00:00:00.5"),  # Dec −00:00:00.5 keeps its sign
        (-0.5 / 3600, 2, "-00:00:00.50"),
        (-0.4 / 3600, 0, "+00:00:00"),  # rounds to zero, which has no sign
        (-0.0, 1, "+00:00:00.0"),
        (-(59 / 60 + 59.996 / 3600), 2, "-01:00:00.00"),
        (-89.99999999, 2, "-90:00:00.00"),
        (90.0, 1, "+90:00:00.0"),
        (12.5, 0, "+12:30:00"),
    ],
)
def test_dec_edge_cases(dec, decimals, text):
    assert str(dec_dms(dec, decimals)) == text


def test_parts_and_separator():
    part = dec_dms(-12.5, 2)
    assert (part.sign, part.whole, part.minutes, part.units, part.seconds_text, part.seconds) == ("-", 12, 30, 0, "00.00", 0.0)
    assert part.text(" ") == "-12 30 00.00"
    assert ra_hms(150.1234, 2).text("") == "100029.62"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ra_hms(math.nan), "finite"),
        (lambda: ra_hms(math.inf), "finite"),
        (lambda: dec_dms(90.0001), "from -90 to 90"),
        (lambda: dec_dms(math.nan), "from -90 to 90"),
        (lambda: ra_hms(1.0, 10), "decimals"),
        (lambda: dec_dms(1.0, -1), "decimals"),
        (lambda: dec_dms(1.0, 1.5), "decimals"),
    ],
)
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
