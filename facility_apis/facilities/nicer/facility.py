"""NICER Target of Opportunity requests through HEASARC ARK's two-step web form (see ``ark.py``).

One cookie-carrying session per operation: the login (credentials in the POST body only), the
verification, and after a verified form the submission. The verification alone is the remote
validation (``facility-apis submit nicer --remote-validate``): it creates nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from ...core.errors import ConfigurationError, PayloadError
from ...core.interface import Facility, FollowupRequest, Kind, Target, common_config_keys
from ...core.outcome import Outcome, State
from ...core.timeutil import DATE_PATTERN, utcnow
from ...core.transport import HTTPCall, Transport
from .. import branch_forms
from . import ark

DEFAULT_BASE_URL = "https://heasarc.gsfc.nasa.gov"
DATE_TIMES = ("PhaseDependentEpoch", "TimeRangeStart", "TimeRangeEnd")


class NICERFacility(Facility):
    """NICER on the International Space Station, through HEASARC ARK's ToO form.

    Configuration (deployment-wide): ``base_url`` (default ``https://heasarc.gsfc.nasa.gov``),
    ``confirmation_markers`` (phrases of ARK's page confirming a submission; default
    ``ark.CONFIRMATION_MARKERS``).
    """

    name: ClassVar[str] = "nicer"
    title: ClassVar[str] = "NICER"
    kind: ClassVar[Kind] = Kind.OBSERVATION
    skyportal_class: ClassVar[str] = "NICERAPI"
    #: A specific time range (``SpecificTimeRangeObservation`` Y) ends the observing window.
    window_field: ClassVar[str] = "TimeRangeEnd"
    setup_url: ClassVar[str] = "https://heasarc.gsfc.nasa.gov/ark/nicertoo/help.html"
    example_remote_id: ClassVar[str] = "ZTF26aaaaaaa 2026-11-30T12:00:00Z"
    config_keys: ClassVar[Mapping[str, str]] = {
        **common_config_keys("base_url"),
        "confirmation_markers": "the phrases of ARK's page that confirm a submission (a list; default the known wording)",
    }
    base_url_key: ClassVar[str | None] = "base_url"

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        reason = self.egress.refusal(self.base_url, secret=True)
        if reason is not None:
            raise ConfigurationError(f"the configured NICER base_url is refused: {reason}")
        markers = self.config.get("confirmation_markers")
        if markers is not None and not (isinstance(markers, list) and markers and all(isinstance(m, str) and m.strip() for m in markers)):
            raise ConfigurationError("the NICER confirmation_markers must be a non-empty list of phrases")

    @property
    def base_url(self) -> str:
        return str(self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    # -- the form ------------------------------------------------------------------------------

    def request_document(self) -> dict[str, Any]:
        schema = super().request_document()
        now = utcnow().replace(microsecond=0)
        for key in DATE_TIMES:
            branch_forms.set_branch_property(schema, key, pattern=DATE_PATTERN)
        branch_forms.set_branch_property(schema, "TimeRangeStart", default=now.strftime("%Y-%m-%d %H:%M:%S"))
        branch_forms.set_branch_property(schema, "TimeRangeEnd", default=(now + timedelta(days=7)).strftime("%Y-%m-%d %H:%M:%S"))
        return schema

    def validate_payload(self, payload: Mapping[str, Any], target: Target | None = None) -> dict[str, Any]:
        """The kit's validation, with the chosen options' defaults filled first and their dates
        normalised to UTC ``YYYY-MM-DD HH:MM:SS``."""
        if not isinstance(payload, Mapping):
            raise PayloadError.single("$", "must be an object")
        filled = branch_forms.fill_defaults(self.request_schema(), payload)
        branch_forms.normalise_times(filled, instants=DATE_TIMES)
        return super().validate_payload(filled, target)

    def check_payload(self, payload: dict[str, Any]) -> None:
        branch_forms.unknown_fields(self.request_schema(), payload)
        if payload.get("SpecificTimeRangeObservation") == "Y" and payload["TimeRangeEnd"] <= payload["TimeRangeStart"]:
            raise PayloadError.single("$.TimeRangeEnd", "must be after TimeRangeStart")

    # -- the remote calls ----------------------------------------------------------------------

    def login_call(self, altdata: Mapping[str, Any]) -> HTTPCall:
        """ARK's login: the credentials in the form body, never in the URL."""
        body = {"destination": ark.FORM_PATH, "credential_0": altdata["username"], "credential_1": altdata["password"]}
        return HTTPCall("POST", f"{self.base_url}{ark.LOGIN_PATH}", data=body, repeatable=True)  # creates nothing

    def _form_call(self, request: FollowupRequest, button: dict[str, str]) -> HTTPCall:
        """The form post; the verification creates nothing (repeatable), the submission does."""
        headers = {"Accept": "text/html,application/xhtml+xml"}
        data = {**ark.form_fields(request), **button}
        return HTTPCall("POST", f"{self.base_url}{ark.FORM_PATH}", headers=headers, data=data, repeatable=button is ark.VERIFY_BUTTON)

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        """The verification post (after the login; the submission repeats it with the Submit
        button once ARK has verified it)."""
        return self._form_call(request, ark.VERIFY_BUTTON)

    def _verify(self, request: FollowupRequest, transport: Transport) -> None:
        ark.check_login(transport.send(self.login_call(request.allocation.altdata)))
        ark.read_verification(transport.send(self.prepare(request)))

    def remote_validate(self, request: FollowupRequest, transport: Transport) -> Outcome:
        with transport.cookie_session():
            self._verify(request, transport)
        return Outcome(State.PENDING, "ARK verified the NICER ToO form (nothing was submitted)")

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        with transport.cookie_session():
            self._verify(request, transport)
            response = transport.send(self._form_call(request, ark.SUBMIT_BUTTON))
        activity = f"{self.base_url}{ark.ACTIVITY_PATH}"
        if ark.is_confirmation(response, ark.markers(self.config)):
            stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
            detail = f"ARK confirmed the NICER ToO request; it is listed on your ARK Recent Activity page ({activity})"
            return Outcome(State.SUBMITTED, detail, remote_id=f"{request.target.id} {stamp}")
        seen = ark.html_line(response.text or "") or "an empty page"
        detail = (
            f"ARK answered the submission with HTTP {response.status_code} and a page this package does not recognise ({ark.one_line(seen)}); "
            f"the request may have been submitted: check your ARK Recent Activity page ({activity}) before submitting again"
        )
        return Outcome(State.FAILED, detail, maybe_sent=True)

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if not request.remote_id:
            return Outcome(State.DELETED, "nothing had been sent to NICER")
        detail = "deleted here only: ARK cannot withdraw a submitted NICER ToO request (it went to the NICER team at once); write to the NICER team"
        return Outcome(State.DELETED, detail, remote_id=request.remote_id)
