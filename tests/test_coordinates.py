"""Sexagesimal RA/Dec and galactic l/b (core.coordinates), checked against astropy, which is a test
dependency only."""

import math

import astropy.units as u
import pytest
from astropy.coordinates import Angle, SkyCoord
from hypothesis import given, settings
from hypothesis import strategies as st

from facility_apis.core.coordinates import ICRS_TO_GALACTIC, dms, galactic, hms

ras = st.floats(min_value=0.0, max_value=360.0, exclude_max=True, allow_nan=False)
decs = st.floats(min_value=-90.0, max_value=90.0, allow_nan=False)


def _astropy_hms(ra: float, precision: int) -> str:
    text = Angle(ra * u.deg).to_string(unit=u.hour, sep=":", precision=precision, pad=True)
    return "00" + text[2:] if text.startswith("24") else text  # astropy may show 24 h; ours wraps


def _astropy_dms(dec: float, precision: int) -> str:
    return Angle(dec * u.deg).to_string(unit=u.deg, sep=":", precision=precision, pad=True, alwayssign=True)


@settings(max_examples=400, deadline=None)
@given(ras, st.integers(min_value=0, max_value=3))
def test_hms_matches_astropy(ra, precision):
    assert hms(ra, precision) == _astropy_hms(ra, precision)


@settings(max_examples=400, deadline=None)
@given(decs, st.integers(min_value=0, max_value=2))
def test_dms_matches_astropy_except_for_the_sign_of_zero(dec, precision):
    ours, theirs = dms(dec, precision), _astropy_dms(dec, precision)
    if set(ours[1:]) <= {"0", ":", "."}:
        assert ours[0] == "+"  # what is shown is zero: no "-00:00:00.0"
        assert ours[1:] == theirs[1:]
    else:
        assert ours == theirs


@pytest.mark.parametrize(
    ("ra", "precision", "expected"),
    [
        (0.0, 2, "00:00:00.00"),
        (150.1, 2, "10:00:24.00"),
        (359.99999999, 2, "00:00:00.00"),  # rounds up to 24 h: wraps, never "24:00:00.00"
        (14.99999999, 2, "01:00:00.00"),  # never "00:59:60.00"
        (0.24999999, 1, "00:01:00.0"),  # never "00:00:60.0"
        (10.0, 0, "00:40:00"),
    ],
)
def test_hms_carries_instead_of_showing_sixty(ra, precision, expected):
    assert hms(ra, precision) == expected


@pytest.mark.parametrize(
    ("dec", "precision", "expected"),
    [
        (-0.5 / 3600, 1, "-00:00:00.5"),  # the sign of a value under one arcsecond is kept
        (-0.04 / 3600, 1, "+00:00:00.0"),  # shown as zero: no sign to keep
        (-0.0, 1, "+00:00:00.0"),
        (29.999999999, 1, "+30:00:00.0"),  # never "+29:59:60.0"
        (-12.5, 2, "-12:30:00.00"),
        (90.0, 1, "+90:00:00.0"),
        (-90.0, 1, "-90:00:00.0"),
    ],
)
def test_dms_rounds_carries_and_keeps_the_sign(dec, precision, expected):
    assert dms(dec, precision) == expected


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(bad):
    with pytest.raises(ValueError, match="finite"):
        hms(bad)
    with pytest.raises(ValueError, match="finite"):
        dms(bad)


def test_the_rotation_matrix_is_orthonormal():
    for i in range(3):
        for j in range(3):
            dot = sum(ICRS_TO_GALACTIC[i][k] * ICRS_TO_GALACTIC[j][k] for k in range(3))
            assert dot == pytest.approx(1.0 if i == j else 0.0, abs=1e-12)


def _separation_arcsec(l1, b1, l2, b2):
    l1, b1, l2, b2 = map(math.radians, (l1, b1, l2, b2))
    cosine = math.sin(b1) * math.sin(b2) + math.cos(b1) * math.cos(b2) * math.cos(l1 - l2)
    return math.degrees(math.acos(min(1.0, max(-1.0, cosine)))) * 3600


def test_galactic_agrees_with_astropy_to_a_few_hundredths_of_an_arcsecond():
    points = [(ra, dec) for ra in range(0, 360, 7) for dec in range(-89, 90, 11)] + [(266.40499, -28.93617), (192.85948, 27.12825)]
    coords = SkyCoord([p[0] for p in points] * u.deg, [p[1] for p in points] * u.deg, frame="icrs").galactic
    for (ra, dec), expected_l, expected_b in zip(points, coords.l.deg, coords.b.deg, strict=True):
        longitude, latitude = galactic(ra, dec)
        assert 0.0 <= longitude < 360.0 and -90.0 <= latitude <= 90.0
        assert _separation_arcsec(longitude, latitude, expected_l, expected_b) < 0.05


def test_galactic_landmarks():
    centre_l, centre_b = galactic(266.40499, -28.93617)  # Sgr A*, at the galactic centre
    assert min(centre_l, 360 - centre_l) < 0.06 and abs(centre_b) < 0.05
    assert galactic(192.85948, 27.12825)[1] == pytest.approx(90.0, abs=1e-4)  # the north galactic pole


def test_separation_deg_is_exact_for_small_and_large_angles():
    from facility_apis.core.coordinates import separation_deg

    assert separation_deg(10.0, 20.0, 10.0, 20.0) == 0.0
    assert separation_deg(0.0, 0.0, 180.0, 0.0) == pytest.approx(180.0)
    assert separation_deg(359.9999, 0.0, 0.0001, 0.0) * 3600 == pytest.approx(0.72, rel=1e-6)  # across RA 0
    assert separation_deg(0.0, 89.9999, 180.0, 89.9999) * 3600 == pytest.approx(0.72, rel=1e-6)  # over the pole
