"""Slack incoming webhooks on loopback: ``POST /services/<workspace>/<channel>/<token>``.

Protocol (Slack's "Sending messages using incoming webhooks", "Improving error conditions for
Incoming Webhooks" (2016-05-17) and the Block Kit reference): the body is JSON (or a form whose
``payload`` field is JSON) with ``text`` and/or ``blocks``; Slack answers ``200`` ``ok``
(``text/html``), or an error word: ``400 invalid_payload`` (not JSON, not an object),
``400 no_text`` (neither text nor blocks), ``400 invalid_blocks`` (a block breaks Block Kit's
rules or limits), ``403 invalid_token`` (a known webhook with the wrong token), ``404
no_service`` (no such webhook), ``404 channel_not_found``, ``403 action_prohibited``, ``410
channel_is_archived``.

The Block Kit checks are this emulator's own reading of the reference: at most 50 blocks; a
section's text at most 3000 characters, its fields at most 10 of at most 2000; a header's plain
text at most 150; context at most 10 elements; actions at most 25 elements, a button's text at most
75 and its URL at most 3000; every text object ``plain_text`` or ``mrkdwn`` and not empty.
``refusals`` keeps the reasons of every ``invalid_blocks`` answer.

Knobs: :meth:`add_hook` (returns the webhook URL), :meth:`set_state` (``archived``,
``channel_deleted``, ``prohibited``), and the ``LoopbackServer`` faults.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .server import LoopbackHandler, LoopbackServer

MAX_BLOCKS = 50
BLOCK_TYPES = frozenset({"section", "divider", "header", "context", "actions", "image"})
STATES = {
    "active": None,
    "archived": (410, "channel_is_archived"),
    "channel_deleted": (404, "channel_not_found"),
    "prohibited": (403, "action_prohibited"),
}


@dataclass(frozen=True)
class SlackPost:
    """A message a webhook accepted: its webhook, the fallback ``text`` and the ``blocks``."""

    workspace: str
    channel: str
    text: str | None
    blocks: list[dict[str, Any]]
    body: dict[str, Any]


def _text_object(value: Any, where: str, limit: int, problems: list[str], *, plain_only: bool = False) -> None:
    if not isinstance(value, dict) or value.get("type") not in (("plain_text",) if plain_only else ("plain_text", "mrkdwn")):
        problems.append(f"{where}: must be a {'plain_text' if plain_only else 'text'} object")
        return
    text = value.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}.text: must be a non-empty string")
    elif len(text) > limit:
        problems.append(f"{where}.text: {len(text)} characters, more than {limit}")


def block_problems(blocks: Any) -> list[str]:
    """How ``blocks`` break Block Kit's rules (the module docstring's list); empty when none."""
    if not isinstance(blocks, list):
        return ["blocks: must be an array"]
    problems = [f"blocks: {len(blocks)} blocks, more than {MAX_BLOCKS}"] if len(blocks) > MAX_BLOCKS else []
    for number, block in enumerate(blocks):
        where = f"blocks[{number}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            problems.append(f"{where}: unknown block type {kind!r}")
            continue
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: a section needs text or fields")
            if "text" in block:
                _text_object(block["text"], f"{where}.text", 3000, problems)
            if "fields" in block:
                fields = block["fields"]
                if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                    problems.append(f"{where}.fields: must hold 1 to 10 fields")
                else:
                    for index, item in enumerate(fields):
                        _text_object(item, f"{where}.fields[{index}]", 2000, problems)
        elif kind == "header":
            _text_object(block.get("text"), f"{where}.text", 150, problems, plain_only=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                problems.append(f"{where}.elements: must hold 1 to 10 elements")
            else:
                for index, element in enumerate(elements):
                    _text_object(element, f"{where}.elements[{index}]", 3000, problems)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                problems.append(f"{where}.elements: must hold 1 to 25 elements")
                continue
            for index, element in enumerate(elements):
                if not isinstance(element, dict) or element.get("type") != "button":
                    problems.append(f"{where}.elements[{index}]: only buttons are emulated")
                    continue
                _text_object(element.get("text"), f"{where}.elements[{index}].text", 75, problems, plain_only=True)
                url = element.get("url")
                if url is not None and (not isinstance(url, str) or len(url) > 3000):
                    problems.append(f"{where}.elements[{index}].url: at most 3000 characters")
    return problems


class _WebhookHandler(LoopbackHandler):
    def _answer(self, status: int, word: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html")
        self.finish(word)

    def post(self, workspace: str, channel: str, token: str) -> None:
        emulator: SlackWebhookEmulator = self.server  # type: ignore[assignment]
        hook = emulator._hook(workspace, channel)
        if hook is None:
            return self._answer(404, "no_service")
        expected_token, state = hook
        if token != expected_token:
            return self._answer(403, "invalid_token")
        if STATES[state] is not None:
            return self._answer(*STATES[state])
        body = self._body()
        if not isinstance(body, dict):
            return self._answer(400, "invalid_payload")
        if not body.get("text") and not body.get("blocks"):
            return self._answer(400, "no_text")
        if "blocks" in body:
            problems = block_problems(body["blocks"])
            if problems:
                emulator._refused(problems)
                return self._answer(400, "invalid_blocks")
        emulator._accept(SlackPost(workspace, channel, body.get("text"), list(body.get("blocks") or []), body))
        return self._answer(200, "ok")

    def _body(self) -> Any:
        raw = self.request.body or b""
        content_type = self.request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        try:
            if content_type == "application/x-www-form-urlencoded":
                payload = parse_qs(raw.decode("utf-8")).get("payload")
                return json.loads(payload[0]) if payload else None
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


class SlackWebhookEmulator(LoopbackServer):
    """Slack's incoming webhooks (see the module docstring). ``base_url`` stands for
    ``https://hooks.slack.com``."""

    def __init__(self) -> None:
        super().__init__()
        self._hooks: dict[tuple[str, str], list[str]] = {}
        self._posts: list[SlackPost] = []
        self._refusals: list[list[str]] = []
        self._slack_lock = threading.Lock()

    def routes(self) -> list[Any]:
        return [(r"/services/([^/]+)/([^/]+)/([^/]+)", _WebhookHandler)]

    @property
    def base_url(self) -> str:
        return self.url

    def add_hook(self, workspace: str, channel: str, token: str) -> str:
        """Create a webhook; returns its URL (valid while the emulator runs)."""
        with self._slack_lock:
            self._hooks[(workspace, channel)] = [token, "active"]
        return f"{self.url}/services/{workspace}/{channel}/{token}"

    def set_state(self, workspace: str, channel: str, state: str) -> None:
        """``active``, ``archived`` (410), ``channel_deleted`` (404 channel_not_found) or
        ``prohibited`` (403 action_prohibited)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {sorted(STATES)}")
        with self._slack_lock:
            self._hooks[(workspace, channel)][1] = state

    def _hook(self, workspace: str, channel: str) -> tuple[str, str] | None:
        with self._slack_lock:
            hook = self._hooks.get((workspace, channel))
            return (hook[0], hook[1]) if hook else None

    def _accept(self, post: SlackPost) -> None:
        with self._slack_lock:
            self._posts.append(post)

    def _refused(self, problems: list[str]) -> None:
        with self._slack_lock:
            self._refusals.append(problems)

    @property
    def posts(self) -> list[SlackPost]:
        """Every accepted message, oldest first."""
        with self._slack_lock:
            return list(self._posts)

    @property
    def refusals(self) -> list[list[str]]:
        """The Block Kit problems of every ``invalid_blocks`` answer."""
        with self._slack_lock:
            return list(self._refusals)
