"""The seam to SkyPortal's database: its models are imported when a call needs them, never at
import time, and tests swap in fakes with :func:`use_models`.

Everything the SkyPortal classes do to SkyPortal's database goes through one ``SkyPortalModels``
object: load a follow-up request with the relationships the classes read, make a
``FacilityTransaction``, store photometry, push the browser refresh. Each session call works with
an ``AsyncSession`` (awaited) or a plain ``Session``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any


async def resolve(value: Any) -> Any:
    """``value``, awaited if it is awaitable (an ``AsyncSession`` call) and as is otherwise."""
    return await value if inspect.isawaitable(value) else value


class SkyPortalModels:
    """SkyPortal's own models (``skyportal.models``), imported at call time."""

    async def reload(self, session: Any, request: Any) -> Any:
        """``request`` re-selected with its allocation (and instrument and group), object (and its
        comments with their authors), requester and transactions eagerly loaded: an
        ``AsyncSession`` cannot lazy-load them later."""
        from skyportal.models import Allocation, Comment, FollowupRequest, Obj
        from sqlalchemy import select
        from sqlalchemy.orm import selectinload

        statement = (
            select(FollowupRequest)
            .where(FollowupRequest.id == request.id)
            .options(
                selectinload(FollowupRequest.allocation).selectinload(Allocation.instrument),
                selectinload(FollowupRequest.allocation).selectinload(Allocation.group),
                selectinload(FollowupRequest.obj).selectinload(Obj.comments).selectinload(Comment.author),
                selectinload(FollowupRequest.requester),
                selectinload(FollowupRequest.transactions),
            )
        )
        loaded = await resolve(session.scalar(statement))
        return request if loaded is None else loaded

    async def reload_plan(self, session: Any, request: Any) -> Any:
        """An ``ObservationPlanRequest`` re-selected with what the plan classes read eagerly
        loaded: its allocation (and instrument and group), requester, GCN event, transactions and
        its plans' planned observations with their fields."""
        from skyportal.models import Allocation, EventObservationPlan, ObservationPlanRequest, PlannedObservation
        from sqlalchemy import select
        from sqlalchemy.orm import selectinload

        statement = (
            select(ObservationPlanRequest)
            .where(ObservationPlanRequest.id == request.id)
            .options(
                selectinload(ObservationPlanRequest.allocation).selectinload(Allocation.instrument),
                selectinload(ObservationPlanRequest.allocation).selectinload(Allocation.group),
                selectinload(ObservationPlanRequest.requester),
                selectinload(ObservationPlanRequest.gcnevent),
                selectinload(ObservationPlanRequest.transactions),
                selectinload(ObservationPlanRequest.observation_plans)
                .selectinload(EventObservationPlan.planned_observations)
                .selectinload(PlannedObservation.field),
            )
        )
        loaded = await resolve(session.scalar(statement))
        return request if loaded is None else loaded

    def session_of(self, request: Any) -> Any:
        """The session ``request`` belongs to (SkyPortal's plan ``remove`` receives none): the
        ``AsyncSession`` of an object loaded through one, else its ``Session``."""
        from sqlalchemy.ext.asyncio import async_object_session
        from sqlalchemy.orm import object_session

        session = async_object_session(request) or object_session(request)
        if session is None:
            raise RuntimeError("the observation plan request belongs to no session")
        return session

    async def commit(self, session: Any) -> None:
        """Commit ``session`` (an ``AsyncSession`` or a ``Session``)."""
        await resolve(session.commit())

    async def host_photometry(self, session: Any, request: Any) -> list[Any]:
        """The photometry of the request's source that its requester may see, with each point's
        instrument and streams loaded (only for a facility that asks for it: it can be large)."""
        from skyportal.models import Photometry
        from sqlalchemy.orm import selectinload

        statement = (
            Photometry.select(request.requester)
            .where(Photometry.obj_id == request.obj.id)
            .options(selectinload(Photometry.instrument), selectinload(Photometry.streams))
        )
        return list((await resolve(session.scalars(statement))).all())

    async def load_request(self, session: Any, request_id: int) -> Any:
        """The follow-up request ``request_id`` with its allocation and instrument loaded (a
        listener checks them; an ``AsyncSession`` cannot lazy-load them). SkyPortal's handler has
        checked access to it."""
        from skyportal.models import Allocation, FollowupRequest
        from sqlalchemy import select
        from sqlalchemy.orm import selectinload

        statement = (
            select(FollowupRequest)
            .where(FollowupRequest.id == request_id)
            .options(selectinload(FollowupRequest.allocation).selectinload(Allocation.instrument))
        )
        return await resolve(session.scalar(statement))

    def transaction(self, **fields: Any) -> Any:
        """A new ``FacilityTransaction`` (``request``, ``response``, ``followup_request`` or
        ``observation_plan_request``, ``initiator_id``)."""
        from skyportal.models import FacilityTransaction

        return FacilityTransaction(**fields)

    async def store_photometry(self, session: Any, request: Any, body: dict[str, Any]) -> None:
        """Store photometry (the body of ``PUT /api/photometry``) as the requester, repeated
        points updated rather than duplicated. SkyPortal's function commits the session."""
        from skyportal.handlers.api.photometry import add_external_photometry

        ids, _ = await add_external_photometry(body, request.requester, session, duplicates="update")
        if ids is None:
            raise RuntimeError("SkyPortal did not store the photometry (see its log)")

    def refresh(self, *, obj_key: Any, request_id: Any, user_id: Any, refresh_source: bool = False, refresh_requests: bool = False) -> None:
        """Ask browsers to re-read the source page and follow-up lists, as SkyPortal's facilities
        do (values read before any commit: a committed async object cannot be lazy-loaded)."""
        if not (refresh_source or refresh_requests):
            return
        try:
            from baselayer.app.flow import Flow
        except ImportError:
            return
        flow = Flow()
        if refresh_source:
            flow.push("*", "skyportal/REFRESH_SOURCE", payload={"obj_key": obj_key})
        if refresh_requests:
            flow.push(user_id, "skyportal/REFRESH_FOLLOWUP_REQUESTS", payload={"request_id": request_id})


_models: SkyPortalModels = SkyPortalModels()


def get_models() -> SkyPortalModels:
    """The models in use (SkyPortal's, unless a test installed others)."""
    return _models


def set_models(models: SkyPortalModels) -> SkyPortalModels:
    """Install ``models``; returns the previous ones."""
    global _models
    previous, _models = _models, models
    return previous


@contextlib.contextmanager
def use_models(models: SkyPortalModels) -> Iterator[SkyPortalModels]:
    """Use ``models`` inside the block (e.g. the fakes of ``facility_apis.testing.skyportal_models``)."""
    previous = set_models(models)
    try:
        yield models
    finally:
        set_models(previous)
