"""The notice announcing an observation plan (``core/plan.py``) to people, by Slack or e-mail.

It summarises the plan instead of listing it (a plan has up to 10,000 planned observations):
the queue, the event, the validity window (UTC and MJD), how many planned observations in which
filters, how many distinct fields, the total exposure, who asked; the allocation as for any
notice; a link to the event's page in SkyPortal (where the plan is shown and can be downloaded)
when the deployment's ``notify.skyportal_url`` and the plan's ``event`` are known; and the plan
itself as attachments, which an e-mail carries and a Slack message names only.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ..core.interface import FollowupRequest
from ..core.plan import ObservationPlan
from .message import Attachment, Event, Item, Notice, _clean, _group, one_line
from .notifier import NotifySettings

SUBJECT = "observation plan"
#: Characters a queue name may hold that a file name may not (see ``message.Attachment``).
_UNSAFE = re.compile(r"[^A-Za-z0-9._+:-]")


def event_page(skyportal_url: str | None, event: str | None) -> str | None:
    """``<skyportal_url>/gcn_events/<event>`` (SkyPortal's page of a GCN event, by its
    ``dateobs``; the event percent-encoded), or None when either is unknown."""
    if not skyportal_url or not event:
        return None
    return f"{skyportal_url.rstrip('/')}/gcn_events/{quote(event, safe='')}"


def file_stem(queue_name: str) -> str:
    """A file name for the plan's queue: characters a file name may not hold become ``_``, and a
    leading dot too (so the name is never hidden)."""
    stem = _UNSAFE.sub("_", queue_name)
    return "_" + stem[1:] if stem.startswith(".") else stem


def plan_attachments(plan: ObservationPlan) -> tuple[Attachment, ...]:
    """The plan as its queue document (``<queue>.json``) and as a CSV table (``<queue>.csv``)."""
    stem = file_stem(plan.queue_name)
    return (Attachment(f"{stem}.json", "application/json", plan.to_json()), Attachment(f"{stem}.csv", "text/csv", plan.to_csv()))


def _seconds(value: float) -> str:
    return f"{value:,.0f} s ({value / 3600:.1f} h)" if value >= 3600 else f"{value:,.0f} s"


def plan_items(plan: ObservationPlan) -> tuple[Item, ...]:
    """The plan's summary, labelled."""
    summary = plan.summary()
    hours = (summary.end_mjd - summary.start_mjd) * 24
    window = f"{summary.start:%Y-%m-%d %H:%M} to {summary.end:%Y-%m-%d %H:%M} UTC ({hours:.1f} h; MJD {summary.start_mjd:.5f} to {summary.end_mjd:.5f})"
    filters = ", ".join(f"{name} ({count})" for name, count in summary.filters)
    lines = [
        ("Event", plan.event),
        ("Validity window", window),
        ("Planned observations", f"{summary.fields:,}"),
        ("Distinct fields", f"{len({target.field_id for target in plan.targets}):,}"),
        ("Filters", filters),
        ("Total exposure", _seconds(summary.total_exposure)),
        ("Queue type", plan.queue_type),
        ("User", plan.user),
    ]
    return tuple(Item(label, one_line(value)) for label, value in lines if value)


def plan_notice(
    request: FollowupRequest,
    event: Event,
    plan: ObservationPlan,
    *,
    facility: str,
    settings: NotifySettings,
    reference: str | None,
    attach: bool,
) -> Notice:
    """The notice of ``event`` for ``plan``, delivered for ``request`` (its allocation and
    requester), with the plan attached when ``attach`` (e-mail; Slack takes no files)."""
    allocation = request.allocation
    return Notice(
        event=event,
        facility=one_line(facility),
        obj_id=one_line(plan.queue_name),
        ra=None,
        dec=None,
        observation=plan_items(plan),
        instrument=_clean(allocation.instrument_name),
        pi=_clean(allocation.pi),
        proposal_id=_clean(allocation.proposal_id),
        group=_clean(_group(request)),
        requester=_clean(request.requester),
        source_url=event_page(settings.skyportal_url, plan.event),
        reference=_clean(reference),
        app_title=settings.app_title,
        subject=SUBJECT,
        name_label="Queue",
        observation_title="Plan",
        link_label="Event page",
        attachments=plan_attachments(plan) if attach else (),
    )
