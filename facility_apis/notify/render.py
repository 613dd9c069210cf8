"""A ``Notice`` as plain text, as HTML (for e-mail) and as an e-mail subject.

No length limit applies here (e-mail has none worth meeting); Slack's limits are ``blocks.py``'s.
Every text is HTML-escaped in the HTML form; the only link is the source page, whose URL the
deployment configured (http or https) and whose object id is percent-encoded.
"""

from __future__ import annotations

import html

from .message import Item, Notice, one_line

COMMENTS = "Comments"
ATTACHED = "Attached"


def subject(notice: Notice) -> str:
    """``<app title> - New follow-up request: <obj id>`` on one line (SkyPortal's wording)."""
    return one_line(f"{notice.app_title} - {notice.heading}")


def _lines(items: tuple[Item, ...], indent: str = "") -> list[str]:
    return [f"{indent}{item.label}: {item.value}" for item in items]


def render_text(notice: Notice) -> str:
    """The notice as plain text: heading, the source and allocation lines, the link, the requested
    observation, the attached files, the comments (each a list entry, its further lines
    indented)."""
    lines = [notice.heading, "", *_lines(notice.about())]
    if notice.source_url:
        lines.append(f"{notice.link_label}: {notice.source_url}")
    if notice.observation:
        lines += ["", f"{notice.observation_title}:", *_lines(notice.observation, "  ")]
    if notice.attachments:
        lines += ["", f"{ATTACHED}: " + ", ".join(attachment.described for attachment in notice.attachments)]
    if notice.comments:
        lines += ["", f"{COMMENTS}:"]
        for comment in notice.comments:
            first, *rest = comment.split("\n")
            lines += [f"  - {first}", *(f"    {line}" if line else "" for line in rest)]
    lines += ["", f"Sent by {notice.app_title} for {notice.facility}."]
    return "\n".join(lines) + "\n"


def _rows(items: tuple[Item, ...]) -> str:
    return "".join(
        f'<tr><th style="text-align:left;padding-right:1em">{html.escape(item.label)}</th><td>{html.escape(item.value)}</td></tr>' for item in items
    )


def render_html(notice: Notice) -> str:
    """The notice as an HTML document (every text escaped)."""
    parts = [
        '<!DOCTYPE html><html><head><meta charset="utf-8">',
        f"<title>{html.escape(notice.heading)}</title></head><body>",
        f"<h2>{html.escape(notice.heading)}</h2>",
        f"<table>{_rows(notice.about())}</table>",
    ]
    if notice.source_url:
        url = html.escape(notice.source_url, quote=True)
        parts.append(f'<p><a href="{url}">{html.escape(notice.link_label)} in {html.escape(notice.app_title)}</a></p>')
    if notice.observation:
        parts.append(f"<h3>{html.escape(notice.observation_title)}</h3><table>{_rows(notice.observation)}</table>")
    if notice.attachments:
        parts.append(f"<p>{ATTACHED}: {html.escape(', '.join(attachment.described for attachment in notice.attachments))}</p>")
    if notice.comments:
        entries = "".join("<li>" + html.escape(comment).replace("\n", "<br>") + "</li>" for comment in notice.comments)
        parts.append(f"<h3>{COMMENTS}</h3><ul>{entries}</ul>")
    parts.append(f"<p><small>Sent by {html.escape(notice.app_title)} for {html.escape(notice.facility)}.</small></p></body></html>")
    return "".join(parts)
