"""Reading SkyPortal's objects into the core value objects, by attribute and nothing else.

Attributes read (all loaded by ``SkyPortalModels.reload``; nothing else is touched, so nothing is
lazy-loaded): ``request.id``, ``.payload``, ``.status``, ``.last_modified_by_id``,
``.requester.username``, ``.comment``, ``.transactions`` (newest first, their ``response``),
``request.obj.id``, ``.ra``, ``.dec``, ``.alias``, ``.internal_key``, ``.comments`` (their ``text``,
``created_at`` and ``author.username``), ``request.allocation.id``, ``.altdata``, ``.pi``,
``.proposal_id``, ``.instrument_id``, ``.group_id``, ``.group.name``,
``.default_share_group_ids`` and ``request.allocation.instrument.name``, ``.filters``. Photometry
points, when a facility asks for them (``SkyPortalModels.host_photometry``): ``ra``, ``dec``,
``flux``, ``fluxerr``, ``origin``, ``instrument.name``, ``streams``, ``mjd``, ``filter`` and
``mag``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ..core.errors import AltdataError, PayloadError
from ..core.interface import Allocation, FollowupRequest, HostPoint, Target

#: Keys of a stored transaction ``response`` that hold what later calls need.
REMOTE_ID = "remote_id"
GATEWAY_ID = "gateway_request_id"
CURSOR = "cursor"
#: Key of a stored transaction ``response`` listing the data files the facility gave (SkyPortal has
#: no table for them): ``[{"name", "url", "filter", "mjd"}, ...]``.
FRAMES = "frames"
#: The payload key SkyPortal's own UI adds to mark forced-photometry requests, with one of
#: ``REQUEST_TYPE_MARKERS``; with any other value it is the facility's own field (Swift's
#: ``request_type`` chooses among its three kinds of request) and reaches the facility.
REQUEST_TYPE = "request_type"
REQUEST_TYPE_MARKERS = ("forced_photometry", "triggered")
SKYPORTAL_PAYLOAD_KEYS = (REQUEST_TYPE,)


def facility_payload(payload: Any) -> dict[str, Any]:
    """A SkyPortal request's payload as the facility sees it: SkyPortal's ``request_type`` marker
    (``forced_photometry``, ``triggered``) removed, any other key kept."""
    return {
        key: value
        for key, value in dict(payload or {}).items()
        if not (key in SKYPORTAL_PAYLOAD_KEYS and value in REQUEST_TYPE_MARKERS)
    }


def field(thing: Any, name: str, default: Any = None) -> Any:
    """``thing.name`` or ``thing[name]`` (SkyPortal passes models, sometimes their ``to_dict()``)."""
    if isinstance(thing, Mapping):
        return thing.get(name, default)
    return getattr(thing, name, default)


def _degrees(value: Any, path: str, rule: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PayloadError.single(path, rule) from None
    if not math.isfinite(number):
        raise PayloadError.single(path, rule)
    return number


#: Why altdata SkyPortal holds cannot be read (never quoting it: it holds the credentials).
UNREADABLE_ALTDATA = "must be a JSON object of the allocation's credentials; SkyPortal holds something else for this allocation (fix it on the allocation page)"


def _altdata(value: Any) -> dict[str, Any]:
    """The allocation's credentials as a dict; ``AltdataError`` when SkyPortal holds text that is
    not a JSON object (an allocation saved with malformed altdata)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise AltdataError.single("$", UNREADABLE_ALTDATA) from None
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AltdataError.single("$", UNREADABLE_ALTDATA)
    return dict(value)


def group_ids(allocation: Any) -> tuple[int, ...]:
    """The allocation's group and its default share groups: who sees the data it produces."""
    ids = {allocation.group_id, *(allocation.default_share_group_ids or ())}
    return tuple(sorted(i for i in ids if i is not None))


def recorded(request: Any, key: str) -> Any:
    """The newest value of ``key`` stored in a transaction response of ``request``.

    SkyPortal has no column for a facility's id of a request; like its own facilities we keep it
    in the ``response`` of the transaction that obtained it. ``request.transactions`` is ordered
    newest first.
    """
    for transaction in request.transactions or ():
        response = getattr(transaction, "response", None)
        if isinstance(response, Mapping) and response.get(key) not in (None, ""):
            return response[key]
    return None


def comments(request: Any) -> tuple[str, ...]:
    """What an observer may pass on with the request: its own note (``comment``), then the
    source's comments, newest first, each as ``<author>: <text>``."""
    found = [f"Request note: {request.comment}"] if getattr(request, "comment", None) else []
    notes = sorted(getattr(request.obj, "comments", None) or (), key=lambda c: str(getattr(c, "created_at", "")), reverse=True)
    for comment in notes:
        author = getattr(getattr(comment, "author", None), "username", None) or "unknown"
        if getattr(comment, "text", None):
            found.append(f"{author}: {comment.text}")
    return tuple(found)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def host_point(point: Any) -> HostPoint:
    """One of SkyPortal's ``Photometry`` rows as a ``HostPoint`` (its flux in SkyPortal's µJy)."""
    instrument = field(point, "instrument")
    return HostPoint(
        ra=_finite(field(point, "ra")),
        dec=_finite(field(point, "dec")),
        flux=_finite(field(point, "flux")),
        fluxerr=_finite(field(point, "fluxerr")),
        origin=field(point, "origin"),
        instrument=field(instrument, "name") if instrument is not None else None,
        alert=bool(field(point, "streams")),
        mjd=_finite(field(point, "mjd")),
        filter=field(point, "filter"),
        mag=_finite(field(point, "mag")),
    )


def aliases(obj: Any) -> tuple[str, ...]:
    """The source's other names (SkyPortal's ``Obj.alias``: a list of strings, or null)."""
    names = field(obj, "alias")
    return tuple(str(name) for name in names if isinstance(name, str) and name) if isinstance(names, (list, tuple)) else ()


def core_allocation_of(allocation: Any) -> Allocation:
    """The core ``Allocation`` for SkyPortal's allocation (its instrument and group loaded);
    ``AltdataError`` for credentials that are not a JSON object."""
    instrument = allocation.instrument
    return Allocation(
        id=allocation.id,
        altdata=_altdata(allocation.altdata),
        pi=allocation.pi,
        proposal_id=allocation.proposal_id,
        instrument_id=allocation.instrument_id,
        instrument_name=instrument.name if instrument is not None else None,
        filters=tuple(instrument.filters or ()) if instrument is not None else (),
        group_ids=group_ids(allocation),
        group=getattr(getattr(allocation, "group", None), "name", None),
    )


def core_request(
    request: Any, *, remote_id: str | None = None, cursor: str | None = None, photometry: tuple[HostPoint, ...] = ()
) -> FollowupRequest:
    """The core ``FollowupRequest`` for SkyPortal's ``request`` (with the facility's ``remote_id``
    and ``cursor`` as recorded, and the source's ``photometry`` when the facility asked for it);
    ``PayloadError`` for unusable coordinates, ``AltdataError`` for credentials that are not a
    JSON object."""
    obj = request.obj
    target = Target(
        str(obj.id),
        _degrees(obj.ra, "$.ra", "must be a finite number in [0, 360)"),
        _degrees(obj.dec, "$.dec", "must be a finite number in [-90, 90]"),
        aliases=aliases(obj),
        photometry=photometry,
    )
    core_allocation = core_allocation_of(request.allocation)
    payload = facility_payload(request.payload)
    requester = getattr(request.requester, "username", None) if request.requester is not None else None
    return FollowupRequest(
        request.id,
        target,
        core_allocation,
        payload,
        requester=requester,
        remote_id=remote_id,
        cursor=cursor,
        comments=comments(request),
        followup_request_id=request.id,
    )
