"""The request forms of the Observation Portal instruments, and the portal's field errors read
back onto them.

Every instrument's form is the shared fields of ``schemas/observation_portal/request.json``
(window, mode, exposure time and count, airmass, lunar distance, IPP value) followed by the
instrument's own ``schemas/<name>/request.json`` (filters, slit, modes, site), whose title,
``$id``, branches and example are kept. The window rules come from the portal's serializers
(``observation_portal/requestgroups/serializers.py``: a window's end must be in the future and
after its start; a RAPID_RESPONSE window must already have started and end within 24 hours plus
the request's duration, of which this form asks the 24 hours).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from ...core.errors import FieldError, PayloadError
from ...core.schemas import load_schema
from ...core.timeutil import parse_utc, utcnow

COMMON_FORM = "observation_portal/request"
#: How long a window lasts by default, as SkyPortal's own LCO and SOAR forms have it.
DEFAULT_WINDOW = timedelta(days=7)
#: The portal refuses a RAPID_RESPONSE window that ends later than this (plus the request's duration).
RAPID_RESPONSE_REACH = timedelta(hours=24)


def merged_form(instrument: dict[str, Any], package: str) -> dict[str, Any]:
    """The instrument's form document with the shared fields first and every field required by
    either; a fresh copy."""
    common = load_schema(COMMON_FORM, package)
    form = dict(instrument)
    form["properties"] = {**common["properties"], **instrument.get("properties", {})}
    form["required"] = list(dict.fromkeys([*common["required"], *instrument.get("required", [])]))
    return form


def window_defaults(now: datetime | None = None) -> dict[str, str]:
    """``start_date`` now (to the minute) and ``end_date`` 7 days later, as the form shows them."""
    start = (now or utcnow()).replace(second=0, microsecond=0)
    return {"start_date": portal_time(start), "end_date": portal_time(start + DEFAULT_WINDOW)}


def portal_time(moment: datetime) -> str:
    """A UTC instant as sent to the portal: ``2026-11-21T18:00:00Z``."""
    return parse_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def window(payload: Mapping[str, Any]) -> tuple[datetime, datetime]:
    return parse_utc(payload["start_date"]), parse_utc(payload["end_date"])


def check_window(payload: Mapping[str, Any], now: datetime | None = None) -> None:
    """The window rules the schema cannot state; ``PayloadError`` naming the field."""
    now = now or utcnow()
    start, end = window(payload)
    errors = []
    if end <= start:
        errors.append(FieldError("$.end_date", "must be after start_date"))
    elif end <= now:
        errors.append(FieldError("$.end_date", "must be in the future"))
    if payload.get("observation_mode") == "RAPID_RESPONSE":
        if start > now:
            errors.append(FieldError("$.start_date", "must not be in the future for a RAPID_RESPONSE request (the portal observes it at once)"))
        if end > now + RAPID_RESPONSE_REACH:
            errors.append(FieldError("$.end_date", "must be within 24 hours of now for a RAPID_RESPONSE request"))
    if errors:
        raise PayloadError(errors)


# -- the portal's field errors, read back onto the form ---------------------------------------

#: Where a field of the request group comes from (its path without list positions) → the form
#: field or allocation field (``altdata``) it was built from. Each instrument adds its own.
FORM_FIELDS: dict[tuple[str, ...], str] = {
    ("proposal",): "altdata.PROPOSAL_ID",
    ("ipp_value",): "priority",
    ("observation_type",): "observation_mode",
    ("requests", "windows", "start"): "start_date",
    ("requests", "windows", "end"): "end_date",
    ("requests", "windows", "non_field_errors"): "end_date",
    ("requests", "windows"): "end_date",
    ("requests", "configurations", "constraints", "max_airmass"): "maximum_airmass",
    ("requests", "configurations", "constraints", "min_lunar_distance"): "minimum_lunar_distance",
    ("requests", "configurations", "instrument_configs", "exposure_time"): "exposure_time",
    ("requests", "configurations", "instrument_configs", "exposure_count"): "exposure_counts",
    ("requests", "configurations", "target", "ra"): "target.ra",
    ("requests", "configurations", "target", "dec"): "target.dec",
    ("requests", "configurations", "target", "name"): "target.id",
}


def _walk(errors: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """``(path, message)`` of every message in Django REST framework's nested error body: objects
    by field name, lists of per-item objects by position (``{}`` for an item without errors),
    lists of strings as messages."""
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            yield from _walk(value, (*path, str(key)))
    elif isinstance(errors, list):
        if all(isinstance(item, (str, int, float)) for item in errors):
            for item in errors:
                yield path, str(item)
        else:
            for position, item in enumerate(errors):
                yield from _walk(item, (*path, position))
    elif errors not in (None, ""):
        yield path, str(errors)


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def field_errors(errors: Any, fields: Mapping[tuple[str, ...], str]) -> list[FieldError]:
    """The portal's errors as one ``FieldError`` per form field and message: ``$.end_date`` for a
    field the form sets (``fields``), ``$`` for the request group as a whole, else the portal's own
    path (``$.requests[0].configurations[0].acquisition_config.mode``). Repeats (one per filter,
    say) are given once."""
    found: dict[tuple[str, str], None] = {}
    for path, message in _walk(errors):
        named = tuple(part for part in path if isinstance(part, str))
        while named and named[-1] == "non_field_errors" and named not in fields:
            named = named[:-1]  # an error about the object itself
        form_field = fields.get(named)
        if form_field is not None:
            where = f"$.{form_field}"
        elif named in ((), ("requests",)):
            where = "$"
        else:
            where = "$." + re.sub(r"\.?non_field_errors$", "", _dotted(path))
        found[(where, " ".join(message.split()))] = None
    return [FieldError(where, message) for where, message in found]
