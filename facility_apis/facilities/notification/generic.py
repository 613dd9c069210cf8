"""GENERIC: a follow-up request forwarded to another service's API, posted to Slack or e-mailed.

The allocation's ``notification_type`` chooses (SkyPortal's follow-up guide, its GENERICAPI):

- ``API``: the request is forwarded to ``endpoint`` as SkyPortal's GENERICAPI does, and updated
  and deleted there by the id it answers with (``partner.py``);
- ``slack`` and ``email``: the request is announced, then its update and its cancellation, by
  the notifier (``facility_apis.notify``); it is submitted once the message is accepted.

Unlike SkyPortal's GENERICAPI, the branch fields are required in Python (not only in the browser),
an update follows the allocation's own mode (SkyPortal's posts to ``endpoint`` whatever the mode,
a ``KeyError`` for Slack and e-mail allocations), Slack is posted to directly rather than through a
separate microservice, and every token is masked in what is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ...core.interface import Facility, FollowupRequest, Kind, common_config_keys
from ...core.outcome import Outcome, State
from ...core.transport import HTTPCall, MessageCall, Transport
from ...notify import Event, Notifier, notification_altdata
from . import partner
from .form import check_filters, check_window, filter_choices, window_defaults


class GenericFacility(Facility):
    """GENERIC (SkyPortal's GENERICAPI).

    Configuration: ``notify`` (see ``facility_apis.notify.notifier``): the SkyPortal URL for the
    source link, Slack's base URL and the SMTP server that e-mail allocations need.
    """

    name: ClassVar[str] = "generic"
    title: ClassVar[str] = "GENERIC"
    kind: ClassVar[Kind] = Kind.NOTIFICATION
    skyportal_class: ClassVar[str] = "GENERICAPI"
    example_remote_id: ClassVar[str] = "42"
    config_keys: ClassVar[Mapping[str, str]] = common_config_keys("notify")
    #: The window's first and last night, in any spelling of ``DATE_PATTERN`` (SkyPortal's form
    #: may put "YYYY-MM-DD HH:MM:SS" in them).
    date_fields: ClassVar[tuple[str, ...]] = ("start_date", "end_date")

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        self.notifier = Notifier(self.config, egress=self.egress)

    @classmethod
    def altdata_schema(cls) -> dict[str, Any]:
        """GENERIC's own ``API`` branch, plus the notifier's ``slack`` and ``email`` branches."""
        return notification_altdata(super().altdata_schema())

    def check_altdata(self, altdata: dict[str, Any]) -> None:
        if altdata["notification_type"] == "API":
            self.check_url(altdata, "endpoint")
        self.notifier.check_altdata(altdata, self.altdata_schema())

    def request_defaults(self) -> dict[str, Any]:
        return window_defaults()

    def check_payload(self, payload: dict[str, Any]) -> None:
        check_window(payload)

    def instrument_form(self, schema: dict[str, Any], *, name: str | None, filters: tuple[str, ...]) -> dict[str, Any]:
        return filter_choices(schema, filters)

    # -- operations ----------------------------------------------------------------------------

    @staticmethod
    def _by_api(request: FollowupRequest) -> bool:
        return request.allocation.altdata.get("notification_type") == "API"

    def _announce(self, request: FollowupRequest, transport: Transport, event: Event) -> tuple[str, str]:
        """Send the notice of ``event``; return its reference (the request's remote id) and where
        it went."""
        delivery = self.notifier.send(request, transport, event, facility=self.title, form=self.request_schema())
        return delivery.reference, delivery.detail

    def prepare(self, request: FollowupRequest) -> HTTPCall | MessageCall:
        """API mode: the forwarding ``POST``; slack: the webhook post; e-mail: the message (a
        ``MessageCall``, from the deployment's SMTP settings)."""
        if self._by_api(request):
            return partner.submission(request)
        if request.allocation.altdata.get("notification_type") == "slack":
            return self.notifier.slack_call(request, Event.NEW, facility=self.title, form=self.request_schema())
        return self.notifier.email_call(request, Event.NEW, facility=self.title, form=self.request_schema())

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        check_filters(request)
        if self._by_api(request):
            return partner.submit(request, transport)
        reference, detail = self._announce(request, transport, Event.NEW)
        return Outcome(State.SUBMITTED, detail, remote_id=reference)

    def update(self, request: FollowupRequest, transport: Transport) -> Outcome:
        check_filters(request)
        if self._by_api(request):
            return partner.update(request, transport)
        reference, detail = self._announce(request, transport, Event.UPDATED)
        return Outcome(State.SUBMITTED, f"update {detail}", remote_id=reference)

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if request.remote_id is None:
            return Outcome(State.DELETED, "nothing had been sent")
        if self._by_api(request):
            return partner.delete(request, transport)
        reference, detail = self._announce(request, transport, Event.CANCELLED)
        return Outcome(State.DELETED, f"cancellation {detail}", remote_id=reference)
