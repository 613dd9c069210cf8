"""Swift Target of Opportunity requests through the Swift ToO API, built by ``swifttools``.

Protocol (``swifttools`` 4, ``swift_too`` 2, the maintained client of the Swift ToO API; its
``TOOAPIBaseclass`` and ``SwiftTOORequest``):

- ``POST <api>/login`` with JSON ``{"username", "password": <shared secret>}``: 200 and a
  ``session`` cookie; 401 for wrong credentials.
- ``GET <api>/swift/too?too_id=<n>`` (``TOORequests``): ``{"entries": [{"too_id", "decision",
  "done", "calendar": {"entries": [{"begin", "end", "duration", "asflown"}]}}]}``: the Swift
  team's decision (none yet, ``Approved``, ``Rejected``), whether the ToO is done, and its
  calendar windows (seconds asked, ``duration``; observed, ``asflown``).
- ``POST <api>/swift/too`` form-encoded with the fields of ``SwiftTOOPostSchema`` (no secret:
  the session cookie authenticates), as ``httpx`` encodes them (``true``/``false`` for booleans).
  Answers: 200 ``{"status": "Accepted", "too_id": <n>}`` (``status`` may also be an object with
  ``status``, ``too_id``, ``errors``, ``warnings``); ``{"status": "Validated"}`` for
  ``validate_only``; 422 FastAPI's ``{"detail": [{"loc": [...], "msg": ...}]}``; 401 without a
  valid session; other 4xx with a status object listing ``errors``.

``swifttools`` 4 no longer signs a JWT with the shared secret (its 3.x line did, for the retired
``/toop/submit_api.php``): the secret now only logs in. ``swifttools`` sends everything with its
own ``httpx`` client and keeps the session cookie in a file under the user's home shared by every
account, so this module uses it only to build and validate the ToO (``TOO(...)``, ``validate()``,
the form it would post) and sends both calls itself through the ``Transport``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from typing import Any

import requests

from ...core.answers import body_line, expect, json_object, one_line
from ...core.errors import ConfigurationError, PayloadError, Rejected, RemoteError
from ...core.interface import FollowupRequest
from ...core.transport import HTTPCall

SERVICE = "the Swift ToO API"
DEFAULT_API_URL = "https://www.swift.psu.edu/api/v2"
UVOT_DEFAULT = "0x9999 - Default (Filter of the day)"


#: One import of swifttools at a time: a gateway's worker threads first reach it together, and
#: concurrent first imports of its modules deadlock or see them half-initialised.
_IMPORT_LOCK = threading.Lock()


def load(module: str, needed_for: str) -> Any:
    """``module`` of ``swifttools``, imported on first use (the ``swift`` extra), one thread at a
    time. ``ConfigurationError`` saying what to install when it is missing or cannot start."""
    with _IMPORT_LOCK:
        try:
            return importlib.import_module(module)
        except ImportError:
            raise ConfigurationError(f"{needed_for} need the swifttools package: install facility-apis[swift]") from None
        except OSError as exc:  # swift_too creates ~/.cache/swift_too when imported
            raise ConfigurationError(f"swifttools could not start ({type(exc).__name__}): it needs a writable home directory") from None


def swift_too_module(name: str) -> Any:
    """``swifttools.swift_too.swift.<name>`` (``toorequest``, ``obsquery``)."""
    return load(f"swifttools.swift_too.swift.{name}", "Swift ToO requests")


def cadence(days: float) -> str:
    """The monitoring cadence as the ToO API reads it: ``"1.5 days"``, ``"0.25 days"`` (a number
    and a unit; fractions are fine, SkyPortal's ``"%d days"`` dropped them)."""
    text = f"{days:.4f}".rstrip("0").rstrip(".")
    return f"{text} days"


def uvot_code(label: str) -> str:
    """``"0x30ed - U+B+V+All UV"`` -> ``"0x30ed"``."""
    return label.split(" ", 1)[0]


def build(request: FollowupRequest) -> Any:
    """The ``TOO`` object for ``request`` (payload valid, altdata with ``username``/``secret``),
    validated by ``swifttools``; ``PayloadError`` with its reason when it refuses it."""
    module = swift_too_module("toorequest")
    payload, altdata, target = request.payload, request.allocation.altdata, request.target
    fields: dict[str, Any] = {
        "username": altdata["username"],
        "shared_secret": altdata["secret"],
        "target_name": target.id,
        "ra": target.ra,
        "dec": target.dec,
        "target_type": payload["source_type"],
        "instrument": "XRT",
        "obs_type": payload["obs_type"],
        "urgency": int(payload["urgency"]),
        "xrt_countrate": payload.get("xrt_countrate"),
        "opt_mag": payload.get("opt_mag"),
        "opt_filt": payload.get("opt_filt"),
        "exp_time_per_visit": int(payload["exposure_time"]),
        "num_of_visits": int(payload["exposure_counts"]),
        "monitoring_freq": cadence(float(payload["monitoring_freq"])),
        "immediate_objective": payload["immediate_objective"],
        "science_just": payload["science_just"],
        "exp_time_just": payload["exp_time_just"],
        "uvot_mode": uvot_code(payload["uvot_mode"]),
        "autosubmit": False,
    }
    if payload["uvot_mode"] != UVOT_DEFAULT:
        fields["uvot_just"] = payload["uvot_just"]
    try:
        too = module.SwiftTOORequest(**{key: value for key, value in fields.items() if value is not None})
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise PayloadError.single("$", f"swifttools refused the ToO: {one_line(str(exc).splitlines()[0])}") from None
    if not too.validate():
        raise PayloadError.single("$", "swifttools refused the ToO: " + "; ".join(one_line(str(e)) for e in too.status.errors))
    return too


def _form_value(value: Any) -> str:
    """A form value as ``httpx`` (which ``swifttools`` posts with) encodes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def form(too: Any, *, validate_only: bool = False) -> dict[str, str]:
    """The form ``swifttools`` would post for ``too`` (``SwiftTOOPostSchema``, ``None`` left
    out; no shared secret in it), exactly as ``too.submit()`` builds it. ``validate_only`` is set
    in the form, not on the object: an assignment re-validates the object, which would convert
    its position to FK5 before sending, as ``submit()`` does not."""
    fields = too._build_post_args()  # what too.submit() posts: swifttools' own serialisation
    if not fields:
        raise PayloadError.single("$", "swifttools built an empty ToO form")
    fields["validate_only"] = validate_only
    return {key: _form_value(value) for key, value in fields.items() if value is not None}


def api_url(config: Mapping[str, Any]) -> str:
    return str(config.get("too_api_url") or DEFAULT_API_URL).rstrip("/")


def login_call(config: Mapping[str, Any], altdata: Mapping[str, Any]) -> HTTPCall:
    """The login that opens a session (the secret travels here only, in the JSON body)."""
    body = {"username": altdata["username"], "password": altdata["secret"]}
    # Repeatable: a login creates nothing, so a lost answer is simply asked again.
    return HTTPCall("POST", f"{api_url(config)}/login", headers={"Accept": "application/json"}, json=body, repeatable=True)


def submit_call(config: Mapping[str, Any], request: FollowupRequest, *, validate_only: bool = False) -> HTTPCall:
    """The ToO post, built with ``swifttools`` and sent nowhere."""
    return HTTPCall(
        "POST", f"{api_url(config)}/swift/too", headers={"Accept": "application/json"}, data=form(build(request), validate_only=validate_only)
    )


def _fastapi_errors(response: requests.Response) -> str | None:
    """FastAPI's 422 body ``{"detail": [{"loc": [..., field], "msg": ...}]}`` as
    ``field: message; ...`` (``None`` when the body is not that)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return None
    if isinstance(detail, str):
        return one_line(detail)
    if not isinstance(detail, list):
        return None
    parts = []
    for item in detail:
        if isinstance(item, dict):
            loc = [str(part) for part in item.get("loc") or [] if part != "body"]
            parts.append(f"{loc[-1]}: {one_line(str(item.get('msg', 'invalid')))}" if loc else one_line(str(item.get("msg", "invalid"))))
    return "; ".join(parts) or None


def _status_object(body: Any) -> dict[str, Any]:
    """The answer's status as an object: ``status`` may be a bare word with ``too_id``,
    ``errors``, ``warnings`` beside it, or an object holding them (``swifttools``' reading)."""
    if not isinstance(body, dict):
        return {}
    status = body.get("status")
    if isinstance(status, dict):
        return status
    found = {key: body[key] for key in ("errors", "warnings", "too_id", "jobnumber") if key in body}
    return {"status": status, **found} if isinstance(status, str) else found


def _texts(value: Any) -> list[str]:
    return [one_line(str(item)) for item in value if str(item).strip()] if isinstance(value, list) else []


def read_answer(response: requests.Response) -> dict[str, Any]:
    """The ToO API's answer as ``{"status", "too_id", "errors", "warnings"}``.

    Raises ``Rejected`` with Swift's reasons (422 field errors, a 4xx status listing errors),
    ``CredentialsRefused`` (401/403), ``RemoteError`` for anything else that is not a JSON object.
    """
    if response.status_code == 422:
        raise Rejected(_fastapi_errors(response) or body_line(response), http_status=422)
    if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 404):
        try:
            errors = _texts(_status_object(response.json()).get("errors"))
        except ValueError:
            errors = []
        if errors:
            raise Rejected("; ".join(errors), http_status=response.status_code)
    status = _status_object(json_object(expect(response, 200, 201, service=SERVICE), service=SERVICE, what="the ToO"))
    if not isinstance(status.get("status"), str):
        raise RemoteError(f"{SERVICE} answered without a status for the ToO", http_status=response.status_code)
    return {
        "status": status["status"],
        "too_id": status.get("too_id"),
        "errors": _texts(status.get("errors")),
        "warnings": _texts(status.get("warnings")),
    }


def status_call(config: Mapping[str, Any], too_id: str) -> HTTPCall:
    """The ToO as Swift's ToO list shows it (public fields: no login)."""
    return HTTPCall("GET", f"{api_url(config)}/swift/too", headers={"Accept": "application/json"}, params={"too_id": too_id})


def read_status(response: requests.Response, too_id: str) -> dict[str, Any]:
    """The ToO's entry: ``{"decision", "done", "windows", "asked", "observed"}`` (seconds);
    ``RemoteError`` when the answer is not the protocol or does not list the ToO."""
    answer = json_object(expect(response, 200, service=SERVICE), service=SERVICE, what=f"ToO {too_id}")
    entries = answer.get("entries")
    entry = next((e for e in entries if isinstance(e, dict) and str(e.get("too_id")) == too_id), None) if isinstance(entries, list) else None
    if entry is None:
        raise RemoteError(f"{SERVICE} did not list ToO {too_id}")
    calendar = entry.get("calendar") if isinstance(entry.get("calendar"), dict) else {}
    windows = [w for w in calendar.get("entries") or [] if isinstance(w, dict)]

    def total(key: str) -> float:
        return sum(float(w[key]) for w in windows if isinstance(w.get(key), (int, float)) and not isinstance(w.get(key), bool))

    decision = entry.get("decision")
    return {
        "decision": decision if isinstance(decision, str) and decision.strip() else None,
        "done": entry.get("done") in (1, True, "1"),
        "windows": len(windows),
        "asked": total("duration"),
        "observed": total("asflown"),
    }
