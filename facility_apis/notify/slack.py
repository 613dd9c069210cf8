"""Posting a notice to a Slack incoming webhook.

Protocol (Slack's "Sending messages using incoming webhooks" and "Improving error conditions for
Incoming Webhooks", 2016-05-17): ``POST <base>/services/<workspace>/<channel>/<token>`` with a
JSON body ``{"text": ..., "blocks": [...]}``; Slack answers ``200`` with the body ``ok``, or an
error status with one word as the body: ``400`` (``invalid_payload``, ``invalid_blocks``,
``no_text``, ...), ``403`` (``invalid_token``, ``action_prohibited``), ``404``
(``channel_not_found``, ``no_service``, ``no_team``), ``410`` (``channel_is_archived``), ``500``
(``rollup_error``). The token is part of the URL's path: the transport masks it in every record
(it is the allocation's ``writeOnly`` ``slack_token``), and the webhook URL is never logged or
shown unmasked.
"""

from __future__ import annotations

import requests

from ..core.answers import body_line, expect
from ..core.errors import Rejected, RemoteError
from ..core.transport import HTTPCall
from .blocks import slack_message
from .message import Notice

DEFAULT_BASE_URL = "https://hooks.slack.com"
SERVICE = "Slack"
#: The statuses with which Slack refuses a message for a reason it names in the body.
REFUSALS = frozenset({400, 403, 404, 410})

#: Slack's error words for incoming webhooks, in words for the observer and the admin.
ERRORS = {
    "invalid_payload": "Slack could not read the message",
    "invalid_blocks": "Slack refused the message's blocks",
    "invalid_blocks_format": "Slack refused the message's blocks",
    "no_text": "the message had no text",
    "missing_text_or_fallback_or_attachments": "the message had no text",
    "too_many_attachments": "the message had too many attachments",
    "user_not_found": "the webhook's user does not exist",
    "invalid_token": "the webhook's token is not valid: check the allocation's slack_token",
    "action_prohibited": "the workspace does not let this webhook post there",
    "posting_to_general_channel_denied": "the workspace does not let this webhook post to its general channel",
    "channel_not_found": "the webhook's channel does not exist",
    "no_service": "there is no such webhook (removed, disabled, or a wrong workspace, channel or token)",
    "no_service_id": "the webhook URL is incomplete",
    "no_team": "the webhook's workspace does not exist",
    "team_disabled": "the webhook's workspace is disabled",
    "channel_is_archived": "the webhook's channel is archived",
    "no_active_hooks": "the webhook is disabled",
}


def webhook_url(base_url: str, workspace: str, channel: str, token: str) -> str:
    """``<base_url>/services/<workspace>/<channel>/<token>`` (one slash, whatever ``base_url``
    ends with). The parts passed the altdata patterns: letters and digits only."""
    return f"{base_url.rstrip('/')}/services/{workspace}/{channel}/{token}"


def webhook_call(url: str, notice: Notice) -> HTTPCall:
    """The webhook post of ``notice`` (Block Kit and fallback text), not sent."""
    return HTTPCall("POST", url, headers={"Content-Type": "application/json; charset=utf-8"}, json=slack_message(notice))


def read_answer(response: requests.Response) -> None:
    """Return when Slack took the message (``200 ok``); else raise: ``Rejected`` naming Slack's
    reason for 400/403/404/410, ``RemoteError`` for a 200 without ``ok``, and what
    :func:`~facility_apis.core.answers.expect` raises for anything else (5xx, redirects)."""
    code, text = response.status_code, (response.text or "").strip()
    if code == 200:
        if text == "ok":
            return
        raise RemoteError(f"Slack answered HTTP 200 without its 'ok': {body_line(response)}; the message may have been posted", http_status=code)
    if code in REFUSALS:
        reason = f"{text} ({ERRORS[text]})" if text in ERRORS else body_line(response)
        raise Rejected(f"Slack refused the message (HTTP {code}): {reason}", http_status=code)
    expect(response, 200, service=SERVICE)
