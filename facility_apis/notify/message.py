"""The message a notification carries: one ``Notice``, whichever way it is sent.

A notice says what happened (a new, updated or cancelled follow-up request), on which source (id,
RA/Dec in decimal degrees and sexagesimal, galactic l/b), on which allocation (facility,
instrument, PI, proposal, group), who asked, what was asked (every payload field under its form
title), where the source page is (when the deployment's SkyPortal URL is known) and, when the
allocation says ``include_comments``, the comments passed with the request. The renderers
(``render.py``, ``blocks.py``, ``mail.py``) turn it into plain text, HTML and Slack Block Kit.

Every text a notice holds has been cleaned: control characters (line breaks included, except
inside comments) cannot reach a renderer, so no field can start a new header line or fake a
structure.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..core.coordinates import dms, galactic, hms
from ..core.interface import FollowupRequest

#: C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_BREAKS = re.compile(r"\r\n?|\n")
_SPACE = re.compile(r"\s+")


def one_line(value: Any) -> str:
    """``value`` as text on one line: every control character and run of white space becomes one
    space."""
    return _SPACE.sub(" ", _CONTROL.sub(" ", str(value))).strip()


def multi_line(value: Any) -> str:
    """``value`` as text whose only control characters are ``\\n`` line breaks."""
    text = _BREAKS.sub("\n", str(value))
    return "\n".join(_CONTROL.sub(" ", line.replace("\t", " ")).rstrip() for line in text.split("\n")).strip("\n")


class Event(str, enum.Enum):
    """What the notice announces."""

    NEW = "new"
    UPDATED = "updated"
    CANCELLED = "cancelled"

    @property
    def verb(self) -> str:
        """``New``, ``Updated`` or ``Cancelled``."""
        return {"new": "New", "updated": "Updated", "cancelled": "Cancelled"}[self.value]

    @property
    def heading(self) -> str:
        """``New follow-up request`` (and Updated, Cancelled)."""
        return f"{self.verb} follow-up request"


@dataclass(frozen=True)
class Item:
    """One labelled line: ``label`` and ``value``, both one line of clean text."""

    label: str
    value: str


#: A file name an attachment may carry: letters, digits, ``.``, ``_``, ``-``, ``+``, ``:``, not starting with a dot.
_FILENAME = re.compile(r"[A-Za-z0-9_+:-][A-Za-z0-9._+:-]{0,199}")


@dataclass(frozen=True)
class Attachment:
    """A file sent with a notice: attached to the e-mail, named (never attached) in Slack, whose
    incoming webhooks take no files. ``filename`` follows ``_FILENAME`` (``ValueError`` otherwise,
    so no name can carry a path or a header), ``content_type`` is ``type/subtype``."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not _FILENAME.fullmatch(self.filename):
            raise ValueError("an attachment's file name must be letters, digits, '.', '_', '-', '+' or ':', not starting with a dot")
        if not re.fullmatch(r"[a-z]+/[a-z0-9.+-]+", self.content_type):
            raise ValueError("an attachment's content type must be type/subtype")

    @property
    def described(self) -> str:
        """``plan.json (12.3 kB)``."""
        size = len(self.data)
        text = f"{size} bytes" if size < 1000 else f"{size / 1000:.1f} kB" if size < 1_000_000 else f"{size / 1_000_000:.1f} MB"
        return f"{self.filename} ({text})"


def format_value(value: Any) -> str:
    """A payload value for people: lists joined with commas, booleans as yes/no, numbers without
    trailing zeros (``300.0`` → ``300``), objects as compact JSON."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format(value, ".10g")
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(item) for item in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def observation_items(payload: Mapping[str, Any], form: Mapping[str, Any]) -> tuple[Item, ...]:
    """Every payload field under its form title, in the order of the form's properties, then
    fields the form does not know, sorted, under their own names. Fields without a value
    (``None``, ``""``, ``[]``, ``{}``) are left out."""
    properties = form.get("properties") or {}
    order = [key for key in properties if key in payload] + sorted(key for key in payload if key not in properties)
    items = []
    for key in order:
        value = payload[key]
        if value is None or value == "" or value == [] or value == {}:
            continue
        spec = properties.get(key)
        label = spec.get("title") if isinstance(spec, Mapping) and spec.get("title") else key
        items.append(Item(one_line(label), one_line(format_value(value))))
    return tuple(items)


@dataclass(frozen=True)
class Notice:
    """One announcement; build it with :func:`build_notice` (a follow-up request on a source).
    Texts are already clean (see the module docstring); ``ra``/``dec`` are ICRS degrees.

    A notice about something else than a source (an observation plan) names it with ``obj_id``
    under ``name_label``, leaves ``ra``/``dec`` out (``None``), says what it is in ``subject``
    (the heading reads ``New <subject>: <obj_id>``), titles its details ``observation_title``,
    labels its link ``link_label`` and may carry ``attachments``."""

    event: Event
    facility: str
    obj_id: str
    ra: float | None
    dec: float | None
    observation: tuple[Item, ...] = ()
    instrument: str | None = None
    pi: str | None = None
    proposal_id: str | None = None
    group: str | None = None
    requester: str | None = None
    source_url: str | None = None
    comments: tuple[str, ...] = ()
    reference: str | None = None
    app_title: str = "SkyPortal"
    subject: str = "follow-up request"
    name_label: str = "Object"
    observation_title: str = "Requested observation"
    link_label: str = "Source page"
    attachments: tuple[Attachment, ...] = ()

    @property
    def heading(self) -> str:
        """``New follow-up request: <obj id>`` (and Updated, Cancelled; ``subject`` for other
        notices)."""
        return f"{self.event.verb} {self.subject}: {self.obj_id}"

    @property
    def summary(self) -> str:
        """One line: heading, facility and requester."""
        by = f", requested by {self.requester}" if self.requester else ""
        return f"{self.heading} on {self.facility}{by}"

    def about(self) -> tuple[Item, ...]:
        """The source and allocation, labelled, in the order every renderer shows them; a line
        whose value is unknown is left out."""
        lines = [(self.name_label, self.obj_id)]
        if self.ra is not None and self.dec is not None:
            longitude, latitude = galactic(self.ra, self.dec)
            lines += [
                ("RA, Dec", f"{hms(self.ra, 2)} {dms(self.dec, 1)}"),
                ("RA, Dec (deg)", f"{self.ra:.5f}, {self.dec:+.5f}"),
                ("Galactic l, b (deg)", f"{longitude:.5f}, {latitude:+.5f}"),
            ]
        lines += [
            ("Facility", self.facility),
            ("Instrument", self.instrument),
            ("PI", self.pi),
            ("Proposal", self.proposal_id),
            ("Group", self.group),
            ("Requested by", self.requester),
            ("Reference", self.reference),
        ]
        return tuple(Item(label, value) for label, value in lines if value)


def source_page(skyportal_url: str | None, obj_id: str) -> str | None:
    """``<skyportal_url>/source/<obj id>`` (the id percent-encoded), or None without a URL."""
    if not skyportal_url:
        return None
    return f"{skyportal_url.rstrip('/')}/source/{quote(obj_id, safe='')}"


def _group(request: FollowupRequest) -> str | None:
    allocation = request.allocation
    if allocation.group:
        return allocation.group
    ids = allocation.group_ids
    return f"group{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}" if ids else None


def _clean(value: str | None) -> str | None:
    return one_line(value) or None if value is not None else None


def build_notice(
    request: FollowupRequest,
    event: Event,
    *,
    facility: str,
    form: Mapping[str, Any],
    skyportal_url: str | None = None,
    app_title: str = "SkyPortal",
    include_comments: bool = False,
    reference: str | None = None,
) -> Notice:
    """The notice for ``request``: ``facility`` is the facility's title, ``form`` its request form
    (for the field titles), ``skyportal_url`` the deployment's SkyPortal (for the source link),
    ``reference`` the id that ties the messages about one request together."""
    allocation = request.allocation
    comments: Iterable[str] = request.comments if include_comments else ()
    obj_id = one_line(request.target.id)
    return Notice(
        event=event,
        facility=one_line(facility),
        obj_id=obj_id,
        ra=request.target.ra,
        dec=request.target.dec,
        observation=observation_items(request.payload, form),
        instrument=_clean(allocation.instrument_name),
        pi=_clean(allocation.pi),
        proposal_id=_clean(allocation.proposal_id),
        group=_clean(_group(request)),
        requester=_clean(request.requester),
        source_url=source_page(skyportal_url, request.target.id),
        comments=tuple(text for text in (multi_line(comment) for comment in comments) if text),
        reference=_clean(reference),
        app_title=one_line(app_title) or "SkyPortal",
    )
