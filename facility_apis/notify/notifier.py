"""The notifier: announce a follow-up request by Slack or e-mail, as its allocation says.

A facility builds one ``Notifier`` from its deployment configuration and calls it from its
operations::

    self.notifier = Notifier(self.config, egress=self.egress)            # in __init__
    self.notifier.check_altdata(altdata, self.altdata_schema())          # in check_altdata
    delivery = self.notifier.send(request, transport, Event.NEW, facility=self.title, form=self.request_schema())

``send`` raises the kit's typed errors (``Rejected``, ``RemoteError``, ``FacilityUnavailable``,
``AltdataError``), which ``perform`` maps to outcomes like any other failure, and records every
exchange (the Slack post as an HTTP transaction, the e-mail as an ``SMTP`` one) in the transport.

Deployment configuration, the ``notify`` mapping of the facility's ``config``::

    notify:
      skyportal_url: https://skyportal.example.org   # a link to the source page in every message
      app_title: Fritz                               # names the sender ("SkyPortal" by default)
      slack_base_url: https://hooks.slack.com        # where webhooks live (tests: the emulator)
      smtp: {host: ..., port: ..., security: starttls, username: ..., password_file: ..., from_address: ...}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from ..core.egress import INTERNAL, EgressPolicy
from ..core.errors import AltdataError, ConfigurationError, FacilityError
from ..core.interface import FollowupRequest
from ..core.redact import get_logger
from ..core.transport import HTTPCall, MessageCall, Transport
from .altdata import check_notification_altdata, include_comments, parse_addresses
from .config import settings_mapping
from .mail import build_email, new_message_id
from .message import Event, Notice, build_notice, one_line
from .slack import DEFAULT_BASE_URL, read_answer, webhook_call, webhook_url
from .smtp import SMTPSettings, send_mail

_KEYS = {"skyportal_url", "app_title", "slack_base_url", "smtp"}

log = get_logger(__name__)

#: Makes the notice to send for a reference (the tie between the messages about one request).
NoticeBuilder = Callable[[str | None], Notice]


@dataclass(frozen=True)
class NotifySettings:
    """The deployment's notification settings (see the module docstring)."""

    skyportal_url: str | None = None
    app_title: str = "SkyPortal"
    slack_base_url: str = DEFAULT_BASE_URL
    smtp: SMTPSettings | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, *, egress: EgressPolicy) -> NotifySettings:
        """Settings from the ``notify`` mapping (``None``: the defaults). ``slack_base_url`` is
        held to ``egress`` as a URL credentials travel to (the webhook token is in its path);
        ``skyportal_url`` is only shown, never called, and must be http(s) without credentials.
        ``ConfigurationError`` names the key and the rule."""
        if config is None:
            return cls()
        config = settings_mapping(config, "notify", _KEYS)
        skyportal_url = config.get("skyportal_url")
        if skyportal_url is not None:
            reason = INTERNAL.refusal(skyportal_url) if isinstance(skyportal_url, str) and one_line(skyportal_url) == skyportal_url else "it must be one line"
            if reason is not None:
                raise ConfigurationError(f"notify.skyportal_url is refused: {reason}")
        base = config.get("slack_base_url", DEFAULT_BASE_URL)
        reason = egress.refusal(base, secret=True) if isinstance(base, str) and one_line(base) == base else "it must be one line of text"
        if reason is not None:
            raise ConfigurationError(f"notify.slack_base_url is refused: {reason}")
        title = config.get("app_title", "SkyPortal")
        if not isinstance(title, str) or not one_line(title) or len(title) > 100:
            raise ConfigurationError("notify.app_title must be a line of at most 100 characters")
        smtp = SMTPSettings.from_config(config["smtp"]) if config.get("smtp") is not None else None
        return cls(skyportal_url.rstrip("/") if skyportal_url else None, one_line(title), base.rstrip("/"), smtp)


@dataclass(frozen=True)
class Delivery:
    """A notice delivered: ``reference`` ties the messages about one request together (the
    request's ``remote_id``), ``detail`` says where it went, for the status."""

    reference: str
    detail: str


@dataclass(frozen=True)
class Announcement:
    """What announcing a request the facility already accepted left: ``note`` for its detail
    (``"; posted to Slack"``, or ``"; the notification failed: <why>"``) and the notice's
    ``reference`` (None when nothing was announced)."""

    note: str
    reference: str | None


def notice_reference(request: FollowupRequest) -> str:
    """A stable reference for a request's Slack messages: the same request (allocation, id,
    source, payload) always gets the same one, so a dry run shows what the post will carry."""
    key = json.dumps([request.allocation.id, request.id, request.target.id, dict(request.payload)], sort_keys=True, default=str)
    return "notice-" + hashlib.sha256(key.encode()).hexdigest()[:12]


class Notifier:
    """Sends notices by Slack or e-mail according to an allocation's notification branch
    (``facility_apis/schemas/notify/altdata.json``). Built once per facility instance from its
    ``config``; ``ConfigurationError`` for unusable settings."""

    def __init__(self, config: Mapping[str, Any] | None, *, egress: EgressPolicy):
        self.settings = NotifySettings.from_config((config or {}).get("notify"), egress=egress)

    @staticmethod
    def wanted(altdata: Mapping[str, Any]) -> bool:
        """Whether the allocation asks for notices (``notification_type`` slack or email)."""
        return altdata.get("notification_type") in ("slack", "email")

    def check_altdata(self, altdata: Mapping[str, Any], schema: Mapping[str, Any], *, key: str = "notification_type") -> None:
        """:func:`~facility_apis.notify.altdata.check_notification_altdata`, and e-mail refused
        when this deployment has no SMTP server (so the allocation fails when it is saved, not at
        its first request). ``key`` is the field that chooses the mode (see
        :func:`~facility_apis.notify.altdata.notification_altdata`). Raises ``AltdataError``."""
        check_notification_altdata(altdata, schema, key=key)
        if altdata.get(key) == "email" and self.settings.smtp is None:
            raise AltdataError.single(f"$.{key}", "email is not available: this deployment configures no SMTP server (notify.smtp)")

    def notice(self, request: FollowupRequest, event: Event, *, facility: str, form: Mapping[str, Any], reference: str | None) -> Notice:
        """The notice of ``event`` for ``request`` (comments when the allocation says so)."""
        return build_notice(
            request,
            event,
            facility=facility,
            form=form,
            skyportal_url=self.settings.skyportal_url,
            app_title=self.settings.app_title,
            include_comments=include_comments(request.allocation.altdata),
            reference=reference,
        )

    def _reference(self, request: FollowupRequest, event: Event) -> str:
        return notice_reference(request) if event is Event.NEW or not request.remote_id else request.remote_id

    def _builder(self, request: FollowupRequest, event: Event, facility: str, form: Mapping[str, Any] | None, build: NoticeBuilder | None) -> NoticeBuilder:
        if build is not None:
            return build
        if form is None:
            raise TypeError("send a notice built from the request form (form=...) or give build=")
        return lambda reference: self.notice(request, event, facility=facility, form=form, reference=reference)

    def slack_call(
        self, request: FollowupRequest, event: Event, *, facility: str, form: Mapping[str, Any] | None = None, build: NoticeBuilder | None = None
    ) -> HTTPCall:
        """The webhook post announcing ``event``, built without sending it (a dry run's view);
        ``build`` as for :meth:`send`."""
        altdata = request.allocation.altdata
        url = webhook_url(self.settings.slack_base_url, altdata["slack_workspace"], altdata["slack_channel"], altdata["slack_token"])
        return webhook_call(url, self._builder(request, event, facility, form, build)(self._reference(request, event)))

    def send(
        self,
        request: FollowupRequest,
        transport: Transport,
        event: Event,
        *,
        facility: str,
        form: Mapping[str, Any] | None = None,
        via: str | None = None,
        build: NoticeBuilder | None = None,
    ) -> Delivery:
        """Announce ``event`` by the allocation's ``notification_type`` (or by ``via``,
        ``"slack"`` or ``"email"``, for a facility whose allocations always use one, as SLACK's,
        or name the mode under another key, as MMA's ``allocation_type``). ``facility`` is the
        facility's title, ``form`` its request form (field titles) for the follow-up request
        notice; a facility announcing something else passes ``build``, which makes the
        :class:`Notice` for a reference (e.g. :func:`~facility_apis.notify.plan.plan_notice`).
        For ``updated`` and ``cancelled``, ``request.remote_id`` is the reference the first
        message returned."""
        mode = via or request.allocation.altdata.get("notification_type")
        builder = self._builder(request, event, facility, form, build)
        if mode == "slack":
            call = self.slack_call(request, event, facility=facility, build=builder)
            read_answer(transport.send(call))
            return Delivery(self._reference(request, event), "posted to Slack")
        if mode == "email":
            return self._email(request, transport, event, builder)
        raise AltdataError.single("$.notification_type", "must be slack or email to send a notice")

    def announce(self, request: FollowupRequest, transport: Transport, event: Event, *, facility: str, form: Mapping[str, Any] | None = None) -> Announcement:
        """Announce ``event`` about a request the facility has already acted on (accepted,
        changed, deleted), when the allocation asks for a notice. A notice that fails never
        undoes that: the error is not raised but said in ``note`` (the request keeps the state the
        facility gave it, e.g. ``submitted``) and logged as a warning, masked by the transport's
        redactor (the allocation's secrets, the SMTP password) and the log's redacting filter."""
        if not self.wanted(request.allocation.altdata):
            return Announcement("", None)
        try:
            delivery = self.send(request, transport, event, facility=facility, form=form)
        except FacilityError as exc:  # EgressRefused among them
            why = transport.redactor.text(str(exc))
            log.warning("%s: the %s notice about request %s failed; the request stays as %s left it: %s", facility, event.value, request.id, facility, why)
            return Announcement(f"; the notification failed: {why}", None)
        return Announcement(f"; {delivery.detail}", delivery.reference)

    def email_call(
        self, request: FollowupRequest, event: Event, *, facility: str, form: Mapping[str, Any] | None = None, build: NoticeBuilder | None = None
    ) -> MessageCall:
        """The e-mail announcing ``event``, built without sending it (a dry run's view): the SMTP
        server it would go to, its headers (attachments named in ``Attachments``) and its plain
        text; ``build`` as for :meth:`send`. ``AltdataError`` when the deployment configures no
        SMTP server."""
        smtp, message, _, _ = self._email_message(request, event, self._builder(request, event, facility, form, build))
        headers = {name: str(message[name]) for name in ("From", "To", "Subject") if message[name] is not None}
        attached = [part.get_filename() or "(unnamed)" for part in message.iter_attachments()]
        if attached:
            headers["Attachments"] = ", ".join(attached)
        text = message.get_body(("plain",))
        return MessageCall("SMTP", smtp.url, headers, text.get_content() if text is not None else "")

    def _email_message(self, request: FollowupRequest, event: Event, build: NoticeBuilder) -> tuple[SMTPSettings, EmailMessage, list[str], str]:
        """``(server, message, recipients, thread reference)`` of the notice e-mail."""
        smtp = self.settings.smtp
        if smtp is None:
            raise AltdataError.single("$.notification_type", "email is not available: this deployment configures no SMTP server (notify.smtp)")
        recipients = parse_addresses(request.allocation.altdata["email"])
        message_id = new_message_id(smtp.domain)
        first = message_id if event is Event.NEW or not request.remote_id else request.remote_id
        message = build_email(build(first), sender=smtp.from_address, recipients=recipients, message_id=message_id, thread=first)
        return smtp, message, recipients, first

    def _email(self, request: FollowupRequest, transport: Transport, event: Event, build: NoticeBuilder) -> Delivery:
        smtp, message, recipients, first = self._email_message(request, event, build)
        receipt = send_mail(smtp, message, recipients, transport)
        return Delivery(first, f"e-mailed {receipt.summary()}")
