"""SkyPortal's observation-plan methods over a facility of kind ``observation_plan``.

How SkyPortal uses a plan class (its ``handlers/api/observation_plan.py`` at the reference commit):
an instrument's ``api_classname_obsplan`` class makes a plan for an event with ``submit`` (an
``ObservationPlanRequest`` whose ``EventObservationPlan`` holds ``PlannedObservation`` rows, each
on an ``InstrumentField``); once the request is ``complete``, "Send to Queue" calls
``await api.send(plan_request, session)`` and commits, and "Remove from Queue" calls
``await api.remove(plan_request)`` (no session; the handler commits the request's own), setting
``failed to remove from queue`` when it raises. Its UI compares the statuses exactly: it offers
"Send to Queue" only for ``complete`` and "Remove from Queue" only for ``submitted to telescope
queue``.

:func:`make_plan_class` makes the class for one such facility. It maps SkyPortal's plan methods
onto the core operations, run through ``perform`` in a worker thread:

============  ==========  ===================================================================
SkyPortal     core        what the request shows
============  ==========  ===================================================================
``send``      ``submit``  ``submitted to telescope queue`` when delivered;
                          ``rejected from telescope queue: <reason>`` when the receiver refused
                          the plan; otherwise the status stays (``complete``: it can be sent
                          again) and the reason is raised, which SkyPortal shows
``remove``    ``delete``  ``deleted from telescope queue``; otherwise raised (SkyPortal then
                          writes ``failed to remove from queue``)
============  ==========  ===================================================================

These are SkyPortal's own words (its MMA and ZTF classes). What happened is kept in
``FacilityTransaction`` rows (``observation_plan_request``), one per exchange, redacted, each
``response`` tagged with ``remote_id`` and ``detail``; a failed send's are committed before the
error is raised, so they outlive SkyPortal's rollback. ``retrieve``, ``queued``,
``remove_queue`` and the skymap methods map to no core operation and are not offered.

Plans are never handed to the gateway: a delivery is one exchange, with nothing to follow, and
SkyPortal's listener (``POST /api/facility``) updates follow-up requests only, so a plan's status
could not come back from there.

The class defines no ``submit``, ``delete`` or request form: making plans is SkyPortal's. A
deployment builds it on SkyPortal's own generating class (``bind(FollowUpAPI, Listener,
bases={"MMAAPI": observation_plan.MMAAPI})``, docs/skyportal.md), which keeps SkyPortal's plan
generation and its form; ``implements()`` and ``frontend_render_info()`` then answer for both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ..core.errors import AltdataError, FacilityError, PayloadError
from ..core.interface import Facility, FollowupRequest, Target
from ..core.operations import perform
from ..core.outcome import Outcome, State
from ..core.plan import PLAN_KEY
from ..core.timeutil import to_mjd
from ..core.transport import Transport
from .adapter import SkyPortalClass, _AltdataType, _no_methods
from .guard import never_raises
from .models import get_models
from .settings import current_settings
from .snapshot import REMOTE_ID, core_allocation_of, field, recorded

#: SkyPortal's statuses of a plan request, in its own words.
SENT = "submitted to telescope queue"
REFUSED = "rejected from telescope queue"
REMOVED = "deleted from telescope queue"
#: The key of a stored transaction ``response`` saying what the facility did.
DETAIL = "detail"
#: SkyPortal's plan methods and the core operations they run.
PLAN_METHODS = {"send": "submit", "remove": "delete"}
#: SkyPortal prefixes the plan request's queue name so (its ``_build_observation_plan_payload``).
QUEUE_PREFIX = "ToO_"


def _plan_document(request: Any, username: str) -> dict[str, Any]:
    """The plan of SkyPortal's ``ObservationPlanRequest`` (one ``EventObservationPlan``, its
    planned observations in order), as ``core/plan.py`` describes it; ``PayloadError`` when there
    is none to send."""
    plans = list(field(request, "observation_plans") or ())
    if len(plans) != 1:
        raise PayloadError.single(f"$.{PLAN_KEY}", "must be the request's one observation plan; SkyPortal holds none or several")
    planned = list(field(plans[0], "planned_observations") or ())
    if not planned:
        raise PayloadError.single(f"$.{PLAN_KEY}.targets", "must not be empty: the plan has no planned observation")
    payload = dict(field(request, "payload") or {})
    try:
        window = [to_mjd(payload["start_date"]), to_mjd(payload["end_date"])]
    except (KeyError, TypeError, ValueError):
        window = [to_mjd(plans[0].validity_window_start), to_mjd(plans[0].validity_window_end)]
    targets = [
        {
            "request_id": number,
            "field_id": obs.field.field_id,
            "ra": obs.field.ra,
            "dec": obs.field.dec,
            "filter": obs.filt,
            "exposure_time": obs.exposure_time,
            "program_pi": username,
        }
        for number, obs in enumerate(planned, 1)
    ]
    queue_name = payload.get("queue_name") or field(plans[0], "plan_name")
    document = {"queue_name": f"{QUEUE_PREFIX}{queue_name}", "validity_window_mjd": window, "queue_type": "list", "user": username, "targets": targets}
    event = _event(request)
    return document | ({"event": event} if event else {})


def _event(request: Any) -> str | None:
    """The GCN event's time (``dateobs``) in ISO 8601, or None."""
    dateobs = field(field(request, "gcnevent"), "dateobs")
    return dateobs.isoformat() if hasattr(dateobs, "isoformat") else (str(dateobs) if dateobs else None)


def plan_request(request: Any, *, remote_id: str | None = None, with_plan: bool = True) -> FollowupRequest:
    """The core request for SkyPortal's ``ObservationPlanRequest``: its plan in the payload
    (``observation_plan``), its allocation, the requester's user name, and as target the event
    (its ``dateobs``) placed at the plan's first field (the core needs a position; a plan's
    facility reads none). ``with_plan=False`` (a removal): a request without a usable plan gets
    an empty payload instead of a ``PayloadError``.

    Attributes read (loaded by ``SkyPortalModels.reload_plan``): ``id``, ``payload``
    (``queue_name``, ``start_date``, ``end_date``), ``requester.username``, ``gcnevent.dateobs``,
    ``transactions``, ``allocation`` (as for follow-up requests), ``observation_plans[0]``
    (``plan_name``, ``validity_window_start``/``_end``) and its ``planned_observations``
    (``filt``, ``exposure_time``, ``field.field_id``, ``field.ra``, ``field.dec``)."""
    username = str(field(field(request, "requester"), "username") or "")
    try:
        document = _plan_document(request, username)
    except PayloadError:
        if with_plan:
            raise
        document = None
    first = document["targets"][0] if document else None
    position = (float(first["ra"]), float(first["dec"])) if first else (0.0, 0.0)
    target = Target(_event(request) or f"observation plan request {request.id}", *position)
    payload = {PLAN_KEY: document} if document else {}
    return FollowupRequest(request.id, target, core_allocation_of(request.allocation), payload, requester=username or None, remote_id=remote_id)


def _status(operation: str, outcome: Outcome) -> tuple[str | None, str | None]:
    """The plan request's new status, or the error to raise (see the module docstring)."""
    if operation == "submit":
        if outcome.state in (State.SUBMITTED, State.QUEUED, State.RUNNING, State.COMPLETED):
            return SENT, None
        if outcome.state is State.REJECTED:
            return f"{REFUSED}: {outcome.detail}", None
        return None, f"could not deliver the plan: {outcome.detail}"
    if outcome.state in (State.DELETED, State.CANCELED):
        return REMOVED, None
    return None, f"could not remove the plan: {outcome.detail}"


def _standalone_info(methods: dict[str, bool], altdata: dict[str, Any] | None, priority_order: str) -> dict[str, Any]:
    """``frontend_render_info`` of a plan class built on nothing that makes plans: no request form."""
    forms = {"formSchema": None, "formSchemaForcedPhotometry": None, "formSchemaConfig": None, "uiSchema": {}}
    return {"methodsImplemented": methods, **forms, "formSchemaAltdata": altdata, "aliasLookup": {}, "priorityOrder": priority_order}


class SkyPortalPlanFacility(SkyPortalClass, metaclass=_AltdataType):
    """Base of the SkyPortal plan classes (see the module docstring)."""

    @classmethod
    @never_raises(_no_methods)
    def implements(cls) -> dict[str, bool]:
        """SkyPortal's capability table: ``send``, ``remove`` and ``validate_altdata`` here, and
        whatever the class it is built on implements (SkyPortal's plan generation)."""
        table = _no_methods()
        inherited = getattr(super(), "implements", None)
        if callable(inherited):
            table.update({key: bool(value) for key, value in inherited().items() if key in table})
        table.update(validate_altdata=True, **{method: cls.facility_class.implements()[operation] for method, operation in PLAN_METHODS.items()})
        return table

    @classmethod
    @never_raises(lambda: _standalone_info(_no_methods(), None, "asc"))
    def frontend_render_info(cls, instrument: Any, user: Any, **kwargs: Any) -> dict[str, Any]:
        """What SkyPortal's UI reads: the generating class's (its plan form) where there is one,
        with this class's capabilities and allocation form; standalone, no request form."""
        inherited = getattr(super(), "frontend_render_info", None)
        info: dict[str, Any] = dict(inherited(instrument, user, **kwargs)) if callable(inherited) else {}
        return _standalone_info(cls.implements(), cls.form_json_schema_altdata, cls.facility_class.priority_order) | info | {
            "methodsImplemented": cls.implements(),
            "formSchemaAltdata": cls.form_json_schema_altdata,
        }

    # -- SkyPortal's plan methods ----------------------------------------------------------------

    @classmethod
    async def send(cls, request: Any, session: Any, **kwargs: Any) -> None:
        """Deliver the plan request's plan (SkyPortal's "Send to Queue"); sets its status, adds
        the transactions to ``session``. Raises ``FacilityError`` when the plan was not delivered
        (the status is left as it was, so it can be sent again)."""
        await cls._run("submit", request, session)

    @classmethod
    async def remove(cls, request: Any, session: Any = None, **kwargs: Any) -> None:
        """Take the delivered plan back (SkyPortal's "Remove from Queue"); sets the status, adds
        the transactions to ``session`` or, as SkyPortal passes none, to the request's own.
        Raises ``FacilityError`` when it was not removed."""
        await cls._run("delete", request, session)

    @classmethod
    def _perform(cls, operation: str, core: FollowupRequest, member: type[Facility]) -> Outcome:
        with Transport(egress=current_settings().egress) as transport:
            return perform(cls.facility(member), operation, core, transport)

    @classmethod
    async def _run(cls, operation: str, request: Any, session: Any) -> None:
        models = get_models()
        session = session if session is not None else models.session_of(request)
        request = await models.reload_plan(session, request)
        initiator_id, member = request.last_modified_by_id, cls.facility_class
        verb = "deliver" if operation == "submit" else "remove"
        problem = cls.problem(member)
        if problem is not None:
            raise FacilityError(f"could not {verb} the plan: facility_apis is not configured correctly in SkyPortal: {problem}")
        try:
            remote_id = None if operation == "submit" else recorded(request, REMOTE_ID)
            core = plan_request(request, remote_id=remote_id, with_plan=operation == "submit")
        except (AltdataError, PayloadError) as exc:
            raise FacilityError(f"could not {verb} the plan: {exc}") from None
        outcome = await asyncio.to_thread(cls._perform, operation, core, member)
        tags: Mapping[str, Any] = {DETAIL: outcome.detail} | ({REMOTE_ID: outcome.remote_id} if outcome.remote_id else {})
        for transaction in outcome.transactions:
            record = transaction.as_dict()
            record["response"].update(tags)
            session.add(models.transaction(request=record["request"], response=record["response"], observation_plan_request=request, initiator_id=initiator_id))
        status, error = _status(operation, outcome)
        if error is not None:
            await models.commit(session)  # the attempt's records outlive SkyPortal's rollback
            raise FacilityError(error)
        request.status = status


def make_plan_class(class_name: str, facility: type[Facility], *, module: str) -> type[SkyPortalPlanFacility]:
    """A SkyPortal plan class named ``class_name`` running ``facility`` (kind
    ``observation_plan``); ``implements()`` offers ``send`` and ``remove`` where the facility
    implements ``submit`` and ``delete`` (SkyPortal asks it before calling either)."""
    namespace: dict[str, Any] = {
        "facilities": (facility,),
        "facility_class": facility,
        "__module__": module,
        "__doc__": f"SkyPortal's {class_name}: {facility.title}, delivered by facility_apis ({facility.name}); plans are made by the class it is bound on.",
    }
    return _AltdataType(class_name, (SkyPortalPlanFacility,), namespace)
