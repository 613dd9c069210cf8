"""A ``Notice`` as a Slack message: Block Kit blocks within Slack's limits, and a fallback text.

Limits (Slack's Block Kit reference): at most 50 blocks per message; a section's ``text`` at most
3000 characters, its ``fields`` at most 10 of at most 2000 characters each; a header's text at
most 150; a button's text at most 75 and its URL at most 3000. A long notice is split (fields
over several sections, a long comment over several sections) and, past 50 blocks, trimmed: the
last block then says how much was left out. It is never refused for its size.

User-supplied text goes in ``mrkdwn`` with ``&``, ``<`` and ``>`` escaped, as Slack requires, so
a comment cannot mention ``<!channel>`` or hide a link.
"""

from __future__ import annotations

from typing import Any

from .message import Item, Notice
from .render import COMMENTS

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_URL = 3000
#: The fallback ``text`` (notifications and clients without blocks); Slack truncates past 40,000.
MAX_FALLBACK_TEXT = 3000
ELLIPSIS = "…"

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape(text: str) -> str:
    """Text for ``mrkdwn``: ``&``, ``<``, ``>`` as entities."""
    return "".join(_ESCAPES.get(char, char) for char in text)


def _cut(text: str, limit: int) -> str:
    """``text`` escaped, cut to at most ``limit`` characters (an ellipsis marks the cut; an
    entity is never split)."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out, size = [], 0
    for char in text:
        piece = _ESCAPES.get(char, char)
        if size + len(piece) > limit - len(ELLIPSIS):
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + ELLIPSIS


def chunks(text: str, limit: int) -> list[str]:
    """``text`` escaped and split into pieces of at most ``limit`` characters each, at a line
    break or space near the end of a piece where there is one; an entity is never split."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        piece = _ESCAPES.get(char, char)
        if size + len(piece) > limit:
            cut = max((i for i, p in enumerate(current) if p in ("\n", " ") and i > len(current) // 2), default=None)
            if cut is None:
                pieces.append("".join(current))
                current, size = [], 0
            else:
                pieces.append("".join(current[: cut + 1]).rstrip())
                current = current[cut + 1 :]
                size = sum(len(p) for p in current)
        current.append(piece)
        size += len(piece)
    if current:
        pieces.append("".join(current))
    return [piece for piece in pieces if piece.strip()] or [""]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _field_sections(items: tuple[Item, ...]) -> list[dict[str, Any]]:
    """Items as ``*label*`` / value fields, ten to a section."""
    fields = [{"type": "mrkdwn", "text": f"*{_cut(item.label, 200)}*\n{_cut(item.value, MAX_FIELD_TEXT - 210)}"} for item in items]
    return [{"type": "section", "fields": fields[i : i + MAX_FIELDS]} for i in range(0, len(fields), MAX_FIELDS)]


def fallback_text(notice: Notice) -> str:
    """The message's ``text``: shown in notifications and by clients without blocks."""
    return _cut(notice.summary, MAX_FALLBACK_TEXT)


def render_blocks(notice: Notice) -> list[dict[str, Any]]:
    """The notice as Block Kit blocks, within the limits of the module docstring."""
    header = notice.heading if len(notice.heading) <= MAX_HEADER_TEXT else notice.heading[: MAX_HEADER_TEXT - 1] + ELLIPSIS
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header}}]
    blocks += _field_sections(notice.about())
    if notice.source_url and len(notice.source_url) <= MAX_BUTTON_URL:
        label = f"{notice.link_label} in {notice.app_title}"[:MAX_BUTTON_TEXT]
        button = {"type": "button", "text": {"type": "plain_text", "text": label}, "url": notice.source_url}
        blocks.append({"type": "actions", "elements": [button]})
    if notice.observation:
        blocks += [{"type": "divider"}, _section(f"*{_cut(notice.observation_title, 200)}*"), *_field_sections(notice.observation)]
    if notice.attachments:
        files = ", ".join(attachment.described for attachment in notice.attachments)
        note = _cut(f"Not attached here (Slack takes no files by webhook): {files}", MAX_SECTION_TEXT)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    if notice.comments:
        blocks += [{"type": "divider"}, _section(f"*{COMMENTS}*")]
        for comment in notice.comments:
            blocks += [_section(piece) for piece in chunks(comment, MAX_SECTION_TEXT)]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(f"Sent by {notice.app_title} for {notice.facility}", MAX_SECTION_TEXT)}]})
    return trim(blocks)


def trim(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most ``MAX_BLOCKS`` blocks: past that, the first 49 and a last one saying how many were
    left out."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    left_out = len(blocks) - (MAX_BLOCKS - 1)
    note = f"_{left_out} more part{'s' if left_out > 1 else ''} of this message did not fit in one Slack message; see the source page._"
    return [*blocks[: MAX_BLOCKS - 1], _section(note)]


def slack_message(notice: Notice) -> dict[str, Any]:
    """The JSON body for an incoming webhook: ``{"text": ..., "blocks": [...]}``."""
    return {"text": fallback_text(notice), "blocks": render_blocks(notice)}
