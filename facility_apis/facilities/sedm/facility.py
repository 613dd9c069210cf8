"""SEDM on the Palomar 60-inch: requests, edits and deletions sent to SEDM's intake.

Every action is one ``POST <endpoint>`` whose multipart body holds the request document
(``document.py``) as the upload ``jsonfile``, as SkyPortal sends it and SEDM's ``add_request``
reads it; the answer is read by ``answers.py``. SEDM finds a request again by its ``requestid``,
SkyPortal's id of the follow-up request, and its robot reports the request's progress to
SkyPortal under that id (``POST /api/facility``, taken by ``SEDMListener``): there is nothing to
poll. An allocation may also announce each request by Slack or e-mail (``facility_apis.notify``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from ...core.errors import (
    AltdataError,
    ConfigurationError,
    FacilityUnavailable,
    FieldError,
    PayloadError,
    Rejected,
    RemoteError,
    RemoteNotFound,
)
from ...core.interface import Facility, FollowupRequest, Kind, Target, common_config_keys
from ...core.outcome import Outcome, State
from ...core.schemas import validate
from ...core.timeutil import iso_date, utcnow
from ...core.transport import HTTPCall, Transport
from ...notify import Event, Notifier, notification_altdata
from ...notify.altdata import allowed_keys
from .answers import Verdict, message, verdict
from .document import ADVANCED_DEFAULTS, MIX, document, prior_photometry

#: What a dry run shows when the deployment names no intake (``.invalid`` never resolves).
UNCONFIGURED = "https://sedm.invalid/add_request"
#: Payload keys the package fills in itself (not in the form).
FILLED = ("prior_photometry",)
#: Why ``programname`` is required where the allocation's group is not known.
NO_PROGRAM = "is required here: SEDM files each request under a program, and this host does not know the allocation's SkyPortal group name"
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_BAND = re.compile(r"[ugriz]")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class SEDMFacility(Facility):
    """SEDM.

    Deployment settings: ``endpoint`` (SEDM's intake URL, e.g. ``http://<sedm host>/add_request``;
    without it every action fails, saying so), ``contact_email`` (the ``email`` SEDM keeps for a
    requester it meets for the first time; SkyPortal sends the requester's own, which this package
    is not given), ``notify`` (see ``facility_apis.notify``). Unknown keys are refused.
    """

    name: ClassVar[str] = "sedm"
    title: ClassVar[str] = "SEDM"
    kind: ClassVar[Kind] = Kind.OBSERVATION
    skyportal_class: ClassVar[str] = "SEDMAPI"
    setup_url: ClassVar[str] = "https://sites.astro.caltech.edu/sedm/"
    example_remote_id: ClassVar[str] = "42"
    config_keys: ClassVar[Mapping[str, str]] = {
        "endpoint": "SEDM's intake URL (e.g. http://<sedm host>/add_request); without it every action fails before any call",
        "contact_email": "the e-mail address SEDM keeps for a requester it meets for the first time",
        **common_config_keys("notify"),
    }
    base_url_key: ClassVar[str | None] = "endpoint"
    date_fields: ClassVar[tuple[str, ...]] = ("start_date", "end_date")

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        endpoint = self.config.get("endpoint")
        if isinstance(endpoint, str):
            self.refuse_unusable_url("sedm endpoint", endpoint, secret=False)
        elif endpoint is not None:
            raise ConfigurationError("the configured sedm endpoint is refused: it must be a URL")
        email = self.config.get("contact_email")
        if email is not None and not (isinstance(email, str) and _ADDRESS.fullmatch(email)):
            raise ConfigurationError("sedm: contact_email must be one e-mail address (name@example.org)")
        self.notifier = Notifier(self.config, egress=self.egress)

    # -- altdata and the form ----------------------------------------------------------------

    @classmethod
    def altdata_schema(cls) -> dict[str, Any]:
        """SEDM's own fields and ``notification_type`` ``none``, plus the notifier's ``slack`` and
        ``email`` branches."""
        return notification_altdata(super().altdata_schema())

    def check_altdata(self, altdata: dict[str, Any]) -> None:
        self.notifier.check_altdata(altdata, self.altdata_schema())

    def check_without_group(self, altdata: dict[str, Any]) -> None:
        """SEDM's document needs a program name, which SkyPortal takes from the allocation's group:
        without the group (the gateway), ``programname`` is required."""
        if not altdata.get("programname"):
            raise AltdataError.single("$.programname", NO_PROGRAM)

    def request_defaults(self) -> dict[str, Any]:
        today = utcnow()
        return {"start_date": iso_date(today), "end_date": iso_date(today + timedelta(days=7))}

    def check_payload(self, payload: dict[str, Any]) -> None:
        """The branches' fields only (the form has no ``additionalProperties: false``, which cannot
        see into branches), the dates in order, and a prior photometry of SEDM's shape."""
        schema = self.request_schema()
        unknown = sorted(set(payload) - allowed_keys(schema) - set(FILLED))
        if unknown:
            raise PayloadError([FieldError(f"$.{key}", "is not a field of the SEDM form") for key in unknown])
        # A branch's field given while its branch is not chosen (the advanced options with
        # advanced off, say) is still used, so it is held to its rule too.
        validate({"type": "object", "properties": _branch_fields(schema)}, payload, PayloadError)
        if payload["end_date"] < payload["start_date"]:
            raise PayloadError.single("$.end_date", "must not be before start_date")
        if "prior_photometry" in payload and not _prior_photometry_shape(payload["prior_photometry"]):
            rule = "must map ZTF bands (g, r, i) to {jd, mag, obsdate}: numbers and a YYYY-MM-DD date"
            raise PayloadError.single("$.prior_photometry", rule)

    def uses_host_photometry(self, payload: Mapping[str, Any]) -> bool:
        return "prior_photometry" not in payload

    def fill_from_target(self, payload: dict[str, Any], target: Target) -> dict[str, Any]:
        """``prior_photometry``: the newest detection in each ZTF band the host gives (``{}``
        when it gives none)."""
        if "prior_photometry" not in payload:
            payload["prior_photometry"] = prior_photometry(target.photometry)
        return payload

    # -- the calls ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str | None:
        return self.config.get("endpoint")

    def _payload(self, request: FollowupRequest) -> dict[str, Any]:
        """The request's payload with the form's defaults, and the advanced options' defaults
        where the request gives none: the same for a submission, an edit and a deletion (which
        never fails on a stored payload the form would now refuse)."""
        try:
            payload = self.validate_payload(request.payload)
        except PayloadError:
            if not request.remote_id:
                raise
            payload = {**self.request_defaults(), "observation_type": "IFU", "priority": 1, **dict(request.payload)}
            if payload.get("observation_type") == MIX and not isinstance(payload.get("observation_choices"), list):
                payload["observation_choices"] = []
        return {**ADVANCED_DEFAULTS, **payload}

    def _call(self, request: FollowupRequest, status: str) -> HTTPCall:
        body = document(
            status=status,
            request_id=request.followup_request_id,
            source=request.target.id,
            ra=request.target.ra,
            dec=request.target.dec,
            payload=self._payload(request),
            username=request.requester,  # type: ignore[arg-type]
            email=self.config.get("contact_email", ""),
            program=request.allocation.altdata.get("programname") or request.allocation.group,  # type: ignore[arg-type]
        )
        return HTTPCall("POST", self.endpoint or UNCONFIGURED, files={"jsonfile": ("jsonfile", json.dumps(body))})

    def _ready(self, request: FollowupRequest) -> int:
        """SkyPortal's id of the request, once what every action needs is known; else a permanent
        ``RemoteError`` (or ``AltdataError``) saying what is missing."""
        if not self.endpoint:
            raise RemoteError("SEDM's intake is not configured: the deployment's sedm endpoint setting names none", permanent=True)
        if request.followup_request_id is None:
            raise RemoteError("SEDM needs SkyPortal's id of the follow-up request (its robot reports under it); this request has none", permanent=True)
        if not request.requester:
            raise RemoteError("SEDM needs the requester's SkyPortal user name; this request names none", permanent=True)
        if not (request.allocation.altdata.get("programname") or request.allocation.group):
            raise AltdataError.single("$.programname", NO_PROGRAM)
        return request.followup_request_id

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        """The new request's upload (``status: new``), not sent. Without SkyPortal's request id,
        requester or the deployment's endpoint (a dry run from the command line) those parts read
        ``null`` and ``sedm.invalid``."""
        return self._call(request, "new")

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        number = self._ready(request)
        try:
            said = message(transport.send(self._call(request, "new")))
        except (RemoteError, FacilityUnavailable) as exc:
            if not _may_have_arrived(exc):
                raise
            return Outcome(State.FAILED, f"SEDM may hold request {number} ({exc}): check SEDM's queue before submitting again", maybe_sent=True)
        found = verdict(said)
        if found is Verdict.ACCEPTED:
            return self._announced(request, transport, Event.NEW, Outcome(State.SUBMITTED, f"SEDM: {said}", remote_id=str(number)))
        if found is Verdict.INVALID:
            raise RemoteError(f"SEDM could not read the request: {said}", permanent=True)
        raise Rejected(f"SEDM: {said}")

    def update(self, request: FollowupRequest, transport: Transport) -> Outcome:
        number = self._ready(request)
        said = message(transport.send(self._call(request, "edit")))
        found, remote_id = verdict(said), str(number)
        if found is Verdict.ACCEPTED:
            return self._announced(request, transport, Event.UPDATED, Outcome(State.SUBMITTED, f"SEDM: {said}", remote_id=remote_id))
        if found is Verdict.ACTIVE:
            detail = f"SEDM kept request {number} unchanged: it is being observed (ACTIVE) or SEDM has no such request ({said})"
            return Outcome(State.SUBMITTED, detail, remote_id=remote_id)
        if found is Verdict.EDIT_LOST:
            detail = f"SEDM canceled request {number} but did not take the edited one ({said}): it holds no request now; submit it again"
            return Outcome(State.CANCELED, detail, remote_id=remote_id)
        if found is Verdict.INVALID:
            raise RemoteError(f"SEDM could not read the edit: {said}", permanent=True)
        raise Rejected(f"SEDM: {said}")

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if not request.remote_id:
            return Outcome(State.DELETED, "nothing had been sent to SEDM")
        number = self._ready(request)
        said = message(transport.send(self._call(request, "delete")))
        found = verdict(said)
        if found is Verdict.ACCEPTED:
            outcome = Outcome(State.DELETED, f"SEDM: {said}", remote_id=request.remote_id)
            return self._announced(request, transport, Event.CANCELLED, outcome)
        if found is Verdict.ACTIVE:
            detail = f"SEDM did not delete request {number}: it is being observed (ACTIVE) or SEDM has no such request ({said})"
            return Outcome(State.SUBMITTED, detail, remote_id=request.remote_id)
        if found is Verdict.INVALID:
            raise RemoteError(f"SEDM could not read the deletion: {said}", permanent=True)
        raise Rejected(f"SEDM: {said}")

    def _announced(self, request: FollowupRequest, transport: Transport, event: Event, outcome: Outcome) -> Outcome:
        """``outcome``, with the allocation's notice sent (when it asks for one) and said in the
        detail; a notice that fails is said too, never costing what SEDM did. The notice's
        reference is kept as the cursor, so that later notices answer the first."""
        first = dataclasses.replace(request, remote_id=request.cursor) if event is not Event.NEW else request
        announced = self.notifier.announce(first, transport, event, facility=self.title, form=self.request_schema())
        cursor = announced.reference if event is Event.NEW else None
        return dataclasses.replace(outcome, detail=outcome.detail + announced.note, cursor=cursor)


def _may_have_arrived(exc: Exception) -> bool:
    """Whether SEDM may have taken a submission that failed so: an answer lost after it was
    sent, a server error, or a 200 without SEDM's verdict. A redirect, a 404 or a refusal of
    the connection means it did not."""
    if isinstance(exc, FacilityUnavailable):
        return exc.sent
    if isinstance(exc, RemoteNotFound):
        return False
    status = getattr(exc, "http_status", None)
    return status is None or status == 200 or status >= 500


def _branch_fields(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the form's ``dependencies`` branches add, with their rules (the keys the
    branches choose on left out)."""
    fields: dict[str, Any] = {}
    for key, dependency in (schema.get("dependencies") or {}).items():
        for branch in dependency.get("oneOf") or [] if isinstance(dependency, Mapping) else []:
            fields.update({name: rule for name, rule in (branch.get("properties") or {}).items() if name != key})
    return fields


def _prior_photometry_shape(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    for band, point in value.items():
        if not (isinstance(band, str) and _BAND.fullmatch(band) and isinstance(point, dict)):
            return False
        numbers = [point.get("jd"), point.get("mag")]
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
            return False
        if not (isinstance(point.get("obsdate"), str) and _ISO_DATE.fullmatch(point["obsdate"])):
            return False
    return True
