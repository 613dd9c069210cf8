"""UTC dates and Modified Julian Dates without astropy (accurate to about a microsecond)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

MJD_UNIX_EPOCH = 40587.0  # MJD of 1970-01-01T00:00:00 UTC


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_utc(value: str | datetime | date) -> datetime:
    """A timezone-aware UTC datetime from an ISO date (``2026-11-21``), an ISO date-time, or a
    datetime (naive means UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        moment = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_mjd(value: str | datetime | date) -> float:
    """Modified Julian Date of a UTC instant."""
    return parse_utc(value).timestamp() / 86400.0 + MJD_UNIX_EPOCH


def from_mjd(mjd: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=mjd - MJD_UNIX_EPOCH)


def iso_date(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


# -- dates typed into request forms -------------------------------------------------------------
#
# SkyPortal's forms and its users send a date in several spellings: "2026-10-31" (a date input),
# "2026-10-31 09:04:33" (SkyPortal's forced-photometry form fills its date defaults so),
# "2026-10-31 09:04:33.736487" (str() of a Python datetime, as SkyPortal's own ATLAS form made
# them), ISO date-times with T, Z or an offset (API scripts). A request form takes any of them and
# the facility works with the UTC date. DATE_PATTERN is the rule as a JSON Schema pattern the
# browser (Ajv) and Python read alike: ASCII classes only, no named groups; Python checks the same
# text with re.fullmatch (its "$" would also match before a final newline), so both sides refuse
# exactly the same strings, impossible calendar dates included.

FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2099, 12, 31)

_YEAR = "(?:19|20)[0-9]{2}"
_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"  # months of 31 days
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"  # months of 30 days
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"  # February, 29th below
)
#: 29 February of the leap years 1904-2096 (1900 is not one, 2000 is).
_LEAP_DAY = "(?:19(?:0[48]|[2468][048]|[13579][26])|20(?:[02468][048]|[13579][26]))-02-29"
_TIME = "[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.][0-9]{1,9})?)?(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?"
#: A UTC date from 1900-01-01 to 2099-12-31, optionally with a time (and a zone): see above.
DATE_PATTERN = f"^(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_DAY})(?:{_TIME})?$"
#: The rule of DATE_PATTERN in words, for descriptions and errors.
DATE_RULE = (
    "a UTC date, YYYY-MM-DD, from 1900-01-01 to 2099-12-31, or a date and time "
    "(YYYY-MM-DD HH:MM[:SS[.fff]], T or a space between, Z or an offset allowed) taken as its UTC date"
)

_DATE_BODY = re.compile(DATE_PATTERN[1:-1])
_DATE_SHAPE = re.compile(f"[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}(?:{_TIME})?")


def utc_date(value: str) -> date:
    """The UTC date of a form's date field (any spelling of ``DATE_PATTERN``); an instant with an
    offset is converted to UTC first, one without is UTC. ``ValueError`` saying the rule in words
    (never quoting the value) for anything else: another spelling, or a day that is not on the
    calendar of 1900-2099 (year 0000, 2026-02-30, 2025-02-29)."""
    _check_spelling(value, _DATE_BODY, _DATE_SHAPE, DATE_RULE, "")
    moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    return moment.date() if moment.tzinfo is None else moment.astimezone(UTC).date()


# -- instants typed into request forms ----------------------------------------------------------
#
# A window start or end in a request form: SkyPortal's request form fills the defaults of
# start_date/end_date as "YYYY-MM-DD HH:MM:SS" in UTC without a zone (FollowupRequestForm.tsx), API
# scripts send ISO date-times with T, Z or an offset. INSTANT_PATTERN is that rule with the calendar
# of DATE_PATTERN and its time required; `format: date-time` is not used because Ajv's and
# Python's date-time checks differ (zone optional, a space, leap seconds, year 0000).

#: A date and time from 1900-01-01 to 2099-12-31, UTC unless it names a zone: see above.
INSTANT_PATTERN = f"^(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_DAY}){_TIME}$"
#: The rule of INSTANT_PATTERN in words, for descriptions and errors.
INSTANT_RULE = (
    "a date and time, YYYY-MM-DD HH:MM:SS (T instead of the space, seconds and a fraction optional), "
    "from 1900 to 2099, in UTC unless it ends with Z or an offset such as +02:00"
)
_INSTANT = re.compile(INSTANT_PATTERN[1:-1])
_INSTANT_SHAPE = re.compile(f"[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}{_TIME}")


def utc_instant(value: str) -> datetime:
    """The UTC instant of a form's date-and-time field (any spelling of ``INSTANT_PATTERN``; no
    zone means UTC), checked with re.fullmatch as ``utc_date`` is. ``ValueError`` saying the rule
    in words (never quoting the value) for anything else: another spelling, or a day not on the
    calendar of 1900-2099."""
    _check_spelling(value, _INSTANT, _INSTANT_SHAPE, INSTANT_RULE, ", with a time")
    return parse_utc(value)


def _check_spelling(value: object, body: re.Pattern[str], shape: re.Pattern[str], rule: str, with_time: str) -> None:
    """``ValueError`` unless ``value`` is a string ``body`` matches whole: "a real calendar date"
    when it has the ``shape`` of one, else the ``rule``; the value itself is never quoted."""
    if not isinstance(value, str) or not body.fullmatch(value):
        if isinstance(value, str) and shape.fullmatch(value):
            raise ValueError(f"must be a real calendar date from {FIRST_DAY} to {LAST_DAY}{with_time}")
        raise ValueError(f"must be {rule}")
