"""ZTF triggering through Kowalski's ``/api/triggers/ztf``: put a ToO queue in ZTF's scheduler.

Protocol (Kowalski's ``kowalski/api/handlers/ztf.py`` and its OpenAPI text, its middlewares, and
SkyPortal's ``ztf.py``, which uses the same endpoints):

- every call carries ``Authorization: Bearer <token>`` of a Kowalski admin; an unknown or expired
  token is answered **HTTP 400** ``{"status": "error", "message": "token is invalid"}`` (or
  ``"token has expired"``), a missing one 401, a user who is not admin 403;
- ``PUT /api/triggers/ztf`` with ``{"queue_name", "validity_window_mjd": [start, end], "targets":
  [...], "queue_type": "list", "user"}``, each target ``{"request_id", "program_id", "field_id",
  "ra", "dec", "filter_id", "exposure_time", "program_pi", "subprogram_name"}``: HTTP 200
  ``{"status": "success", "message": "submitted"}``; a queue of that name already in the scheduler:
  **409** ``"Submitted queue <name> already exists"``; a refusal: 400 with the reason;
- ``GET /api/triggers/ztf`` (JSON body ``{}``, or ``queue_name``/``user``) lists the scheduler's
  queues in ``data``: ``queue_name``, ``validity_window_mjd``, and ``queue``, the JSON text of its
  rows (``field_id``, ``filter_id``, ``exposure_time``, ...);
- ``DELETE /api/triggers/ztf`` with ``{"queue_name", "user"}``: 200 ``"deleted"``;
- ``/api/triggers/ztf.test`` takes the same calls, checks their form and queues nothing.

Because Kowalski refuses a second queue of the same name, the submission (a ``PUT``) may be sent
again safely: a queue that arrived earlier is recognised in the list by its name and exposures.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, ClassVar

import requests

from ...core.answers import body_line, expect, json_object
from ...core.errors import CredentialsRefused, PayloadError, Rejected, RemoteError
from ...core.interface import Facility, FollowupRequest, Kind, Target, common_config_keys
from ...core.outcome import Outcome, State
from ...core.schemas import load_schema
from ...core.timeutil import iso_date, to_mjd, utcnow
from ...core.transport import HTTPCall, Transport
from . import grid

DEFAULT_BASE_URL = "https://kowalski.caltech.edu"
PATH = "/api/triggers/ztf"
TEST_PATH = "/api/triggers/ztf.test"
SERVICE = "Kowalski"
PROGRAM_IDS = {"Partnership": 2, "Caltech": 3}
FILTER_IDS = {"ztfg": 1, "ztfr": 2, "ztfi": 3}
QUEUE_PREFIX = "ToO_"
MAX_WINDOW_DAYS = 30
#: Kowalski's words (HTTP 400) for a token it cannot use.
TOKEN_REFUSALS = ("token is invalid", "token has expired")
#: The IPAC fields of ZTF forced photometry, which a shared ZTFAPI allocation may hold.
IPAC_FIELDS = ("ipac_http_user", "ipac_http_password", "ipac_email", "ipac_userpass")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ZTFTriggerFacility(Facility):
    """ZTF triggering: a ToO queue of exposures (every filter on every field) in ZTF's scheduler.

    Configuration (deployment-wide): ``base_url``, Kowalski's address (default
    ``https://kowalski.caltech.edu``).
    """

    name: ClassVar[str] = "ztf_trigger"
    title: ClassVar[str] = "ZTF triggering (Kowalski)"
    kind: ClassVar[Kind] = Kind.OBSERVATION
    skyportal_class: ClassVar[str] = "ZTFAPI"
    setup_url: ClassVar[str] = "https://github.com/skyportal/kowalski"
    example_remote_id: ClassVar[str] = "ToO_ZTF26aaexample_20261005T120000"
    config_keys: ClassVar[Mapping[str, str]] = common_config_keys("base_url")
    base_url_key: ClassVar[str | None] = "base_url"
    date_fields: ClassVar[tuple[str, ...]] = ("start_date", "end_date")

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        self.refuse_unusable_url("ZTF triggering base_url", self.base_url)

    @property
    def base_url(self) -> str:
        return str(self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    # -- the forms -----------------------------------------------------------------------------

    @classmethod
    def altdata_schema(cls) -> dict[str, Any]:
        """The token, plus ZTF forced photometry's four IPAC fields (from its own document), which
        an allocation shared by both facilities holds: all four or none."""
        schema = super().altdata_schema()
        ipac = load_schema("ztf_fp/altdata", cls.schema_package)["properties"]
        schema["properties"].update({key: ipac[key] for key in IPAC_FIELDS})
        schema["dependencies"] = {key: [other for other in IPAC_FIELDS if other != key] for key in IPAC_FIELDS}
        return schema

    def request_defaults(self) -> dict[str, Any]:
        today = utcnow()
        return {"start_date": iso_date(today), "end_date": iso_date(today + timedelta(days=1))}

    def instrument_form(self, schema: dict[str, Any], *, name: str | None, filters: tuple[str, ...]) -> dict[str, Any]:
        """The filter choices narrowed to the instrument's ZTF filters (when it lists any)."""
        offered = [band for band in FILTER_IDS if band in filters]
        if offered:
            spec = schema["properties"]["filters"]
            spec["items"]["enum"] = offered
            spec["default"] = [band for band in spec["default"] if band in offered] or offered[:1]
        return schema

    def check_payload(self, payload: dict[str, Any]) -> None:
        start, end = date.fromisoformat(payload["start_date"]), date.fromisoformat(payload["end_date"])
        if end < start:
            raise PayloadError.single("$.end_date", "must not be before start_date")
        if end < utcnow().date():
            raise PayloadError.single("$.end_date", "must not be in the past (UTC)")
        if (end - start).days > MAX_WINDOW_DAYS:
            raise PayloadError.single("$.end_date", f"must be at most {MAX_WINDOW_DAYS} days after start_date")
        if payload.get("field_ids"):
            grid.centres(payload["field_ids"])

    def fill_from_target(self, payload: dict[str, Any], target: Target) -> dict[str, Any]:
        """``field_ids`` left empty: the primary-grid fields holding the source; given: each must
        hold it (``PayloadError`` on ``$.field_ids`` otherwise, naming the fields that do)."""
        if payload.get("field_ids"):
            grid.refuse_fields_missing(payload["field_ids"], target.ra, target.dec)
        else:
            found = grid.primary_fields(target.ra, target.dec)
            if not found:
                raise PayloadError.single("$.field_ids", "no field of ZTF's primary grid holds the source: give the field ids")
            payload["field_ids"] = found
        return payload

    @staticmethod
    def queue_name(request: FollowupRequest) -> str:
        """The name sent, ``ToO_<queue_name>``; an empty ``queue_name`` is ``<source id>_<request
        id>`` (SkyPortal's id of the request where known, else the caller's), the same for every
        attempt of one request (so Kowalski's refusal of a name it holds recognises a copy), or
        ``<source id>_<UTC time>`` for a request without an id. SkyPortal's id first: a gateway
        whose database was recreated counts its own ids from 1 again, and a new request must not
        take an old queue's name."""
        given = request.payload.get("queue_name")
        if not given:
            number = request.followup_request_id if request.followup_request_id is not None else request.id
            suffix = str(number) if number is not None else utcnow().strftime("%Y%m%dT%H%M%S")
            given = f"{_UNSAFE.sub('_', request.target.id)[: 59 - len(suffix)]}_{suffix}"
        return f"{QUEUE_PREFIX}{given}"

    # -- the calls -----------------------------------------------------------------------------

    def _headers(self, altdata: Mapping[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {altdata['access_token']}", "Accept": "application/json"}

    @staticmethod
    def _people(request: FollowupRequest) -> tuple[str, str]:
        """Kowalski's ``program_pi`` (``<allocation PI>/<requester>``, as SkyPortal's shape) and
        ``user`` (the requester), from what the request knows; never a fixed name. Both empty
        when it knows neither (a dry run shows that; :meth:`_named` refuses to send it)."""
        pi, requester = request.allocation.pi, request.requester
        program_pi = f"{pi}/{requester}" if pi and requester else str(pi or requester or "")
        return program_pi, str(requester or pi or "")

    @classmethod
    def _named(cls, request: FollowupRequest) -> None:
        """``PayloadError`` for a request that names neither a PI nor a requester."""
        if not cls._people(request)[1]:
            raise PayloadError.single("$", "ZTF triggering needs the allocation's PI or the requester's name (Kowalski's program_pi and user)")

    def _body(self, request: FollowupRequest) -> dict[str, Any]:
        payload = self.fill_from_target(dict(request.payload), request.target)
        program_pi, user = self._people(request)
        centres = grid.centres(payload["field_ids"])
        pairs = itertools.product(payload["filters"], payload["field_ids"])
        targets = [
            {
                "request_id": number,
                "program_id": PROGRAM_IDS[payload["program_id"]],
                "field_id": field_id,
                "ra": centres[field_id][0],
                "dec": centres[field_id][1],
                "filter_id": FILTER_IDS[band],
                "exposure_time": float(payload["exposure_time"]),
                "program_pi": program_pi,
                "subprogram_name": f"{QUEUE_PREFIX}{payload['subprogram_name']}",
            }
            for number, (band, field_id) in enumerate(pairs, 1)
        ]
        window = [round(to_mjd(payload["start_date"]), 6), round(to_mjd(payload["end_date"]) + 1.0, 6)]
        return {"targets": targets, "queue_name": self.queue_name(request), "validity_window_mjd": window, "queue_type": "list", "user": user}

    def prepare(self, request: FollowupRequest, *, path: str = PATH) -> HTTPCall:
        # Repeatable: Kowalski refuses a second queue of the same name (409), which submit reads.
        return HTTPCall("PUT", self.base_url + path, headers=self._headers(request.allocation.altdata), json=self._body(request), repeatable=True)

    def _answer(self, response: requests.Response, what: str) -> dict[str, Any]:
        """Kowalski's success envelope, or the typed error its answer means."""
        if response.status_code == 400 and any(words in body_line(response).lower() for words in TOKEN_REFUSALS):
            raise CredentialsRefused(f"Kowalski refused the access token ({body_line(response)})", http_status=400)
        expect(response, 200, service=SERVICE)
        body = json_object(response, service=SERVICE, what=what)
        if body.get("status") != "success":
            raise RemoteError(f"Kowalski answered HTTP 200 without success for {what}: {body_line(response)}")
        return body

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        self._named(request)
        call = self.prepare(request)
        response = transport.send(call)
        name = call.json["queue_name"]
        if response.status_code == 409:
            if self._listed_as_sent(call.json, request, transport):
                detail = f"ZTF queue {name} was already in ZTF's scheduler with these exposures (an earlier attempt of this request reached Kowalski)"
                return Outcome(State.SUBMITTED, detail, remote_id=name)
            raise Rejected(f"Kowalski already holds a queue named {name} with other exposures: choose another queue name", http_status=409)
        self._answer(response, "the trigger")
        return Outcome(State.SUBMITTED, f"ZTF queue {name} accepted by Kowalski: {_describe(call.json)}", remote_id=name)

    def remote_validate(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Kowalski's ``/api/triggers/ztf.test``: it checks the trigger's form and queues nothing
        (it does not ask ZTF's scheduler, so a queue name already taken is not seen)."""
        self._named(request)
        call = self.prepare(request, path=TEST_PATH)
        self._answer(transport.send(call), "the test trigger")
        name = call.json["queue_name"]
        return Outcome(State.PENDING, f"Kowalski's test endpoint accepted the form of queue {name} ({_describe(call.json)}); nothing was queued")

    def find(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """An interrupted submission: its queue is in the scheduler's list (followed as
        submitted), or it is not (submitted again: a copy that arrived meanwhile is refused by name)."""
        sent = self._body(request)
        if self._listed_as_sent(sent, request, transport):
            name = sent["queue_name"]
            return Outcome(State.SUBMITTED, f"ZTF queue {name} found in ZTF's scheduler after an interrupted submission", remote_id=name)
        return Outcome(State.PENDING, f"ZTF queue {sent['queue_name']} is not in ZTF's scheduler: submitting it again")

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if not request.remote_id:
            return Outcome(State.DELETED, "nothing had been sent to ZTF")
        name = request.remote_id
        self._named(request)
        if name not in self._queues(request, transport):
            return Outcome(State.DELETED, f"queue {name} was no longer in ZTF's scheduler (its window ended, or it was removed)", remote_id=name)
        _, user = self._people(request)
        altdata = request.allocation.altdata
        response = transport.request("DELETE", self.base_url + PATH, headers=self._headers(altdata), json={"queue_name": name, "user": user})
        self._answer(response, "the delete")
        return Outcome(State.DELETED, f"queue {name} removed from ZTF's scheduler", remote_id=name)

    def _queues(self, request: FollowupRequest, transport: Transport) -> dict[str, dict[str, Any]]:
        """The scheduler's queues by name (Kowalski's ``GET``)."""
        headers = self._headers(request.allocation.altdata)
        body = self._answer(transport.request("GET", self.base_url + PATH, headers=headers, json={}), "the queue list")
        listed = body.get("data")
        if not isinstance(listed, list) or not all(isinstance(entry, dict) for entry in listed):
            raise RemoteError("Kowalski's queue list is not a list of queues")
        return {str(entry.get("queue_name")): entry for entry in listed}

    def _listed_as_sent(self, sent: dict[str, Any], request: FollowupRequest, transport: Transport) -> bool:
        """Whether the scheduler lists a queue of ``sent``'s name holding the same exposures."""
        entry = self._queues(request, transport).get(sent["queue_name"])
        return entry is not None and _exposures(entry.get("queue")) == _exposures(sent["targets"])


def _exposures(rows: Any) -> set[tuple[int, int, float]] | None:
    """A queue's exposures as ``(field_id, filter_id, exposure_time)``, from its rows or their
    JSON text; ``None`` when they cannot be read."""
    if isinstance(rows, str):
        try:
            rows = json.loads(rows)
        except ValueError:
            return None
    try:
        return {(int(row["field_id"]), int(row["filter_id"]), float(row["exposure_time"])) for row in rows}
    except (KeyError, TypeError, ValueError):
        return None


def _describe(body: Mapping[str, Any]) -> str:
    """``6 exposures of 300 s (ztfg, ztfr on fields 699, 700), MJD 61374.0 to 61376.0``."""
    targets = body["targets"]
    bands = sorted({band for band, number in FILTER_IDS.items() for target in targets if target["filter_id"] == number}, key=list(FILTER_IDS).index)
    fields = sorted({target["field_id"] for target in targets})
    start, end = body["validity_window_mjd"]
    exposure = targets[0]["exposure_time"] if targets else 0
    return (
        f"{len(targets)} exposure{'s' if len(targets) != 1 else ''} of {exposure:g} s ({', '.join(bands)} on field{'s' if len(fields) != 1 else ''} "
        f"{', '.join(map(str, fields))}), MJD {start:g} to {end:g}"
    )
