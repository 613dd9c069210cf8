"""SLACK: a follow-up request posted to a Slack channel through an incoming webhook.

The allocation holds the three parts of the webhook URL (SkyPortal's follow-up guide); the
message is the notifier's (``facility_apis.notify``), posted straight to
``<slack_base_url>/services/<workspace>/<channel>/<token>`` (``notify.slack_base_url`` in the
deployment's configuration, Slack's own by default). An update posts an "updated" message and a
delete a "cancelled" one, both carrying the first message's reference.

Unlike SkyPortal's SLACKAPI: no separate Slack microservice, the token masked in every stored
record, Slack's error answers read into a clear ``rejected`` status, and a request already
announced can be updated and cancelled (SkyPortal's refuses to delete it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ...core.interface import Facility, FollowupRequest, Kind, common_config_keys
from ...core.outcome import Outcome, State
from ...core.transport import HTTPCall, Transport
from ...notify import Event, Notifier
from .form import check_filters, filter_choices


class SlackFacility(Facility):
    """SLACK (SkyPortal's SLACKAPI). Configuration: ``notify`` (``slack_base_url``,
    ``skyportal_url``, ``app_title``; see ``facility_apis.notify.notifier``)."""

    name: ClassVar[str] = "slack"
    title: ClassVar[str] = "SLACK"
    kind: ClassVar[Kind] = Kind.NOTIFICATION
    skyportal_class: ClassVar[str] = "SLACKAPI"
    setup_url: ClassVar[str] = "https://api.slack.com/messaging/webhooks"
    example_remote_id: ClassVar[str] = "notice-0123456789ab"
    config_keys: ClassVar[Mapping[str, str]] = common_config_keys("notify")

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        self.notifier = Notifier(self.config, egress=self.egress)

    def instrument_form(self, schema: dict[str, Any], *, name: str | None, filters: tuple[str, ...]) -> dict[str, Any]:
        return filter_choices(schema, filters)

    def _post(self, request: FollowupRequest, transport: Transport, event: Event) -> str:
        """Post the notice of ``event``; return its reference."""
        return self.notifier.send(request, transport, event, facility=self.title, form=self.request_schema(), via="slack").reference

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        return self.notifier.slack_call(request, Event.NEW, facility=self.title, form=self.request_schema())

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        check_filters(request)
        return Outcome(State.SUBMITTED, "posted to Slack", remote_id=self._post(request, transport, Event.NEW))

    def update(self, request: FollowupRequest, transport: Transport) -> Outcome:
        check_filters(request)
        return Outcome(State.SUBMITTED, "update posted to Slack", remote_id=self._post(request, transport, Event.UPDATED))

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if request.remote_id is None:
            return Outcome(State.DELETED, "nothing had been posted to Slack")
        return Outcome(State.DELETED, "cancellation posted to Slack", remote_id=self._post(request, transport, Event.CANCELLED))
