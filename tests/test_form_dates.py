"""Date fields of request forms: every spelling SkyPortal and its users send is accepted as its UTC
date before the rules run, impossible dates are refused in words, and the browser's pattern and
Python's verdict agree (issue 9, item 3)."""

import calendar
import re
from datetime import date, timedelta

import jsonschema
import pytest

from facility_apis.core.errors import PayloadError
from facility_apis.core.timeutil import DATE_PATTERN, FIRST_DAY, LAST_DAY, utc_date
from facility_apis.facilities.atlas import ATLASFacility

#: Every spelling observed in use: SkyPortal's stock ATLAS form (str(datetime)), SkyPortal's
#: forced-photometry form ("YYYY-MM-DD HH:MM:SS"), API scripts (ISO dates and date-times).
SPELLINGS = [
    ("2026-10-31", date(2026, 10, 31)),
    ("2026-10-31 09:04:33.736487", date(2026, 10, 31)),
    ("2026-10-31 09:04:33", date(2026, 10, 31)),
    ("2026-10-31T09:04:33", date(2026, 10, 31)),
    ("2026-10-31T09:04", date(2026, 10, 31)),
    ("2026-10-31T09:04:33Z", date(2026, 10, 31)),
    ("2026-10-31T09:04:33.5+00:00", date(2026, 10, 31)),
    ("2026-10-31T23:30:00-05:00", date(2026, 11, 1)),  # 04:30 UTC the next day
    ("2026-11-01T01:00:00+0200", date(2026, 10, 31)),
    ("2024-02-29", date(2024, 2, 29)),
    ("2000-02-29 00:00:00", date(2000, 2, 29)),
]

IMPOSSIBLE = ["0000-01-01", "2026-02-30", "2025-02-29", "1900-02-29", "2026-13-01", "2026-00-10", "2026-04-31", "1899-12-31", "2100-01-01"]
ARABIC_INDIC_DATE = "\u0662\u0660\u0662\u0666-\u0661\u0660-\u0663\u0661"  # digits Python's \d would take
MALFORMED = ["31/10/2026", "2026-10-31T25:00:00", "2026-10-31 09:04:61", "2026-1-31", "yesterday", "", "2026-10-31\n", " 2026-10-31", ARABIC_INDIC_DATE]


@pytest.mark.parametrize(("text", "day"), SPELLINGS)
def test_every_date_spelling_in_use_is_read_as_its_utc_date(text, day):
    assert utc_date(text) == day
    assert re.fullmatch(DATE_PATTERN.strip("^$"), text)


@pytest.mark.parametrize("text", IMPOSSIBLE + MALFORMED)
def test_impossible_and_malformed_dates_are_refused_in_words(text):
    with pytest.raises(ValueError, match=r"date") as caught:
        utc_date(text)
    assert "pattern" not in str(caught.value)


def test_the_forms_pattern_is_exactly_the_calendar_from_1900_to_2099():
    """The pattern the browser checks is the rule Python applies: every day of every month of
    1900-2099 and nothing else (day 00 to 31 of month 00 to 13 tried)."""
    pattern = re.compile(DATE_PATTERN.strip("^$"))
    for year in (1900, 1901, 1904, 1999, 2000, 2023, 2024, 2026, 2099):
        for month in range(0, 14):
            days = calendar.monthrange(year, month)[1] if 1 <= month <= 12 else 0
            for day in range(0, 32):
                text = f"{year:04d}-{month:02d}-{day:02d}"
                assert bool(pattern.fullmatch(text)) == (1 <= day <= days), text
    day, count = FIRST_DAY, 0
    while day <= LAST_DAY:  # every day of the range, exhaustively
        assert pattern.fullmatch(day.isoformat()), day
        day += timedelta(days=1)
        count += 1
    assert count == 73049


def test_the_pattern_uses_only_syntax_python_and_javascript_read_alike():
    """No \\d, \\s, \\w (Unicode-wide in Python, ASCII in JavaScript), no named or look-around
    groups, no $ that Python lets match before a final newline without the check above."""
    assert not re.search(r"\\[dswDSW]|\(\?P|\(\?<|\(\?=|\(\?!", DATE_PATTERN)
    assert DATE_PATTERN.startswith("^") and DATE_PATTERN.endswith("$")


def test_atlas_normalises_every_spelling_to_the_date_before_its_rules():
    facility = ATLASFacility()
    payload = facility.validate_payload({"start_date": "2026-10-01 09:04:33.736487", "end_date": "2026-10-31T23:30:00-05:00"})
    assert payload["start_date"] == "2026-10-01" and payload["end_date"] == "2026-11-01"
    with pytest.raises(PayloadError) as caught:
        facility.validate_payload({"start_date": "2026-10-31 10:00:00", "end_date": "2026-10-01"})
    assert [e.path for e in caught.value.errors] == ["$.end_date"]


@pytest.mark.parametrize("text", ["0000-01-01", "2026-02-30", "31/10/2026"])
def test_atlas_refuses_an_impossible_date_naming_the_field_and_the_rule(text):
    with pytest.raises(PayloadError) as caught:
        ATLASFacility().validate_payload({"start_date": text, "end_date": "2026-10-31"})
    (error,) = caught.value.errors
    assert error.path == "$.start_date"
    assert "date" in error.message and "1900" in error.message and "pattern" not in error.message


def test_the_served_form_states_the_date_rule_in_words_and_declares_no_format():
    schema = ATLASFacility().request_schema()
    for key in ("start_date", "end_date"):
        spec = schema["properties"][key]
        assert "format" not in spec, "Ajv and Python disagree on format: date (year 0000); the pattern says it all"
        assert spec["pattern"] == DATE_PATTERN
        assert "YYYY-MM-DD" in spec["description"] and "1900" in spec["description"] and "UTC" in spec["description"]


def test_a_field_the_package_fills_itself_is_never_served_as_required():
    """SkyPortal validates `required` itself with the served form before the class runs: a payload
    without dates must pass it, and the package then fills the dates at validation time."""
    facility = ATLASFacility()
    served = facility.request_schema()
    filled = set(facility.request_defaults()) | {key for key, spec in served["properties"].items() if "default" in spec}
    assert not filled & set(served.get("required", []))
    jsonschema.validate({}, served)  # SkyPortal's own check: no format checker, no defaults filled
    payload = facility.validate_payload({})
    assert date.fromisoformat(payload["end_date"]) - date.fromisoformat(payload["start_date"]) == timedelta(days=30)
