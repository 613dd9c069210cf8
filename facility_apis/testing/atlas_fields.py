"""Validation of an ATLAS queue request (``POST /forcedphot/queue/``), with DRF's error shapes.

Errors are ``{"field": ["message"]}`` or ``{"non_field_errors": ["message"]}``; as in DRF, the
checks across fields run only once every field is valid on its own.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

TRUE_TEXTS = {"t", "y", "yes", "true", "on", "1"}
FALSE_TEXTS = {"f", "n", "no", "false", "off", "0"}
FORBIDDEN_IN_MPC_NAME = set("'\";")
MAX_COMMENT = 300
MAX_CALLBACK_URL = 500
DEFAULT_LOOKBACK_DAYS = 30.0
NUMBER_FIELDS = ("ra", "dec", "radec_epoch_year", "propermotion_ra", "propermotion_dec")
BOUNDS = {"ra": (0.0, 360.0), "dec": (-90.0, 90.0)}


class Invalid(ValueError):
    """A request the server refuses with 400; ``errors`` is the DRF error body."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(errors)
        self.errors = errors


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("A valid number is required.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("A valid number is required.") from None
    if not math.isfinite(number):
        raise ValueError("A valid number is required.")
    return number


def _boolean(default: bool) -> Callable[[Any], bool]:
    def parse(value: Any) -> bool:
        if value is None or value == "":
            return default
        text = str(value).lower()
        if value is True or text in TRUE_TEXTS:
            return True
        if value is False or text in FALSE_TEXTS:
            return False
        raise ValueError("Must be a valid boolean.")

    return parse


def _text(limit: int) -> Callable[[Any], str | None]:
    def parse(value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError("Not a valid string.")
        if len(value) > limit:
            raise ValueError(f"Ensure this field has no more than {limit} characters.")
        return value

    return parse


def _mpc_name(value: Any) -> str | None:
    name = _text(200)(value)
    if name is not None and FORBIDDEN_IN_MPC_NAME & set(name):
        raise ValueError("Quotes and semicolons are not allowed.")
    return name


def _callback_url(value: Any) -> str | None:
    url = _text(MAX_CALLBACK_URL)(value)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("Enter a valid URL.")
    if parts.scheme != "https" and not is_loopback_url(url):
        raise ValueError("The callback URL must use https.")
    if _private_address(parts.hostname):  # the server checks where a callback resolves to
        raise ValueError("The callback URL must resolve to a public address.")
    return url


def _private_address(host: str) -> bool:
    """A literal address that is not public (loopback excepted: the emulator's tests call back on
    127.0.0.1). A name is not resolved here: this server never looks anything up."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not address.is_global and not address.is_loopback


PARSERS: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(NUMBER_FIELDS, _number),
    "mjd_min": _number,
    "mjd_max": lambda value: _number(value) or None,  # a falsy mjd_max means "not given"
    "mpc_name": _mpc_name,
    "use_reduced": _boolean(False),
    "send_email": _boolean(True),
    "comment": _text(MAX_COMMENT),
    "callback_url": _callback_url,
}


def _check_bounds(fields: dict[str, Any], errors: dict[str, list[str]]) -> None:
    for name, (low, high) in BOUNDS.items():
        value = fields.get(name)
        if value is not None and value < low:
            errors[name] = [f"Ensure this value is greater than or equal to {low:g}."]
        elif value is not None and value > high:
            errors[name] = [f"Ensure this value is less than or equal to {high:g}."]


def _check_across(fields: dict[str, Any]) -> dict[str, list[str]]:
    ra, dec, mpc_name = fields["ra"], fields["dec"], fields["mpc_name"]
    has_coordinates = ra is not None or dec is not None
    if mpc_name and has_coordinates:
        return {"non_field_errors": ["Specify either ra and dec or mpc_name, not both."]}
    if not mpc_name and not has_coordinates:
        return {"non_field_errors": ["Specify either ra and dec or mpc_name."]}
    if has_coordinates and (ra is None or dec is None):
        return {"dec" if dec is None else "ra": ["ra and dec must be given together."]}
    mjd_min, mjd_max = fields["mjd_min"], fields["mjd_max"]
    if mjd_max is not None and mjd_max <= 0:
        return {"mjd_max": ["mjd_max must be greater than zero."]}
    if mjd_max is not None and mjd_min is not None and mjd_max <= mjd_min:
        return {"mjd_max": ["mjd_max must be greater than mjd_min."]}
    return {}


def task_fields(data: Mapping[str, Any], mjd_now: float) -> dict[str, Any]:
    """The validated task fields of a queue request; ``Invalid`` when the server would refuse it.

    An omitted ``mjd_min`` defaults to 30 days ago; an explicit null means no lower bound.
    """
    fields: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, parse in PARSERS.items():
        try:
            fields[name] = parse(data.get(name))
        except ValueError as exc:
            errors[name] = [str(exc)]
    if "mjd_min" not in data:
        fields["mjd_min"] = round(mjd_now - DEFAULT_LOOKBACK_DAYS, 6)
    _check_bounds(fields, errors)
    errors = errors or _check_across(fields)
    if errors:
        raise Invalid(errors)
    return fields
