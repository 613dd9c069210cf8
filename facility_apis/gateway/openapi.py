"""The gateway API's published contract: an OpenAPI 3.0 document generated with apispec from
the marshmallow schemas in ``api_schemas.py``, served at ``GET /api/openapi.json``.

Every answer is SkyPortal's envelope: ``{"status": "success", "data": <answer>, "version"}`` or
``{"status": "error", "message", "data": {"errors": [...]}, "version"}``. Each operation lists
every status it can answer; the CI test runs schemathesis against a running gateway with it.
"""

from __future__ import annotations

import functools
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from .. import __version__
from . import api_schemas as schemas

ERRORS = {
    400: "The body is not a JSON object, or breaks a rule: every failing field is listed; nothing is stored.",
    401: "No token, a malformed Authorization header, or an unknown token.",
    403: "The allocation id belongs to another client.",
    404: "No such route or row, or a row of another client.",
    405: "The route does not take this method.",
    409: "The request is already finished or being cancelled.",
    413: "The body is over 1 MiB.",
    500: "The allocation's facility is not installed or is misconfigured, or an internal error.",
    502: "SkyPortal could not give the coordinates of a GENERIC body's source.",
}

ANSWERS = (
    schemas.AllocationAnswer, schemas.ValidAnswer, schemas.AcceptedAnswer, schemas.RequestListAnswer, schemas.RequestAnswer,
    schemas.ChangeAnswer, schemas.CancelAnswer, schemas.CallbackAnswer, schemas.HealthAnswer,
)  # fmt: skip
EXAMPLE_ALLOCATION = {"facility": "atlas", "altdata": {"api_token": "0123456789abcdef0123456789abcdef01234567"}, "pi": "A. Observer", "instrument_id": 7}
EXAMPLE_REQUEST = {
    "allocation_id": 1,
    "target": {"id": "ZTF21aaaaaaa", "ra": 150.1, "dec": 2.2},
    "payload": {"start_date": "2026-10-01", "end_date": "2026-10-31"},
    "followup_request_id": 42,
    "requester": "observer",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _id_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}, "example": "1"}


def _operation(summary: str, answer: str | None, errors: tuple[int, ...], *, body: str | None = None, example: Any = None,
               parameters: tuple[dict[str, Any], ...] = (), public: bool = False, html: bool = False) -> dict[str, Any]:  # fmt: skip
    responses: dict[str, Any] = {}
    if html:
        responses["200"] = {"description": summary, "content": {"text/html": {"schema": {"type": "string"}}}}
    else:
        responses["200"] = _json(_ref(f"{answer}Envelope"), summary)
    statuses = errors if public else (401, *errors)
    for status in sorted(set(statuses)):
        responses[str(status)] = _json(_ref("ErrorAnswer"), ERRORS[status])
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        content: dict[str, Any] = {"schema": _ref(body)}
        if example is not None:
            content["example"] = example
        operation["requestBody"] = {"required": True, "content": {"application/json": content}}
    if parameters:
        operation["parameters"] = list(parameters)
    if public:
        operation["security"] = []
    return operation


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (built once per process)."""
    spec = APISpec(
        title="facility_apis gateway",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": __doc__.split("\n\n")[0].replace("\n", " ")},
    )
    described = "'token <token>' or 'Bearer <token>', from `facility-apis client add`"
    spec.components.security_scheme("token", {"type": "apiKey", "in": "header", "name": "Authorization", "description": described})
    spec.options["security"] = [{"token": []}]
    for schema in (schemas.AllocationBody, schemas.FollowupRequestBody, schemas.ErrorAnswer, *ANSWERS):
        spec.components.schema(schema.__name__, schema=schema)
    for schema in ANSWERS:
        envelope = {
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["success"]}, "data": _ref(schema.__name__), "version": {"type": "string"}},
            "required": ["status", "data", "version"],
        }
        spec.components.schema(f"{schema.__name__}Envelope", envelope)

    allocation_id = _id_parameter("allocation_id", "SkyPortal's allocation id (1 to 2147483647; any other is a 404).")
    request_id = _id_parameter("request_id", "The gateway's id of the request (1 to 2147483647; any other is a 404).")
    body_errors = (400, 413)
    allocation_body = {"body": "AllocationBody", "example": EXAMPLE_ALLOCATION}
    spec.path(path="/api/allocations/validate", operations={
        "post": _operation("Check an allocation body; nothing is stored.", "ValidAnswer", (*body_errors, 500), **allocation_body),
    })  # fmt: skip
    spec.path(path="/api/allocations/{allocation_id}", parameters=[allocation_id], operations={
        "get": _operation("The allocation, without its credentials.", "AllocationAnswer", (404,)),
        "put": _operation("Create or replace an allocation.", "AllocationAnswer", (*body_errors, 403, 404, 500), **allocation_body),
    })  # fmt: skip
    spec.path(path="/api/followup_request", operations={
        "get": _operation("The caller's newest 200 requests.", "RequestListAnswer", ()),
        "post": _operation("Accept a follow-up request (direct or SkyPortal GENERIC body).", "AcceptedAnswer", (*body_errors, 404, 500, 502),
                           body="FollowupRequestBody", example=EXAMPLE_REQUEST),
    })  # fmt: skip
    spec.path(path="/api/followup_request/{request_id}", parameters=[request_id], operations={
        "get": _operation("One request: history, transactions (redacted), frames, deliveries.", "RequestAnswer", (404,)),
        "put": _operation("Change the request's payload (SkyPortal's PUT body: that of POST, same allocation and source).", "ChangeAnswer",
                          (*body_errors, 404, 409, 500, 502), body="FollowupRequestBody", example=EXAMPLE_REQUEST),
        "delete": _operation("Cancel the request.", "CancelAnswer", (404, 409, 500)),
    })  # fmt: skip
    spec.path(path="/api/callbacks/{request_id}/{signature}", parameters=[request_id, _id_parameter("signature", "The URL's signature.")], operations={
        "post": _operation("A facility's nudge: the request's next poll is due now. Signed URL, no token.", "CallbackAnswer", (404,), public=True),
    })  # fmt: skip
    spec.path(path="/api/health", operations={"get": _operation("Queue and outbox metrics; the process's loops.", "HealthAnswer", ())})
    spec.path(path="/", operations={"get": _operation("The caller's requests as an HTML table.", None, (), html=True)})
    document = spec.to_dict()
    itself = _json({"type": "object"}, "The OpenAPI document.")
    document["paths"]["/api/openapi.json"] = {"get": {"summary": "This document.", "security": [], "responses": {"200": itself}}}
    return document
