"""MJD conversion without astropy, checked against astropy as an oracle."""

import random
import re
from datetime import UTC, date, datetime

import pytest

from facility_apis.core.timeutil import INSTANT_PATTERN, from_mjd, parse_utc, to_mjd, utc_instant


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


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-11-21 20:00:00", datetime(2026, 11, 21, 20, tzinfo=UTC)),  # SkyPortal's request form: UTC, no zone
        ("2026-11-21T20:00:00Z", datetime(2026, 11, 21, 20, tzinfo=UTC)),
        ("2026-11-21T21:00+01:00", datetime(2026, 11, 21, 20, tzinfo=UTC)),
        ("2026-11-21 20:00", datetime(2026, 11, 21, 20, tzinfo=UTC)),
        ("2026-11-21T20:00:00.250Z", datetime(2026, 11, 21, 20, 0, 0, 250000, tzinfo=UTC)),
        ("2028-02-29 00:00:00", datetime(2028, 2, 29, tzinfo=UTC)),
        ("2000-02-29 00:00:00", datetime(2000, 2, 29, tzinfo=UTC)),
    ],
)
def test_a_form_instant_in_any_spelling_is_its_utc_instant(text, instant):
    assert utc_instant(text) == instant
    assert re.search(INSTANT_PATTERN, text)  # what the form checks, as jsonschema reads it


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("2026-02-30 12:00:00", "real calendar date"),
        ("2027-02-29 12:00:00", "real calendar date"),
        ("1900-02-29 12:00:00", "real calendar date"),
        ("0000-01-01T00:00:00Z", "real calendar date"),
        ("2026-11-21", "a date and time"),  # an instant needs its time
        ("2026-12-31T23:59:60Z", "a date and time"),  # no leap seconds
        ("21/11/2026 20:00", "a date and time"),
        ("2026-11-21 20:00:00\n", "a date and time"),  # Python's "$" lets it through the pattern; JavaScript's does not
    ],
)
def test_anything_else_is_refused_in_words_without_the_value(text, words):
    with pytest.raises(ValueError) as caught:
        utc_instant(text)
    assert words in str(caught.value) and text.strip() not in str(caught.value)
    if not text.endswith("\n"):
        assert not re.search(INSTANT_PATTERN, text)  # the form refuses it too
