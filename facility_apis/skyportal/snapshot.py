"""Reading SkyPortal's objects into the core value objects, by attribute and nothing else.

Attributes read (all loaded by ``SkyPortalModels.reload``; nothing else is touched, so nothing is
lazy-loaded): ``request.id``, ``.payload``, ``.status``, ``.last_modified_by_id``,
``.requester.username``, ``.transactions`` (newest first, their ``response``), ``request.obj.id``,
``.ra``, ``.dec``, ``.internal_key``, ``request.allocation.id``, ``.altdata``, ``.pi``,
``.proposal_id``, ``.instrument_id``, ``.group_id``, ``.default_share_group_ids`` and
``request.allocation.instrument.name``, ``.filters``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ..core.errors import PayloadError
from ..core.interface import Allocation, FollowupRequest, Target

#: Keys of a stored transaction ``response`` that hold what later calls need.
REMOTE_ID = "remote_id"
GATEWAY_ID = "gateway_request_id"
#: Key of a stored transaction ``response`` listing the data files the facility gave (SkyPortal has
#: no table for them): ``[{"name", "url", "filter", "mjd"}, ...]``.
FRAMES = "frames"
#: The payload key SkyPortal's own UI adds to mark forced-photometry requests; not a facility field.
REQUEST_TYPE = "request_type"
SKYPORTAL_PAYLOAD_KEYS = (REQUEST_TYPE,)


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


def _altdata(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    return dict(value or {})


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


def core_request(request: Any, *, remote_id: str | None = None) -> FollowupRequest:
    """The core ``FollowupRequest`` for SkyPortal's ``request``; ``PayloadError`` for unusable
    coordinates."""
    obj, allocation = request.obj, request.allocation
    instrument = allocation.instrument
    target = Target(
        str(obj.id),
        _degrees(obj.ra, "$.ra", "must be a finite number in [0, 360)"),
        _degrees(obj.dec, "$.dec", "must be a finite number in [-90, 90]"),
    )
    core_allocation = Allocation(
        id=allocation.id,
        altdata=_altdata(allocation.altdata),
        pi=allocation.pi,
        proposal_id=allocation.proposal_id,
        instrument_id=allocation.instrument_id,
        instrument_name=instrument.name if instrument is not None else None,
        filters=tuple(instrument.filters or ()) if instrument is not None else (),
        group_ids=group_ids(allocation),
    )
    payload = {key: value for key, value in dict(request.payload or {}).items() if key not in SKYPORTAL_PAYLOAD_KEYS}
    requester = getattr(request.requester, "username", None) if request.requester is not None else None
    return FollowupRequest(request.id, target, core_allocation, payload, requester=requester, remote_id=remote_id)
