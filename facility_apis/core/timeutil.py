"""UTC dates and Modified Julian Dates without astropy (accurate to about a microsecond)."""

from __future__ import annotations

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
