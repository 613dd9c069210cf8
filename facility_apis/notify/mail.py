"""A ``Notice`` as an e-mail, built with the standard library's ``email`` API.

The message is ``multipart/alternative``: the plain text and the HTML of ``render.py``; with the
notice's attachments, ``multipart/mixed`` holding that and each file (``Content-Disposition:
attachment``, base64 as the standard library encodes binary data). Headers are
set through ``EmailMessage`` (policy ``SMTP``), which refuses a header value holding a line break;
every value put in one is a clean single line already (``message.one_line``) or an address that
passed the altdata check, so no field (object id, comment, requester name) can add a header.

Messages about one request are threaded: the first message's ``Message-ID`` is the request's
reference, and later ones (updated, cancelled) answer it with ``In-Reply-To`` and ``References``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from ..core.timeutil import utcnow
from .message import Notice
from .render import render_html, render_text, subject

#: A Message-ID as we make them, the only form accepted back into a header.
MESSAGE_ID = re.compile(r"<[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,200}@[A-Za-z0-9.-]{1,253}>")


def new_message_id(domain: str) -> str:
    """A fresh ``<...@domain>`` Message-ID (made without looking up our own host name)."""
    return make_msgid(domain=domain)


def build_email(notice: Notice, *, sender: str, recipients: Sequence[str], message_id: str, thread: str | None = None) -> EmailMessage:
    """The e-mail for ``notice`` from ``sender`` to ``recipients`` (checked addresses) with
    ``message_id`` (from :func:`new_message_id`); ``thread`` is the Message-ID of the request's
    first message (used only when it has the form we make)."""
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = subject(notice)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = message_id
    if thread and thread != message_id and MESSAGE_ID.fullmatch(thread):
        message["In-Reply-To"] = thread
        message["References"] = thread
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(render_text(notice))
    message.add_alternative(render_html(notice), subtype="html")
    for attachment in notice.attachments:  # the message becomes multipart/mixed
        maintype, subtype = attachment.content_type.split("/", 1)
        message.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return message
