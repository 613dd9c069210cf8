"""Swift (the Neil Gehrels Swift Observatory): ToO requests, XRT products, archived observations.

One form, three kinds of request chosen by ``request_type`` (SkyPortal's values, so its payloads
keep working):

- ``XRT/UVOT ToO``: a Target of Opportunity request to the Swift ToO API, built and validated with
  ``swifttools`` (``too.py``), sent after a login with the allocation's shared secret; Swift's
  answer is read (accepted with a ToO id, validated, or rejected with its reasons), never assumed.
- ``XRT API``: XRT products built by the UKSSDC (``xrt.py``): submitted, followed until every
  product has ended, the built ones listed as frames with their URLs.
- ``XRT/UVOT/BAT Data``: the archived observations of the source in a date range (``archive.py``),
  answered at once with a count and a list (frames pointing at the archive).

An allocation may also announce its ToO and XRT requests by Slack or e-mail (``notify``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from ...core.answers import expect
from ...core.egress import INTERNAL
from ...core.errors import AltdataError, ConfigurationError, PayloadError, Rejected, RemoteError
from ...core.frames import frames_summary
from ...core.interface import Facility, FollowupRequest, Kind, Target, common_config_keys
from ...core.outcome import Outcome, State
from ...core.timeutil import DATE_PATTERN, iso_date, utcnow
from ...core.transport import HTTPCall, Transport
from ...notify import Event, Notifier, notification_altdata
from .. import branch_forms
from . import archive, too, xrt

TOO = "XRT/UVOT ToO"
XRT = "XRT API"
DATA = "XRT/UVOT/BAT Data"
DEFAULT_POLL_INTERVAL = 120.0
#: An accepted ToO is looked at this often (seconds): the Swift team decides within hours.
DEFAULT_TOO_POLL_INTERVAL = 1800.0
#: Where an observer follows an accepted ToO (Swift's ToO pages).
TOO_PAGE = "https://www.swift.psu.edu/toop"


class SwiftFacility(Facility):
    """Swift through the Swift ToO API and the UKSSDC's XRT products service.

    Configuration (deployment-wide): ``too_api_url`` (default ``https://www.swift.psu.edu/api/v2``),
    ``xrt_url`` (default ``https://www.swift.ac.uk/user_objects``), ``archive_url`` (where the
    archived observations are linked, never called; default HEASARC's Swift archive),
    ``poll_interval`` (seconds between status checks of XRT products; default 120: the UKSSDC
    asks for no more than one a minute), ``too_poll_interval`` (seconds between looks at an
    accepted ToO; default 1800), ``notify`` (see docs/notifications.md).
    """

    name: ClassVar[str] = "swift"
    title: ClassVar[str] = "Swift"
    kind: ClassVar[Kind] = Kind.OBSERVATION
    skyportal_class: ClassVar[str] = "UVOTXRTAPI"
    setup_url: ClassVar[str] = "https://www.swift.psu.edu/toop"
    priority_order: ClassVar[str] = "desc"
    example_remote_id: ClassVar[str] = "20001"
    config_keys: ClassVar[Mapping[str, str]] = {
        "too_api_url": "the Swift ToO API (default https://www.swift.psu.edu/api/v2), held to the egress rule",
        "xrt_url": "the UK Swift Science Data Centre's XRT product service, held to the egress rule",
        **common_config_keys("archive_url"),
        "poll_interval": "seconds between looks at an XRT product job (default 60)",
        "too_poll_interval": "seconds between looks at an accepted ToO (default 1800)",
        **common_config_keys("notify"),
    }

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        checks = (("too_api_url", too.api_url(self.config), True), ("xrt_url", xrt.base_url(self.config), False))
        for key, url, secret in checks:
            self.refuse_unusable_url(f"Swift {key}", url, secret=secret)
        self.refuse_unusable_url("Swift archive_url", archive.archive_url(self.config), secret=False, egress=INTERNAL)
        try:
            usable = self.poll_interval > 0 and self.too_poll_interval > 0
        except (TypeError, ValueError):
            usable = False
        if not usable:
            raise ConfigurationError("the Swift poll_interval and too_poll_interval must be numbers of seconds above 0")
        self.notifier = Notifier(self.config, egress=self.egress)

    @property
    def poll_interval(self) -> float:
        return float(self.config.get("poll_interval", DEFAULT_POLL_INTERVAL))

    @property
    def too_poll_interval(self) -> float:
        return float(self.config.get("too_poll_interval", DEFAULT_TOO_POLL_INTERVAL))

    # -- forms ---------------------------------------------------------------------------------

    @classmethod
    def altdata_schema(cls) -> dict[str, Any]:
        return notification_altdata(super().altdata_schema())

    def check_altdata(self, altdata: dict[str, Any]) -> None:
        """The username and secret go together (the schema's ``dependencies``); which credentials a
        request needs is checked with the request (an allocation for archive queries needs none)."""
        self.notifier.check_altdata(altdata, self.altdata_schema())

    def request_document(self) -> dict[str, Any]:
        schema = super().request_document()
        now = utcnow()
        branch_forms.set_branch_property(schema, "start_date", default=iso_date(now - timedelta(days=365)), pattern=DATE_PATTERN)
        branch_forms.set_branch_property(schema, "end_date", default=iso_date(now), pattern=DATE_PATTERN)
        branch_forms.set_branch_property(schema, "T0", default=now.strftime("%Y-%m-%d %H:%M:%S"), pattern=DATE_PATTERN)
        return schema

    def validate_payload(self, payload: Mapping[str, Any], target: Target | None = None) -> dict[str, Any]:
        """The kit's validation, with the chosen branch's defaults filled first and the branch's
        dates normalised: ``start_date``/``end_date`` to their UTC date, ``T0`` to UTC
        ``YYYY-MM-DD HH:MM:SS``."""
        if not isinstance(payload, Mapping):
            raise PayloadError.single("$", "must be an object")
        filled = branch_forms.fill_defaults(self.request_schema(), payload)
        branch_forms.normalise_times(filled, dates=("start_date", "end_date"), instants=("T0",))
        return super().validate_payload(filled, target)

    def check_payload(self, payload: dict[str, Any]) -> None:
        branch_forms.unknown_fields(self.request_schema(), payload)
        kind = payload["request_type"]
        if kind == DATA:
            archive.check_window(payload)

    def window_end(self, payload: Mapping[str, Any]) -> datetime | None:
        """A ToO campaign runs ``exposure_counts`` visits ``monitoring_freq`` days apart: it is
        followed at least that long from now. XRT products and archive queries observe nothing:
        None (their ``end_date`` bounds a search of the past)."""
        if payload.get("request_type") != TOO:
            return None
        return utcnow() + timedelta(days=int(payload["exposure_counts"]) * float(payload["monitoring_freq"]))

    # -- the remote calls ----------------------------------------------------------------------

    @staticmethod
    def _needs(altdata: Mapping[str, Any], kind: str) -> None:
        """``AltdataError`` when the allocation lacks what this kind of request needs."""
        if kind == TOO and "secret" not in altdata:
            raise AltdataError.single("$.username", "a ToO request needs the allocation's Swift ToO username and shared secret")
        if kind == XRT and "XRT_UserID" not in altdata:
            raise AltdataError.single("$.XRT_UserID", "an XRT product request needs the allocation's XRT products e-mail")

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        """The request's main call: the ToO post (after the login, which carries the secret), the
        XRT job, or the observation query."""
        kind = request.payload["request_type"]
        self._needs(request.allocation.altdata, kind)
        if kind == TOO:
            return too.submit_call(self.config, request)
        if kind == XRT:
            return xrt.submit_call(self.config, request)
        return archive.query_call(self.config, request)

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        kind = request.payload["request_type"]
        if kind == DATA:
            return self._observations(request, transport)
        outcome = self._submit_too(request, transport) if kind == TOO else self._submit_xrt(request, transport)
        if outcome.state is State.SUBMITTED:
            announced = self.notifier.announce(request, transport, Event.NEW, facility=self.title, form=self.request_schema())
            outcome = dataclasses.replace(outcome, detail=outcome.detail + announced.note)
        return outcome

    def _login(self, request: FollowupRequest, transport: Transport) -> None:
        expect(transport.send(too.login_call(self.config, request.allocation.altdata)), 200, service=too.SERVICE)

    def _submit_too(self, request: FollowupRequest, transport: Transport) -> Outcome:
        call = self.prepare(request)
        with transport.cookie_session():
            self._login(request, transport)
            response = transport.send(call)
        try:
            answer = too.read_answer(response)
        except RemoteError as exc:
            detail = f"{exc}; the ToO may have reached Swift: check your requests at {TOO_PAGE} before submitting again"
            return Outcome(State.FAILED, detail, maybe_sent=True)
        warnings = "".join(f"; warning: {w}" for w in answer["warnings"])
        if answer["status"] == "Rejected":
            raise Rejected("; ".join(answer["errors"]) or "Swift rejected the ToO without a reason")
        if answer["status"] == "Accepted" and isinstance(answer["too_id"], int) and not isinstance(answer["too_id"], bool):
            detail = f"Swift accepted ToO {answer['too_id']}{warnings}"
            return Outcome(State.SUBMITTED, detail, remote_id=str(answer["too_id"]), poll_after=self.too_poll_interval)
        if answer["status"] == "Accepted":
            detail = f"Swift accepted the ToO without naming its id{warnings}; find it at {TOO_PAGE} before submitting again"
        else:
            detail = f"Swift answered '{answer['status']}' to the ToO{warnings}; check your requests at {TOO_PAGE} before submitting again"
        return Outcome(State.FAILED, detail, maybe_sent=True)

    def _submit_xrt(self, request: FollowupRequest, transport: Transport) -> Outcome:
        response = transport.send(self.prepare(request))
        try:
            answer = xrt.read(response, "the product request")
        except RemoteError as exc:  # an answer that proves nothing: the job may exist
            detail = f"{exc}; the job may have been created: check your jobs at the UKSSDC before submitting again"
            return Outcome(State.FAILED, detail, maybe_sent=True)
        try:
            job, url = answer.get("JobID"), xrt.job_url(answer, self.config)
            if not isinstance(job, (int, str)) or isinstance(job, bool) or not str(job).strip():
                raise RemoteError(f"{xrt.SERVICE} named no JobID")
        except RemoteError as exc:
            detail = f"the UKSSDC accepted the XRT product request but {exc}; check your jobs there before submitting again"
            return Outcome(State.FAILED, detail, maybe_sent=True)
        return Outcome(State.SUBMITTED, f"UKSSDC XRT products job {job}", remote_id=str(job), poll_after=self.poll_interval, cursor=url)

    def _observations(self, request: FollowupRequest, transport: Transport) -> Outcome:
        observations = archive.read(transport.send(self.prepare(request)))
        frames = archive.frames(self.config, observations)
        state = State.COMPLETED if observations else State.NO_DATA
        return Outcome(state, archive.summary(observations, request.payload), frames=frames)

    def get(self, request: FollowupRequest, transport: Transport) -> Outcome:
        kind = request.payload["request_type"]
        if kind == DATA:
            return self._observations(request, transport)
        if kind == TOO:
            return self._follow_too(request, transport)
        self._needs(request.allocation.altdata, kind)
        url = request.cursor
        if not url:
            raise RemoteError("the XRT job's products URL was not kept; it cannot be followed", permanent=True)
        states = xrt.product_states(xrt.read(transport.send(xrt.status_call(self.config, request)), "the job's status"))
        remote_id = request.remote_id
        frames = xrt.frames(url, states)  # those built so far, while the others run
        if any(code == xrt.RUNNING for code, _ in states.values()):
            return Outcome(State.RUNNING, xrt.summary(states), remote_id=remote_id, poll_after=self.poll_interval, frames=frames)
        if any(0 < code < xrt.DONE or code > xrt.DONE for code, _ in states.values()):
            return Outcome(State.QUEUED, xrt.summary(states), remote_id=remote_id, poll_after=self.poll_interval, frames=frames)
        if not frames:
            return Outcome(State.NO_DATA, f"no product could be built: {xrt.summary(states)}", remote_id=remote_id)
        failed = [f"{xrt.PRODUCTS[s]}: {text}" for s, (code, text) in states.items() if code != xrt.DONE]
        detail = frames_summary(frames, "product") + (f"; not built: {'; '.join(failed)}" if failed else "")
        return Outcome(State.COMPLETED, detail, remote_id=remote_id, frames=frames)

    def _follow_too(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """An accepted ToO: the Swift team's decision, its calendar, and whether it is done."""
        too_id = str(request.remote_id)
        entry = too.read_status(transport.send(too.status_call(self.config, too_id)), too_id)
        observed = f"{entry['observed'] / 1000:.1f} ks observed" + (f" of {entry['asked'] / 1000:.1f} ks" if entry["asked"] else "")
        decision = (entry["decision"] or "").lower()
        if decision.startswith(("reject", "declin")):
            return Outcome(State.CANCELED, f"the Swift team declined ToO {too_id} ({entry['decision']})", remote_id=too_id)
        if entry["done"]:
            state = State.COMPLETED if entry["observed"] > 0 else State.NO_DATA
            return Outcome(state, f"ToO {too_id} done: {observed}; data at {TOO_PAGE}", remote_id=too_id)
        if decision.startswith("approv"):
            plan = f"{entry['windows']} calendar window{'' if entry['windows'] == 1 else 's'}, {observed}"
            state = State.RUNNING if entry["observed"] > 0 else State.QUEUED
            return Outcome(state, f"the Swift team approved ToO {too_id}: {plan}", remote_id=too_id, poll_after=self.too_poll_interval)
        return Outcome(State.SUBMITTED, f"ToO {too_id} awaits the Swift team's decision", remote_id=too_id, poll_after=self.too_poll_interval)

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        kind = request.payload["request_type"]
        if not request.remote_id or kind == DATA:
            return Outcome(State.DELETED, "nothing to cancel at Swift", remote_id=request.remote_id)
        if kind == TOO:
            detail = f"deleted here only: the Swift ToO API cannot withdraw ToO {request.remote_id}; ask the Swift team through {TOO_PAGE}"
            return Outcome(State.DELETED, detail, remote_id=request.remote_id)
        self._needs(request.allocation.altdata, kind)
        xrt.read(transport.send(xrt.cancel_call(self.config, request)), "the cancellation")
        return Outcome(State.DELETED, f"UKSSDC XRT products job {request.remote_id} canceled", remote_id=request.remote_id)

    def remote_validate(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """A ToO is checked by the ToO API itself (``validate_only``: nothing is created); an XRT
        product request by ``swifttools`` only (the UKSSDC has no such call); an archive query is
        simply run (it only reads)."""
        kind = request.payload["request_type"]
        if kind == DATA:
            outcome = self._observations(request, transport)
            return Outcome(State.PENDING, f"the query would find {outcome.detail}")
        if kind == XRT:
            self.prepare(request)
            return Outcome(State.PENDING, "swifttools accepts the XRT product request (the UKSSDC offers no validation call)")
        call = self._validation_call(request)
        with transport.cookie_session():
            self._login(request, transport)
            answer = too.read_answer(transport.send(call))
        if answer["status"] == "Rejected" or answer["errors"]:
            raise Rejected("; ".join(answer["errors"]) or "Swift rejected the ToO without a reason")
        if answer["status"] != "Validated":
            raise RemoteError(f"{too.SERVICE} answered '{answer['status']}' to a validation")
        warnings = "".join(f"; warning: {w}" for w in answer["warnings"])
        return Outcome(State.PENDING, f"Swift would accept the ToO{warnings}")

    def _validation_call(self, request: FollowupRequest) -> HTTPCall:
        self._needs(request.allocation.altdata, TOO)
        return too.submit_call(self.config, request, validate_only=True)

