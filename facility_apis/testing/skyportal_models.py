"""Fakes of SkyPortal's models, async session and request handler, for exercising the classes of
``facility_apis.skyportal`` through SkyPortal's own call shape without SkyPortal::

    with use_fake_models():
        request = make_request(altdata={"api_token": "..."}, payload={...})
        session = AsyncSession(request)
        await ATLASAPI.submit(request, session, refresh_source=True)
        session.transactions, request.status

and for the observation-plan classes (``make_plan_request``: a GCN event, a plan of planned
observations on instrument fields)::

        plan_request = make_plan_request(altdata={...}, fields=5000)
        session = AsyncSession(plan_request)
        await MMAAPI.send(plan_request, session)
        await MMAAPI.remove(plan_request)          # SkyPortal passes no session: the request's own

The model fakes carry the attributes SkyPortal's models have (those the classes read, and a few
neighbours); anything else raises ``AttributeError``, as a relationship that was not loaded would
in an ``AsyncSession``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ..core.photometry import MAX_UPLOAD_ROWS
from ..skyportal.models import SkyPortalModels, use_models

_ids = itertools.count(1)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(eq=False)
class User:
    id: int
    username: str


@dataclass(eq=False)
class Instrument:
    id: int
    name: str
    filters: list[str] = field(default_factory=list)
    api_classname: str | None = None
    listener_classname: str | None = None


@dataclass(eq=False)
class Group:
    id: int
    name: str


@dataclass(eq=False)
class Comment:
    """A comment on a source: ``text``, its ``author`` and when it was made."""

    text: str
    author: User
    created_at: datetime = field(default_factory=_now)
    id: int = field(default_factory=lambda: next(_ids))


@dataclass(eq=False)
class Allocation:
    id: int
    instrument: Instrument
    group_id: int
    altdata: dict[str, Any] = field(default_factory=dict)
    pi: str | None = None
    proposal_id: str | None = None
    default_share_group_ids: list[int] = field(default_factory=list)
    types: list[str] = field(default_factory=lambda: ["triggered"])
    hours_allocated: float = 10.0
    group: Group | None = None

    @property
    def instrument_id(self) -> int:
        return self.instrument.id


@dataclass(eq=False)
class Stream:
    id: int
    name: str


@dataclass(eq=False)
class Photometry:
    """A photometry point as SkyPortal stores it: flux in µJy (zero point 23.9), where it was
    measured, how it came (``origin``, its ``instrument`` and alert ``streams``), when (``mjd``),
    in which bandpass (``filter``), and its ``mag`` (SkyPortal computes it; ``None`` below its
    detection threshold)."""

    id: int
    flux: float | None
    fluxerr: float
    ra: float | None = None
    dec: float | None = None
    origin: str | None = None
    instrument: Instrument | None = None
    streams: list[Stream] = field(default_factory=list)
    mjd: float | None = None
    filter: str | None = None
    mag: float | None = None


@dataclass(eq=False)
class Obj:
    id: str
    ra: float | None
    dec: float | None
    internal_key: str = field(default_factory=lambda: str(uuid.uuid4()))
    comments: list[Comment] = field(default_factory=list)
    #: Other names of the source (SkyPortal: an array of strings, or null).
    alias: list[str] | None = None
    photometry: list[Photometry] = field(default_factory=list)


@dataclass(eq=False)
class FollowupRequest:
    id: int
    obj: Obj
    allocation: Allocation
    requester: User
    payload: dict[str, Any] = field(default_factory=dict)
    status: str = "pending submission"
    last_modified_by_id: int | None = None
    comment: str | None = None
    #: Newest first, as SkyPortal's relationship is ordered.
    transactions: list[FacilityTransaction] = field(default_factory=list)

    @property
    def obj_id(self) -> str:
        return self.obj.id

    @property
    def allocation_id(self) -> int:
        return self.allocation.id

    @property
    def requester_id(self) -> int:
        return self.requester.id

    @property
    def instrument(self) -> Instrument:
        return self.allocation.instrument


@dataclass(eq=False)
class GcnEvent:
    id: int
    dateobs: datetime


@dataclass(eq=False)
class InstrumentField:
    """A field (tile) of an instrument's grid: SkyPortal's ``field_id`` and its centre."""

    id: int
    field_id: int
    ra: float
    dec: float


@dataclass(eq=False)
class PlannedObservation:
    id: int
    field: InstrumentField
    filt: str
    exposure_time: float
    obstime: datetime
    weight: float = 0.0
    overhead_per_exposure: float = 0.0


@dataclass(eq=False)
class EventObservationPlan:
    id: int
    plan_name: str
    validity_window_start: datetime
    validity_window_end: datetime
    planned_observations: list[PlannedObservation] = field(default_factory=list)
    status: str = "complete"


@dataclass(eq=False)
class ObservationPlanRequest:
    """A plan request as SkyPortal holds it once its plan is made (status ``complete``)."""

    id: int
    gcnevent: GcnEvent
    allocation: Allocation
    requester: User
    payload: dict[str, Any] = field(default_factory=dict)
    observation_plans: list[EventObservationPlan] = field(default_factory=list)
    status: str = "complete"
    last_modified_by_id: int | None = None
    #: Newest first, as SkyPortal's relationship is ordered.
    transactions: list[FacilityTransaction] = field(default_factory=list)

    @property
    def instrument(self) -> Instrument:
        return self.allocation.instrument


@dataclass(eq=False)
class FacilityTransaction:
    """Like SkyPortal's: giving ``followup_request`` (or ``observation_plan_request``) puts the
    transaction first in its list."""

    request: Any = None
    response: Any = None
    followup_request: FollowupRequest | None = None
    initiator_id: int | None = None
    observation_plan_request: ObservationPlanRequest | None = None
    created_at: datetime = field(default_factory=_now)
    id: int = field(default_factory=lambda: next(_ids))

    def __post_init__(self) -> None:
        for owner in (self.followup_request, self.observation_plan_request):
            if owner is not None:
                owner.transactions.insert(0, self)

    @property
    def observation_plan_request_id(self) -> int | None:
        return self.observation_plan_request.id if self.observation_plan_request is not None else None

    @property
    def followup_request_id(self) -> int | None:
        return self.followup_request.id if self.followup_request is not None else None


#: The session each object was given to (SQLAlchemy's ``object_session``).
_SESSIONS: weakref.WeakKeyDictionary[Any, AsyncSession] = weakref.WeakKeyDictionary()


class AsyncSession:
    """The part of an SQLAlchemy ``AsyncSession`` the classes use; holds ``objects`` by id."""

    def __init__(self, *objects: Any):
        self.identity: dict[tuple[type, Any], Any] = {(type(o), o.id): o for o in objects}
        for o in objects:
            _SESSIONS[o] = self
        self.added: list[Any] = []
        self.statements: list[Any] = []
        self.commits = 0
        self.flushes = 0
        self.photometry: list[dict[str, Any]] = []
        self.refreshes: list[dict[str, Any]] = []
        self.photometry_error: Exception | None = None

    def add(self, obj: Any) -> None:
        self.added.append(obj)

    def add_all(self, objects: Any) -> None:
        for obj in objects:
            self.add(obj)

    async def flush(self) -> None:
        self.flushes += 1

    async def commit(self) -> None:
        self.commits += 1

    async def rollback(self) -> None:
        pass

    async def get(self, model: type, ident: Any) -> Any:
        return self.identity.get((model, ident))

    async def scalar(self, statement: Any) -> Any:
        self.statements.append(statement)
        return None

    async def execute(self, statement: Any) -> Any:
        self.statements.append(statement)
        return _Result()

    @property
    def transactions(self) -> list[FacilityTransaction]:
        """The transactions added, oldest first."""
        return [o for o in self.added if isinstance(o, FacilityTransaction)]


class _Result:
    def scalars(self) -> _Result:
        return self

    def first(self) -> None:
        return None

    def all(self) -> list[Any]:
        return []


class FakeModels(SkyPortalModels):
    """The models seam over the fakes: the request is used as given (nothing is re-selected),
    photometry and refreshes are recorded on the session / on this object."""

    def __init__(self) -> None:
        self.refreshes: list[dict[str, Any]] = []
        #: How often a source's photometry was loaded (only facilities that use it ask).
        self.photometry_loads = 0

    async def reload(self, session: Any, request: Any) -> Any:
        return request

    async def reload_plan(self, session: Any, request: Any) -> Any:
        return request

    def session_of(self, request: Any) -> Any:
        session = _SESSIONS.get(request)
        if session is None:
            raise RuntimeError("the observation plan request belongs to no session")
        return session

    async def load_request(self, session: Any, request_id: int) -> Any:
        return await session.get(FollowupRequest, request_id)

    async def host_photometry(self, session: Any, request: Any) -> list[Any]:
        self.photometry_loads += 1
        return list(request.obj.photometry)

    def transaction(self, **fields: Any) -> FacilityTransaction:
        return FacilityTransaction(**fields)

    async def store_photometry(self, session: Any, request: Any, body: dict[str, Any]) -> None:
        if getattr(session, "photometry_error", None) is not None:
            raise session.photometry_error
        rows = len(body.get("mjd", []))
        if rows > MAX_UPLOAD_ROWS:  # as SkyPortal's add_external_photometry refuses it
            message = f"Maximum number of photometry rows to post exceeded: {rows} > {MAX_UPLOAD_ROWS}."
            raise ValueError(message + " Please break up the data into smaller sets and try again")
        session.photometry.append(body)

    def refresh(self, **flags: Any) -> None:
        self.refreshes.append(flags)


@contextlib.contextmanager
def use_fake_models() -> Iterator[FakeModels]:
    """Install :class:`FakeModels` in ``facility_apis.skyportal`` for the block."""
    with use_models(FakeModels()) as models:
        yield models


def make_request(
    *,
    altdata: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    request_id: int = 11,
    obj: tuple[str, float | None, float | None] = ("ZTF26skyp", 210.5, 12.25),
    instrument: tuple[int, str, list[str]] = (3, "ATLAS", ["atlasc", "atlaso"]),
    allocation_id: int = 5,
    group_id: int = 2,
    share_group_ids: tuple[int, ...] = (7,),
    requester: tuple[int, str] = (42, "observer"),
    api_classname: str = "ATLASAPI",
) -> FollowupRequest:
    """A follow-up request with its object, allocation, instrument and requester."""
    user = User(*requester)
    inst = Instrument(*instrument, api_classname=api_classname)
    group = Group(group_id, f"Group {group_id}")
    allocation = Allocation(
        allocation_id, inst, group_id, dict(altdata or {}), pi="A. PI", proposal_id="P-1", default_share_group_ids=list(share_group_ids), group=group
    )
    return FollowupRequest(request_id, Obj(*obj), allocation, user, dict(payload or {}), last_modified_by_id=user.id)


def make_plan_request(
    *,
    altdata: dict[str, Any] | None = None,
    fields: int = 3,
    filters: tuple[str, ...] = ("ztfg", "ztfr"),
    exposure_time: float = 300.0,
    queue_name: str = "S250818k_night1",
    request_id: int = 21,
    dateobs: datetime = datetime(2025, 8, 18, 1, 2, 3),
    start: datetime | None = None,
    hours: float = 10.0,
    instrument: tuple[int, str, list[str]] = (4, "ZTF", ["ztfg", "ztfr", "ztfi"]),
    requester: tuple[int, str] = (42, "observer"),
    allocation_id: int = 6,
) -> ObservationPlanRequest:
    """A ``complete`` plan request on a GCN event: ``fields`` planned observations, cycling
    through ``filters``, on fields spread over the sky (``field_id`` 100 onwards). The plan's
    window starts at ``start`` (naive UTC; default: the next whole hour, so it has not closed)."""
    if start is None:
        start = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    user = User(*requester)
    inst = Instrument(*instrument, api_classname=None)
    allocation = Allocation(allocation_id, inst, 2, dict(altdata or {}), pi="A. PI", proposal_id="P-2", group=Group(2, "Group 2"))
    end = start + timedelta(hours=hours)
    planned = []
    for number in range(fields):
        tile = InstrumentField(1000 + number, 100 + number, (number * 7.31) % 360.0, -80.0 + (number * 3.7) % 160.0)
        planned.append(PlannedObservation(2000 + number, tile, filters[number % len(filters)], exposure_time, start + timedelta(seconds=30 * number)))
    plan = EventObservationPlan(3000 + request_id, queue_name, start, end, planned)
    payload = {"queue_name": queue_name, "start_date": start.isoformat(sep=" "), "end_date": end.isoformat(sep=" "), "filters": ",".join(filters)}
    return ObservationPlanRequest(request_id, GcnEvent(7, dateobs), allocation, user, payload, [plan], last_modified_by_id=user.id)


class HTTPRequest:
    """The part of tornado's ``HTTPServerRequest`` SkyPortal's serializers read."""

    def __init__(self, method: str, url: str, headers: dict[str, str], body: bytes):
        self.method, self.headers, self.body = method, headers, body
        self.uri = urlsplit(url).path
        self._url = url

    def full_url(self) -> str:
        return self._url


class Handler:
    """A fake of SkyPortal's ``FacilityMessageHandler`` as a listener sees it."""

    def __init__(self, body: dict[str, Any], *, token: str, user: User, url: str = "https://skyportal.test/api/facility"):
        headers = {"Authorization": f"token {token}", "Content-Type": "application/json", "Host": "skyportal.test"}
        self._body = body
        self.request = HTTPRequest("POST", url, headers, json.dumps(body).encode())
        self.associated_user_object = user
        self.current_user = user

    def get_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._body))
