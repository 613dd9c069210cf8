"""The gateway API's bodies as marshmallow schemas: what a request must hold (validated here,
every failing field named with its rule, never its value) and what each answer holds (published
in the OpenAPI document, ``openapi.py``).

Fields take JSON as it comes: an integer is a JSON integer (not ``true``, not ``"7"``), a number
a JSON number. The facility's own altdata and payload are ``object``s here; their fields are the
facility's draft-07 schemas' business (``Facility.validate_altdata``/``validate_payload``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from ..core.errors import FieldError

#: Ids are PostgreSQL ``integer`` columns: a larger one cannot name a row.
MAX_ID = 2**31 - 1


def _messages(kind: str) -> dict[str, str]:
    return {"required": "is required", "null": "must not be null", "invalid": f"must be of type {kind}", "type": f"must be of type {kind}"}


class JSONInteger(fields.Integer):
    """A JSON integer: booleans, floats and strings are refused."""

    def __init__(self, **kwargs: Any):
        super().__init__(strict=True, error_messages=_messages("integer"), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return value


class JSONNumber(fields.Float):
    """A finite JSON number (integer or not): booleans and strings are refused."""

    def __init__(self, **kwargs: Any):
        super().__init__(error_messages={**_messages("number"), "special": "must be a finite number"}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        if not math.isfinite(value):
            raise self.make_error("special")
        return float(value)


class JSONBoolean(fields.Boolean):
    """A JSON boolean: ``true`` or ``false``, never ``1`` or ``"true"``."""

    def __init__(self, **kwargs: Any):
        super().__init__(error_messages=_messages("boolean"), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def _string(*, min_length: int | None = None, max_length: int = 256, **kwargs: Any) -> fields.String:
    rules = []
    if min_length is not None:
        rules.append(validate.Length(min=min_length, error=f"must be at least {min_length} characters long"))
    rules.append(validate.Length(max=max_length, error=f"must be at most {max_length} characters long"))
    return fields.String(validate=rules, error_messages=_messages("string"), **kwargs)


def _id(description: str, **kwargs: Any) -> JSONInteger:
    rules = [validate.Range(min=1, error="must be at least 1"), validate.Range(max=MAX_ID, error=f"must be at most {MAX_ID}")]
    return JSONInteger(validate=rules, metadata={"description": description}, **kwargs)


def _object(description: str, **kwargs: Any) -> fields.Dict:
    return fields.Dict(keys=fields.String(), error_messages=_messages("object"), metadata={"description": description}, **kwargs)


def _list(item: fields.Field, description: str, max_items: int = 100, **kwargs: Any) -> fields.List:
    rule = validate.Length(max=max_items, error=f"must have at most {max_items} items")
    return fields.List(item, validate=rule, error_messages=_messages("array"), metadata={"description": description}, **kwargs)


class Body(Schema):
    """A request body: a JSON object with only the fields below."""

    class Meta:
        unknown = RAISE

    error_messages = {"unknown": "is not an allowed property", "type": "must be of type object"}  # noqa: RUF012 - marshmallow's hook


# -- request bodies ------------------------------------------------------------------------------


class AllocationBody(Body):
    """``PUT /api/allocations/<id>`` and ``POST /api/allocations/validate``. The id is SkyPortal's
    allocation id, so that SkyPortal's GENERIC forwarding body finds it."""

    facility = _string(min_length=1, max_length=64, required=True, metadata={"description": "Registry name of the facility (e.g. atlas)."})
    altdata = _object("The facility's credentials, checked against its altdata schema; stored sealed, never shown again.", required=True)
    pi = _string(metadata={"description": "Principal investigator, passed to the facility."})
    proposal_id = _string(metadata={"description": "Proposal id, passed to the facility."})
    instrument_id = _id("SkyPortal instrument id photometry is stored under; required for a facility that returns photometry.", allow_none=True)
    instrument_name = _string(metadata={"description": "Instrument name, passed to the facility."})
    filters = _list(_string(min_length=1, max_length=64), "The instrument's filters (SkyPortal bandpass names).")
    group_ids = _list(_id("A SkyPortal group id."), "SkyPortal groups the photometry is shared with.")


def _optional_number(description: str, **kwargs: Any) -> JSONNumber:
    return JSONNumber(required=True, allow_none=True, metadata={"description": description}, **kwargs)


class HostPointBody(Body):
    """One point of the host's photometry of the source (``core.interface.HostPoint``)."""

    ra = _optional_number(
        "Degrees ICRS, [0, 360), or null.",
        validate=[validate.Range(min=0, error="must be at least 0"), validate.Range(max=360, max_inclusive=False, error="must be less than 360")],
    )
    dec = _optional_number("Degrees ICRS, [-90, 90], or null.", validate=validate.Range(min=-90, max=90, error="must be from -90 to 90"))
    flux = _optional_number("Flux, in one unit for all points (SkyPortal's µJy), or null.")
    fluxerr = _optional_number("Its error, same unit, or null.")
    origin = _string(allow_none=True, metadata={"description": "SkyPortal's origin of the point (e.g. fp for forced photometry)."})
    instrument = _string(allow_none=True, metadata={"description": "The instrument's name."})
    alert = JSONBoolean(metadata={"description": "Whether the point came from an alert stream."})
    mjd = JSONNumber(allow_none=True, metadata={"description": "Modified Julian Date of the point, or null."})
    filter = _string(max_length=64, allow_none=True, metadata={"description": "SkyPortal bandpass name (e.g. ztfg), or null."})
    mag = JSONNumber(allow_none=True, metadata={"description": "AB magnitude, null for a non-detection."})


class TargetBody(Body):
    id = _string(min_length=1, required=True, metadata={"description": "Source id (SkyPortal's obj_id)."})
    aliases = _list(
        _string(min_length=1), "Other names of the source (SkyPortal's aliases): a facility may take a field from them (Fink's diaObjectId).", max_items=64
    )
    photometry = _list(
        fields.Nested(HostPointBody, error_messages=_messages("object")),
        "The host's photometry of the source, for a facility that uses it (ZTF's flux-weighted centroid, SEDM's prior photometry).",
        max_items=100_000,
    )
    ra = JSONNumber(
        required=True,
        validate=[validate.Range(min=0, error="must be at least 0"), validate.Range(max=360, max_inclusive=False, error="must be less than 360")],
        metadata={"description": "Right ascension, degrees ICRS, [0, 360)."},
    )
    dec = JSONNumber(
        required=True,
        validate=[validate.Range(min=-90, error="must be at least -90"), validate.Range(max=90, error="must be at most 90")],
        metadata={"description": "Declination, degrees ICRS, [-90, 90]."},
    )


class FollowupRequestBody(Body):
    """``POST /api/followup_request``: the direct body names the target; SkyPortal's GENERIC
    forwarding body (``{obj_id, allocation_id, payload}``) names only ``obj_id``, whose
    coordinates the gateway asks SkyPortal for. One of ``target`` and ``obj_id`` is required;
    with both, they name the same source."""

    allocation_id = _id("An allocation of the calling client (SkyPortal's allocation id).", required=True)
    target = fields.Nested(TargetBody, error_messages=_messages("object"), metadata={"description": "The source and its coordinates."})
    obj_id = _string(min_length=1, metadata={"description": "Without target: the SkyPortal source whose coordinates are used."})
    payload = _object("The facility's request form, checked against its schema with defaults filled in.", required=True)
    followup_request_id = _id("SkyPortal's follow-up request id: where statuses are delivered.")
    requester = _string(metadata={"description": "Who asked, passed to the facility."})


def body_errors(schema: Schema, body: Mapping[str, Any]) -> list[FieldError]:
    """Every way ``body`` breaks ``schema``, one error per field, paths as the API names them
    (``target.ra``, ``group_ids[1]``)."""
    try:
        schema.load(body)
    except ValidationError as exc:
        return sorted(_flatten(exc.messages, ""), key=lambda error: error.path)
    return []


def _flatten(messages: Any, path: str) -> list[FieldError]:
    if isinstance(messages, list):
        return [FieldError(path or "body", str(messages[0]))] if messages else []
    if isinstance(messages, str):
        return [FieldError(path or "body", messages)]
    errors = []
    for key, value in messages.items():
        if key == "_schema":
            errors += _flatten(value, path)
        elif isinstance(key, int):
            errors += _flatten(value, f"{path}[{key}]")
        else:
            errors += _flatten(value, f"{path}.{key}" if path else str(key))
    return errors


# -- answers -------------------------------------------------------------------------------------


class Answer(Schema):
    """An answer's data; fields may be added in later versions (clients ignore unknown ones)."""

    class Meta:
        unknown = EXCLUDE


def _nullable(field: type[fields.Field], description: str, **kwargs: Any) -> fields.Field:
    return field(required=True, allow_none=True, metadata={"description": description}, **kwargs)


def _always(field: type[fields.Field], description: str, **kwargs: Any) -> fields.Field:
    return field(required=True, metadata={"description": description}, **kwargs)


class AllocationAnswer(Answer):
    id = _always(fields.Integer, "SkyPortal's allocation id.")
    facility = _always(fields.String, "Registry name of the facility.")
    pi = _nullable(fields.String, "Principal investigator.")
    proposal_id = _nullable(fields.String, "Proposal id.")
    instrument_id = _nullable(fields.Integer, "SkyPortal instrument id.")
    instrument_name = _nullable(fields.String, "Instrument name.")
    filters = _always(fields.List, "The instrument's filters.", cls_or_instance=fields.String())
    group_ids = _always(fields.List, "SkyPortal group ids.", cls_or_instance=fields.Integer())


class ValidAnswer(Answer):
    valid = _always(fields.Boolean, "Always true: an invalid allocation is a 400.")


class AcceptedAnswer(Answer):
    id = _always(fields.Integer, "The gateway's id of the request.")
    state = _always(fields.String, "Its lifecycle state (pending).")
    ignored = _always(fields.List, "Payload fields of a GENERIC body that the facility's form does not define, dropped.", cls_or_instance=fields.String())


class RequestSummary(Answer):
    id = _always(fields.Integer, "The gateway's id of the request.")
    facility = _always(fields.String, "Registry name of the facility.")
    obj_id = _always(fields.String, "The source.")
    state = _always(fields.String, "Lifecycle state.")
    status = _always(fields.String, "The status SkyPortal shows.")
    updated_at = _always(fields.Float, "UNIX seconds of the latest change.")


class RequestListAnswer(Answer):
    requests = _always(fields.List, "The caller's newest 200 requests, newest first.", cls_or_instance=fields.Nested(RequestSummary))


class HistoryEntry(Answer):
    at = _always(fields.Float, "UNIX seconds.")
    state = _always(fields.String, "Lifecycle state.")
    status = _always(fields.String, "The status.")


class DeliveryEntry(Answer):
    kind = _always(fields.String, "status or photometry.")
    delivered_at = _nullable(fields.Float, "UNIX seconds SkyPortal acknowledged it; null until then.")
    attempts = _always(fields.Integer, "Attempts so far.")
    dead = _always(fields.Boolean, "SkyPortal refused it for good.")
    last_error = _nullable(fields.String, "Why the latest attempt failed.")


class RequestAnswer(Answer):
    id = _always(fields.Integer, "The gateway's id of the request.")
    allocation_id = _always(fields.Integer, "SkyPortal's allocation id.")
    facility = _always(fields.String, "Registry name of the facility.")
    followup_request_id = _nullable(fields.Integer, "SkyPortal's follow-up request id, null until known.")
    obj_id = _always(fields.String, "The source.")
    ra = _always(fields.Float, "Right ascension, degrees ICRS.")
    dec = _always(fields.Float, "Declination, degrees ICRS.")
    payload = _always(fields.Dict, "The payload, defaults filled in.")
    requester = _nullable(fields.String, "Who asked.")
    remote_id = _nullable(fields.String, "The facility's handle, once it holds the request.")
    state = _always(fields.String, "Lifecycle state.")
    status = _always(fields.String, "The status SkyPortal shows.")
    detail = _always(fields.String, "Why, in one line.")
    next_operation = _nullable(fields.String, "submit, get, update, delete or find: the call owed next; null when none.")
    next_poll_at = _nullable(fields.Float, "UNIX seconds that call is due.")
    give_up_at = _always(
        fields.Float, "UNIX seconds the gateway gives up without a final answer: horizon_hours after acceptance or after the window asked for, if later."
    )
    attempts = _always(fields.Integer, "Facility calls made.")
    created_at = _always(fields.Float, "UNIX seconds the gateway accepted it.")
    frames = _always(fields.List, "The data files the facility listed for the request (newest list): name, url, filter, mjd.", cls_or_instance=fields.Dict())
    history = _always(fields.List, "Every status, oldest first.", cls_or_instance=fields.Nested(HistoryEntry))
    transactions = _always(fields.List, "Every exchange with the facility, redacted (SkyPortal's request/response split).", cls_or_instance=fields.Dict())
    deliveries = _always(fields.List, "The messages owed to SkyPortal.", cls_or_instance=fields.Nested(DeliveryEntry))


class ChangeAnswer(Answer):
    id = _always(fields.Integer, "The gateway's id of the request.")
    state = _always(fields.String, "Its state after the change (an update call is due when the facility holds it).")
    ignored = _always(fields.List, "Payload fields of a GENERIC body that the facility's form does not define, dropped.", cls_or_instance=fields.String())


class CancelAnswer(Answer):
    id = _always(fields.Integer, "The gateway's id of the request.")
    state = _always(fields.String, "Its state after the cancel (deleted, or the state before a delete call now due).")


class CallbackAnswer(Answer):
    id = _always(fields.Integer, "The request.")
    poll_due = _always(fields.Boolean, "Whether its next poll is now due (false: it is not being followed).")


class LoopHealth(Answer):
    alive = _always(fields.Boolean, "The loop's thread runs.")
    stalled = _always(fields.Boolean, "Its latest round began too long ago.")
    seconds_since_beat = _always(fields.Float, "Seconds since its latest round began.")
    restarts = _always(fields.Integer, "Restarts after a crash.")
    last_error = _nullable(fields.String, "Its latest crash, one line.")


class HealthAnswer(Answer):
    requests = _always(fields.Dict, "Request counts by facility, then by state.", values=fields.Dict(values=fields.Integer()))
    due = _always(fields.Integer, "Requests whose next call is due now.")
    oldest_due_seconds = _nullable(fields.Float, "How late the most overdue of them is.")
    outbox_backlog = _always(fields.Integer, "Messages not yet delivered (dead ones excluded).")
    outbox_oldest_seconds = _nullable(fields.Float, "Age of the oldest of them.")
    outbox_dead = _always(fields.Integer, "Messages SkyPortal refused for good.")
    loops = _always(fields.Dict, "This process's worker and outbox loops, by name.", values=fields.Nested(LoopHealth))
    healthy = _always(fields.Boolean, "Every loop of this process alive and not stalled.")


class ErrorData(Answer):
    errors = _always(fields.List, "Every failing field, as '<field>: <rule>'.", cls_or_instance=fields.String())


class ErrorAnswer(Answer):
    status = _always(fields.String, "error", validate=validate.OneOf(["error"]))
    message = _always(fields.String, "What went wrong, in one line.")
    data = _always(fields.Nested, "The failing fields.", nested=ErrorData)
    version = _always(fields.String, "The gateway's facility_apis version.")
