"""The Liverpool Telescope over RTML: what IO:O, IO:I and SPRAT share.

Protocol (sources in ``rtml.py`` and ``soap.py``): every call is one SOAP ``handle_rtml`` to the
node agent, carrying one RTML 3.1a document, with the allocation's ``Username``/``Password`` in
HTTP headers.

- submit: a ``request`` document (one Schedule per filter for the imagers). ``confirm`` means the
  TEA created a Phase 2 group named by the document's ``uid``, which becomes the remote id;
  ``reject`` carries the reason in ``Error`` elements.
- remote validation: the same document with ``mode="inquiry"``; ``offer`` means LT would accept
  it, ``reject`` that it would not. Nothing is queued.
- delete: an ``abort`` document for the request's own uid. The TEA expires the group and answers
  ``abort`` (its source says RTML 3.1a wants ``confirm``; both are read as success), or
  ``reject`` with the reason, when the request keeps its state.

LT offers no way to ask where a group stands (TOM Toolkit's ``tom_lt`` has no status either), so
there is no ``get``: an accepted request stays ``submitted``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

import requests

from ...core.errors import FacilityUnavailable, PayloadError, Rejected, RemoteError, RemoteNotFound
from ...core.interface import Facility, FollowupRequest, Kind, common_config_keys
from ...core.outcome import Outcome, State
from ...core.schemas import load_schema
from ...core.timeutil import INSTANT_PATTERN, parse_utc, utc_instant, utcnow
from ...core.transport import HTTPCall, Transport
from . import rtml, soap

DEFAULT_BASE_URL = "https://161.72.57.3:8080/node_agent2/node_agent"
SERVICE = "the Liverpool Telescope"
#: The observation window offered by default: from now, for this long.
DEFAULT_WINDOW = timedelta(days=7)
#: The request fields every LT instrument shares, in form order (``schemas/lt/request.json``).
COMMON_FORM = "lt/request"
#: The window's fields: a date and time each, in any spelling of ``core.timeutil.INSTANT_PATTERN``
#: (SkyPortal's request form fills them as "YYYY-MM-DD HH:MM:SS", UTC without a zone).
WINDOW_FIELDS = ("start_date", "end_date")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _may_have_arrived(exc: Exception) -> bool:
    """Whether a failed submission may still have created the group at LT: no answer came after
    sending, or an answer came that could not be read (a SOAP fault, a 3xx, 4xx or 404 means the
    call did not run)."""
    if isinstance(exc, FacilityUnavailable):
        return exc.sent
    if isinstance(exc, (soap.SoapFault, RemoteNotFound)):
        return False
    status = getattr(exc, "http_status", None)
    return status is None or not 300 <= status < 500


class LiverpoolFacility(Facility, abstract=True):
    """The Liverpool Telescope's RTML/SOAP protocol; a subclass names one instrument.

    A subclass declares the metadata, ships ``schemas/<name>/request.json`` with its own fields
    (merged with the shared ``schemas/lt/request.json``), and implements :meth:`exposures`.

    Config (deployment-wide): ``base_url``, the node agent's ``handle_rtml`` endpoint (default
    ``DEFAULT_BASE_URL``: LT's published host and port with https; see the docs page). The
    password travels in a header, so the egress rule admits only https (or a loopback address).
    """

    kind: ClassVar[Kind] = Kind.OBSERVATION
    setup_url: ClassVar[str] = "https://telescope.livjm.ac.uk/PropInst/RTML/"
    example_remote_id: ClassVar[str] = "ZTF26abcdefg_42_3f9a0c2b7d1e"
    config_keys: ClassVar[Mapping[str, str]] = common_config_keys("base_url")
    base_url_key: ClassVar[str | None] = "base_url"

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        self.refuse_unusable_url("Liverpool Telescope base_url", self.base_url)

    @property
    def base_url(self) -> str:
        return str(self.config.get("base_url") or DEFAULT_BASE_URL)

    # -- forms ---------------------------------------------------------------------------------

    @classmethod
    def altdata_schema(cls) -> dict[str, Any]:
        """The allocation form every LT instrument shares: ``schemas/lt/altdata.json``."""
        return load_schema("lt/altdata", cls.schema_package)

    def request_schema(self) -> dict[str, Any]:
        """The instrument's fields (``schemas/<name>/request.json``) followed by the shared ones
        (``schemas/lt/request.json``), with the window's defaults computed now and its fields'
        ``INSTANT_PATTERN`` (their descriptions say it in words)."""
        schema = load_schema(f"{self.name}/request", self.schema_package)
        common = load_schema(COMMON_FORM, self.schema_package)
        schema["properties"] = {**schema["properties"], **common["properties"]}
        schema["required"] = [*schema.get("required", []), *common["required"]]
        for key, value in self.request_defaults().items():
            schema["properties"][key]["default"] = value
        for key in WINDOW_FIELDS:
            schema["properties"][key]["pattern"] = INSTANT_PATTERN
        return schema

    @classmethod
    def ui_schema(cls) -> dict[str, Any]:
        """The request form's field order: the instrument's fields, then the shared ones."""
        own = load_schema(f"{cls.name}/request", cls.schema_package)["properties"]
        common = load_schema(COMMON_FORM, cls.schema_package)["properties"]
        return {"ui:order": [*own, *common]}

    def request_defaults(self) -> dict[str, Any]:
        now = utcnow().replace(microsecond=0)
        return {"start_date": _iso(now), "end_date": _iso(now + DEFAULT_WINDOW)}

    def check_payload(self, payload: dict[str, Any]) -> None:
        window = {}
        for key in WINDOW_FIELDS:
            try:  # the pattern passed; this also refuses what Python's "$" let through (a final newline)
                window[key] = utc_instant(payload[key])
            except ValueError as exc:
                raise PayloadError.single(f"$.{key}", str(exc)) from None
        start, end = window["start_date"], window["end_date"]
        if end <= start:
            raise PayloadError.single("$.end_date", "must be after start_date")
        if end <= utcnow():
            raise PayloadError.single("$.end_date", "must be in the future (the window would have closed before LT saw it)")

    # -- what an instrument adds -----------------------------------------------------------------

    def exposures(self, payload: Mapping[str, Any]) -> list[rtml.Exposure]:
        """The exposures a payload asks for, one Schedule each (one per filter for an imager)."""
        raise NotImplementedError

    # -- the documents ---------------------------------------------------------------------------

    @staticmethod
    def new_uid(request: FollowupRequest) -> str:
        """A new RTML uid, the Phase 2 group's name: the source's name, SkyPortal's request id and
        48 random bits, in ``[A-Za-z0-9_]`` (``rtml.UID_RULE``). New for every document, so a
        resubmission never collides with an earlier group."""
        name = re.sub(r"[^A-Za-z0-9]+", "_", request.target.id).strip("_")[:24] or "target"
        return f"{name}_{request.id if request.id is not None else 0}_{secrets.token_hex(6)}"

    def _constraints(self, payload: Mapping[str, Any]) -> rtml.Constraints:
        return rtml.Constraints(
            max_airmass=float(payload["maximum_airmass"]),
            max_seeing=float(payload["maximum_seeing"]),
            sky_brightness=float(payload["sky_brightness"]),
            photometric=bool(payload["photometric"]),
            start=parse_utc(payload["start_date"]),
            end=parse_utc(payload["end_date"]),
        )

    def _call(self, request: FollowupRequest, document: str) -> HTTPCall:
        altdata = request.allocation.altdata
        return HTTPCall("POST", self.base_url, headers=soap.headers(altdata["username"], altdata["password"]), data=soap.envelope(document))

    def _observation_call(self, request: FollowupRequest, mode: str, uid: str) -> HTTPCall:
        altdata, payload = request.allocation.altdata, request.payload
        document = rtml.observation_document(
            mode, uid, project=altdata["LT_proposalID"], username=altdata["username"], target=request.target,
            exposures=self.exposures(payload), constraints=self._constraints(payload),
        )  # fmt: skip
        return self._call(request, document)

    def _exchange(self, transport: Transport, call: HTTPCall) -> rtml.Reply:
        response: requests.Response = transport.send(call)
        return rtml.parse_reply(soap.returned(response, service=SERVICE), service=SERVICE)

    # -- the operations ----------------------------------------------------------------------------

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        """The ``handle_rtml`` call carrying the ``request`` document, with a new uid (the one a
        submission sends is its own, and becomes its remote id)."""
        return self._observation_call(request, "request", self.new_uid(request))

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        uid = self.new_uid(request)
        try:
            reply = self._exchange(transport, self._observation_call(request, "request", uid))
            if reply.mode == "reject":
                raise Rejected(reply.reason or f"{SERVICE} rejected the request without giving a reason")
            if reply.mode != "confirm":
                raise RemoteError(f"{SERVICE} answered the request with an RTML {reply.mode!r} document instead of confirm or reject")
        except (RemoteError, FacilityUnavailable) as exc:
            if not _may_have_arrived(exc):
                raise
            # The uid goes first: a long error cut to the detail's length must not lose it.
            return Outcome(State.FAILED, f"Phase 2 group {uid} may exist at {SERVICE} (check the Phase 2 tool before submitting again): {exc}", maybe_sent=True)
        return Outcome(State.SUBMITTED, f"Liverpool Telescope group {uid}", remote_id=uid)

    def remote_validate(self, request: FollowupRequest, transport: Transport) -> Outcome:
        reply = self._exchange(transport, self._observation_call(request, "inquiry", self.new_uid(request)))
        if reply.mode == "offer":
            return Outcome(State.PENDING, f"{SERVICE} would accept this request (it answered with an offer); nothing was queued")
        if reply.mode == "reject":
            raise Rejected(reply.reason or f"{SERVICE} would not accept the request and gave no reason")
        raise RemoteError(f"{SERVICE} answered the inquiry with an RTML {reply.mode!r} document instead of offer or reject")

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        uid = request.remote_id
        if not uid:
            return Outcome(State.DELETED, f"nothing had been sent to {SERVICE}")
        if not rtml.UID_RULE.fullmatch(uid):
            raise RemoteError(f"the recorded group name {uid!r} is not an RTML uid this package sent; abort it in the Phase 2 tool", permanent=True)
        altdata = request.allocation.altdata
        document = rtml.abort_document(uid, project=altdata["LT_proposalID"], username=altdata["username"])
        reply = self._exchange(transport, self._call(request, document))
        if reply.mode in ("confirm", "abort"):
            return Outcome(State.DELETED, f"aborted at {SERVICE}: group {uid} expires now", remote_id=uid)
        if reply.mode == "reject":
            reason = reply.reason or "no reason given"
            return Outcome(State.SUBMITTED, f"{SERVICE} refused to abort group {uid}: {reason}", remote_id=uid)
        raise RemoteError(f"{SERVICE} answered the abort with an RTML {reply.mode!r} document instead of confirm or reject")
