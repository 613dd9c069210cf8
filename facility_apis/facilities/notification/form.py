"""What the request forms of GENERIC and SLACK share: the instrument's filters as the choices of
``observation_choices``, and the date window of GENERIC."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ...core.errors import PayloadError
from ...core.interface import FollowupRequest
from ...core.timeutil import iso_date, parse_utc, utcnow

#: Days between GENERIC's default start and end dates (SkyPortal's: today and a week later).
WINDOW_DAYS = 7


def filter_choices(schema: dict[str, Any], filters: tuple[str, ...]) -> dict[str, Any]:
    """``schema`` with ``observation_choices`` limited to ``filters`` (SkyPortal bandpass names),
    when the instrument has any."""
    if filters:
        schema["properties"]["observation_choices"]["items"]["enum"] = list(dict.fromkeys(filters))
    return schema


def check_filters(request: FollowupRequest) -> None:
    """``PayloadError`` when a chosen filter is not one of the allocation's instrument's (when
    the allocation names them): a request the browser form could not have made."""
    filters = request.allocation.filters
    chosen = request.payload.get("observation_choices") or ()
    if filters and any(choice not in filters for choice in chosen):
        raise PayloadError.single("$.observation_choices", f"must be among the instrument's filters: {', '.join(filters)}")


def window_defaults() -> dict[str, str]:
    """Today and a week later (UTC), computed at each call."""
    today = utcnow()
    return {"start_date": iso_date(today), "end_date": iso_date(today + timedelta(days=WINDOW_DAYS))}


def check_window(payload: Mapping[str, Any]) -> None:
    """``PayloadError`` when ``end_date`` is before ``start_date``."""
    if parse_utc(payload["end_date"]) < parse_utc(payload["start_date"]):
        raise PayloadError.single("$.end_date", "must not be before start_date")
