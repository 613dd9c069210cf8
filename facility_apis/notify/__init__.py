"""Notifications any facility can send: a follow-up request announced by Slack or e-mail.

The public API (see docs/notifications.md):

- :class:`Notifier` (``notifier.py``): built from a facility's ``config`` (its ``notify``
  mapping) and ``egress``; ``check_altdata``, ``send`` (by the allocation's
  ``notification_type``), ``slack_call`` (a dry run of the Slack post), ``notice``.
- :func:`notification_altdata` and :func:`check_notification_altdata` (``altdata.py``): the
  notification branch of an allocation form, shipped as ``schemas/notify/altdata.json``.
- :class:`Notice`, :class:`Event`, :class:`Attachment`, :func:`build_notice` (``message.py``): the
  message model (a notice may carry files: attached to an e-mail, named in Slack);
  :func:`render_text`, :func:`render_html`, :func:`subject` (``render.py``),
  :func:`render_blocks`/:func:`slack_message` (``blocks.py``, Slack's limits), and
  :func:`build_email` (``mail.py``).
- Delivery: :func:`send_mail` with :class:`SMTPSettings` (``smtp.py``) and the Slack webhook
  helpers (``slack.py``).
- :func:`plan_notice` (``plan.py``): the notice of an observation plan (``core/plan.py``), a
  summary with the plan attached or linked.

This package imports ``core`` only; facilities import it. It does no I/O of its own except the
SMTP conversation of ``smtp.py``; Slack posts go through the facility's ``Transport``.
"""

from .altdata import MODES, allowed_keys, branch_schema, check_notification_altdata, include_comments, notification_altdata, parse_addresses
from .blocks import render_blocks, slack_message
from .mail import build_email
from .message import Attachment, Event, Item, Notice, build_notice
from .notifier import Announcement, Delivery, NoticeBuilder, Notifier, NotifySettings, notice_reference
from .plan import plan_notice
from .render import render_html, render_text, subject
from .slack import read_answer, webhook_call, webhook_url
from .smtp import MailReceipt, SMTPSettings, send_mail

__all__ = [
    "MODES",
    "Announcement",
    "Attachment",
    "Delivery",
    "Event",
    "Item",
    "MailReceipt",
    "Notice",
    "NoticeBuilder",
    "Notifier",
    "NotifySettings",
    "SMTPSettings",
    "allowed_keys",
    "branch_schema",
    "build_email",
    "build_notice",
    "check_notification_altdata",
    "include_comments",
    "notice_reference",
    "notification_altdata",
    "parse_addresses",
    "plan_notice",
    "read_answer",
    "render_blocks",
    "render_html",
    "render_text",
    "send_mail",
    "slack_message",
    "subject",
    "webhook_call",
    "webhook_url",
]
