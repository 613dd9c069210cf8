"""MJD conversion without astropy, checked against astropy as an oracle."""

import random
from datetime import UTC, date, datetime

import pytest

from facility_apis.core.timeutil import from_mjd, parse_utc, to_mjd


def test_known_epochs():
    assert to_mjd("1858-11-17") == 0.0
    assert to_mjd("1970-01-01T00:00:00Z") == 40587.0
    assert to_mjd(date(2000, 1, 1)) == 51544.0
    assert to_mjd("2026-11-21 12:00:00") == 61365.5


def test_parse_utc_normalises_zones_and_naive_values():
    assert parse_utc("2026-01-01T01:00:00+01:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_utc(datetime(2026, 1, 1)).tzinfo is UTC


def test_round_trip():
    moment = datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    assert abs((from_mjd(to_mjd(moment)) - moment).total_seconds()) < 1e-3


def test_agrees_with_astropy():
    time = pytest.importorskip("astropy.time")
    rng = random.Random(7)
    for _ in range(200):
        moment = datetime.fromtimestamp(rng.uniform(63_072_000, 1_750_000_000), tz=UTC)
        expected = time.Time(moment.replace(tzinfo=None), scale="utc").mjd
        assert abs(to_mjd(moment) - expected) * 86400 < 1e-3
