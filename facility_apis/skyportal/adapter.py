"""SkyPortal-compatible classes over the core facilities.

SkyPortal calls ``await Class.submit(request, session, **kwargs)`` (and ``get``, ``update``,
``delete``) with its own ORM objects, reads the form schemas as class attributes and asks
``implements()`` and ``frontend_render_info()`` what to offer. :func:`make_api_class` builds such a
class for one registered facility, defining only the operations it supports.

An operation re-reads the request through the models seam (``models.py``), builds the core value
objects (``snapshot.py``), runs the facility through ``perform()`` in a worker thread (or hands the
submission to the gateway, ``handoff.py``), then writes ``request.status`` and one
``FacilityTransaction`` per HTTP exchange (already redacted; the data files a facility listed,
``Outcome.frames``, are added to each one's ``response`` under ``frames``) and adds them to the
session.
SkyPortal's handler commits, as it does for its own facilities.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from ..core.errors import AltdataError, FacilityError, PayloadError
from ..core.interface import OPERATIONS, Facility, FollowupRequest, HostPoint, Kind
from ..core.operations import exchange, perform
from ..core.outcome import Outcome, State, skyportal_status
from ..core.redact import Redactor
from ..core.transport import Transport
from . import handoff
from .guard import log_once, never_raises
from .handoff import Result
from .models import get_models
from .settings import current_settings
from .snapshot import CURSOR, FRAMES, GATEWAY_ID, REMOTE_ID, REQUEST_TYPE, REQUEST_TYPE_MARKERS, core_request, facility_payload, field, host_point, recorded

#: The keys of SkyPortal's ``implements()``.
SKYPORTAL_METHODS = (
    "update", "delete", "get", "submit", "send", "remove", "retrieve", "queued", "remove_queue", "prepare_payload",
    "send_skymap", "queued_skymap", "remove_skymap", "retrieve_log", "update_status", "validate_altdata",
)


def _for_skyportal(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """A form as SkyPortal's UI receives it: no ``$id`` (the browser's validator caches schemas by
    id), and room for the ``request_type`` marker SkyPortal's UI adds to forced-photometry payloads."""
    if schema is None:
        return None
    schema.pop("$id", None)
    if schema.get("additionalProperties") is False:
        schema.setdefault("properties", {})[REQUEST_TYPE] = {"type": "string", "enum": ["forced_photometry", "triggered"]}
    return schema


def _merged_altdata(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """One allocation form for facilities sharing a SkyPortal class: every field of each, required
    only where all require it (an allocation may serve either facility or both), each one's
    ``dependencies`` kept (ZTF's IPAC fields come all four or none), and, when every facility
    requires something, at least one field (an empty allocation serves neither)."""
    merged = dict(schemas[0])
    merged["properties"] = {key: value for schema in schemas for key, value in (schema.get("properties") or {}).items()}
    required = [set(schema.get("required") or ()) for schema in schemas]
    merged["required"] = [key for key in merged["properties"] if all(key in r for r in required)]
    dependencies = {key: value for schema in schemas for key, value in (schema.get("dependencies") or {}).items()}
    if dependencies:
        merged["dependencies"] = dependencies
    if len(schemas) > 1 and all(required):
        merged["minProperties"] = 1
    return merged


#: Appended to the status of a submission the facility expects to be followed, in direct mode:
#: SkyPortal 1.4.0 never calls ``get`` (its /api/photometry_request fails before, and its
#: facility_queue polls only its own requests), so nothing more will happen to it there.
NOT_FOLLOWED = "; not followed: SkyPortal does not poll requests in direct mode, so no results will arrive (the facility_apis gateway follows them)"

#: The form keys of ``frontend_render_info``.
RENDER_FORMS = ("formSchema", "formSchemaForcedPhotometry", "formSchemaAltdata", "formSchemaConfig", "uiSchema")


def _no_methods() -> dict[str, bool]:
    return dict.fromkeys(SKYPORTAL_METHODS, False)


class _AltdataType(type):
    """The class-level allocation form SkyPortal reads (``form_json_schema_altdata``), computed on
    each access and never raising (``guard.py``). The metaclass of every SkyPortal class here."""

    @property
    @never_raises(lambda: None)
    def form_json_schema_altdata(cls) -> dict[str, Any]:
        schema = _merged_altdata([member.altdata_schema() for member in cls.facilities])
        schema.pop("$id", None)
        return schema


class _FacilityType(_AltdataType):
    """Class-level properties: SkyPortal reads these attributes when it renders or validates a
    form. They are computed on each access (SkyPortal itself keeps what its handlers computed at
    start-up, see docs/skyportal.md) and never raise (``guard.py``)."""

    @property
    @never_raises(lambda: None)
    def form_json_schema(cls) -> dict[str, Any] | None:
        return cls.custom_json_schema(None, None)

    @property
    @never_raises(lambda: None)
    def form_json_schema_forced_photometry(cls) -> dict[str, Any] | None:
        forced = cls.facility_of_kind(Kind.FORCED_PHOTOMETRY)
        return None if forced is None else cls._form(forced, None)

    @property
    @never_raises(dict)
    def ui_json_schema(cls) -> dict[str, Any]:
        ui: dict[str, Any] = {}
        orders: list[str] = []
        for member in cls.facilities:
            own = member.ui_schema()
            orders += [key for key in own.get("ui:order") or () if key not in orders]
            ui = {**own, **ui}
        if orders:
            # One uiSchema serves every form of the class: its order lists each form's fields
            # (the form library skips the names a form lacks, and refuses a form whose fields it misses).
            ui["ui:order"] = orders
        if not any(cls._own_request_type(member) for member in cls.facilities):  # SkyPortal's marker: hidden
            ui[REQUEST_TYPE] = {"ui:widget": "hidden"}
        order = ui.get("ui:order")
        if isinstance(order, list) and "*" not in order and REQUEST_TYPE not in order:
            order.append(REQUEST_TYPE)
        return ui

    def _own_request_type(cls, member: type[Facility]) -> bool:
        """Whether ``member``'s form has a ``request_type`` field of its own (Swift's three kinds),
        rather than room for SkyPortal's marker: the observer must see and choose it."""
        spec = (cls._form_facility(member).request_schema().get("properties") or {}).get(REQUEST_TYPE) or {}
        return bool(set(spec.get("enum") or ()) - set(REQUEST_TYPE_MARKERS))

    @property
    @never_raises(dict)
    def alias_lookup(cls) -> dict[str, str]:
        """Column headers of SkyPortal's request list: each request field's form title (one
        source, so the list reads as the form does)."""
        titles: dict[str, str] = {}
        for member in cls.facilities:
            for key, spec in (member().request_schema().get("properties") or {}).items():
                if isinstance(spec, dict) and spec.get("title"):
                    titles.setdefault(key, spec["title"])
        return titles

    @property
    @never_raises(lambda: "asc")
    def priorityOrder(cls) -> str:  # SkyPortal's attribute name, camelCase
        return cls.facility_class.priority_order


class SkyPortalClass:
    """What every SkyPortal class here shares: its core facilities (``facilities``; the first is
    ``facility_class``) with the deployment's settings, and the allocation check SkyPortal calls
    when an allocation is created. The follow-up classes (:class:`SkyPortalFacility`) and the
    observation-plan classes (``plans.SkyPortalPlanFacility``) build on it."""

    facilities: ClassVar[tuple[type[Facility], ...]]
    facility_class: ClassVar[type[Facility]]

    @classmethod
    def facility(cls, facility_class: type[Facility] | None = None) -> Facility:
        """A core facility of this class (the first by default), with the deployment's settings;
        ``ConfigurationError`` when its settings are unusable (see :meth:`problem`)."""
        facility_class = facility_class or cls.facility_class
        settings = current_settings()
        return facility_class(settings.facility_config(facility_class.name), egress=settings.egress)

    @classmethod
    def _form_facility(cls, facility_class: type[Facility]) -> Facility:
        """The facility for what does not depend on its settings (forms, altdata checks): with
        unusable settings, one without them, the problem logged once (operations report it)."""
        try:
            return cls.facility(facility_class)
        except Exception as exc:  # noqa: BLE001 - a form must be served whatever the settings
            log_once(f"facility_apis.facilities.{facility_class.name}", str(exc))
            return facility_class({}, egress=current_settings().egress)

    @classmethod
    def problem(cls, facility_class: type[Facility]) -> str | None:
        """Why ``facility_class`` cannot run with this deployment's settings, or ``None``."""
        problem = current_settings().problem_for(facility_class.name)
        if problem is None:
            try:
                cls.facility(facility_class)
            except Exception as exc:  # noqa: BLE001 - reported in the status, never raised at SkyPortal
                problem = f"facility_apis.facilities.{facility_class.name}: {exc}"
        return problem

    @classmethod
    def validate_altdata(cls, altdata: Any, **kwargs: Any) -> dict[str, Any]:
        """Check allocation credentials against the facilities' schemas and run the facility's
        one-time exchange (``exchange_altdata``: BHTOM trades a password for a token); returns
        what SkyPortal stores (``POST /api/allocation`` keeps this return value), without blank
        values. Raises ``AltdataError`` naming every failing field (never a value). With two
        facilities, altdata either accepts is accepted. SkyPortal passes the allocation's
        ``instrument`` (its ``to_dict()``): the facility's ``check_instrument`` rules then apply
        too. Blocking: an exchange makes HTTP calls."""
        instrument = kwargs.get("instrument")
        name = field(instrument, "name") if instrument is not None else None
        instrument_name = name if isinstance(name, str) else None
        failures = []
        for member in cls.facilities:
            facility = cls._form_facility(member)
            try:
                facility.validate_altdata(altdata, instrument_name=instrument_name)
            except AltdataError as exc:
                failures.append(exc)
                continue
            with Transport(retries=1, egress=current_settings().egress) as transport:
                return exchange(facility, altdata, transport, instrument_name=instrument_name)
        raise failures[0]


class SkyPortalFacility(SkyPortalClass, metaclass=_FacilityType):
    """Base of the SkyPortal follow-up classes. ``facilities`` are the core facilities a class
    runs: one, or an observation and a forced-photometry facility sharing one SkyPortal class (a
    request's ``request_type`` picks between them); ``facility_class`` is the first."""

    form_json_schema_config: ClassVar[dict[str, Any] | None] = None

    # -- what SkyPortal asks before calling ----------------------------------------------------

    @classmethod
    def facility_of_kind(cls, kind: Kind) -> type[Facility] | None:
        return next((member for member in cls.facilities if member.kind is kind), None)

    @classmethod
    def facility_for(cls, payload: Any) -> type[Facility]:
        """The facility a request is for: the forced-photometry one when its payload says
        ``request_type: forced_photometry`` (as SkyPortal's UI marks it) or when there is no
        other, else the first."""
        forced = cls.facility_of_kind(Kind.FORCED_PHOTOMETRY)
        marked = isinstance(payload, dict) and payload.get(REQUEST_TYPE) == "forced_photometry"
        if forced is not None and (marked or len(cls.facilities) == 1):
            return forced
        return next(member for member in cls.facilities if member is not forced)

    @classmethod
    def hands_off(cls) -> bool:
        """Whether this deployment hands submissions of this class's facilities to the gateway."""
        return all(current_settings().hands_off(member.name) for member in cls.facilities)

    @classmethod
    @never_raises(_no_methods)
    def implements(cls) -> dict[str, bool]:
        """SkyPortal's capability table. With the gateway, it follows the requests (no ``get``
        or ``update`` here) and cancels them (``delete``)."""
        core = {op: any(member.implements()[op] for member in cls.facilities) for op in OPERATIONS}
        table = dict.fromkeys(SKYPORTAL_METHODS, False)
        if cls.hands_off():
            table.update(submit=core["submit"], delete=core["submit"])
        else:
            table.update(core)
        table["validate_altdata"] = True
        return table

    @classmethod
    def _form(cls, facility_class: type[Facility], instrument: Any) -> dict[str, Any]:
        """A request form (defaults computed now), narrowed to ``instrument`` by the facility's
        ``instrument_form``."""
        facility = cls._form_facility(facility_class)
        schema = facility.request_schema()
        if instrument is not None:
            schema = facility.instrument_form(schema, name=field(instrument, "name"), filters=tuple(field(instrument, "filters") or ()))
        return _for_skyportal(schema)

    @classmethod
    @never_raises(lambda: None)
    def custom_json_schema(cls, instrument: Any, user: Any, **kwargs: Any) -> dict[str, Any] | None:
        """The regular request form for ``instrument``; ``None`` when the class has only a
        forced-photometry form (``form_json_schema_forced_photometry``, which SkyPortal then uses)."""
        regular = next((member for member in cls.facilities if member.kind is not Kind.FORCED_PHOTOMETRY), None)
        return None if regular is None else cls._form(regular, instrument)

    @classmethod
    @never_raises(lambda: {"methodsImplemented": _no_methods(), **dict.fromkeys(RENDER_FORMS), "aliasLookup": {}, "priorityOrder": "asc"})
    def frontend_render_info(cls, instrument: Any, user: Any, **kwargs: Any) -> dict[str, Any]:
        """What SkyPortal's UI reads to offer operations and render forms."""
        forced = cls.facility_of_kind(Kind.FORCED_PHOTOMETRY)
        return {
            "methodsImplemented": cls.implements(),
            "formSchema": cls.custom_json_schema(instrument, user),
            "formSchemaForcedPhotometry": None if forced is None else cls._form(forced, instrument),
            "formSchemaAltdata": cls.form_json_schema_altdata,
            "formSchemaConfig": cls.form_json_schema_config,
            "uiSchema": cls.ui_json_schema,
            "aliasLookup": cls.alias_lookup,
            "priorityOrder": cls.priorityOrder,
        }

    # -- running an operation --------------------------------------------------------------------

    @classmethod
    def _direct(cls, operation: str, request: FollowupRequest, member: type[Facility]) -> Result:
        """Run the core facility (blocking: called in a worker thread)."""
        if operation == "get" and request.remote_id is None:
            return Result(None)  # nothing to follow here (not submitted, or the gateway follows it)
        if not member.implements()[operation]:
            # Only delete is offered without the facility implementing it: SkyPortal's local deletion.
            return Result("deleted") if operation == "delete" else Result(None, error=f"{member.title} does not implement {operation}")
        with Transport(egress=current_settings().egress) as transport:
            outcome = perform(cls.facility(member), operation, request, transport)
        tags: dict[str, Any] = {REMOTE_ID: outcome.remote_id} if outcome.remote_id else {}
        if outcome.cursor is not None:
            tags[CURSOR] = outcome.cursor  # handed back on the next call (snapshot.recorded)
        if outcome.frames:
            tags[FRAMES] = [frame.as_dict() for frame in outcome.frames]
        if operation == "delete" and outcome.state not in (State.DELETED, State.CANCELED):
            return Result(None, outcome.transactions, tags, outcome.photometry, error=f"could not delete: {outcome.detail}")
        status = outcome.status
        if operation == "submit" and outcome.state.active and member.implements()["get"]:
            status += NOT_FOLLOWED  # SkyPortal never polls it: say so where the observer looks
        return Result(status, outcome.transactions, tags, outcome.photometry)

    @classmethod
    async def _host_photometry(cls, models: Any, session: Any, request: Any, operation: str, member: type[Facility]) -> tuple[HostPoint, ...]:
        """The source's photometry, for a submission whose facility uses it (e.g. a centroid)."""
        payload = facility_payload(request.payload)
        if operation != "submit" or not cls._form_facility(member).uses_host_photometry(payload):
            return ()
        return tuple(host_point(point) for point in await models.host_photometry(session, request))

    @classmethod
    async def _perform(
        cls, operation: str, request: Any, member: type[Facility], photometry: tuple[HostPoint, ...] = ()
    ) -> tuple[FollowupRequest | None, Result]:
        """Run the operation in a worker thread: here, or through the gateway."""
        problem = cls.problem(member)
        if problem is not None:
            detail = f"facility_apis is not configured correctly in SkyPortal: {problem}"
            if operation != "submit":
                raise FacilityError(f"could not {operation}: {detail}")
            return None, Result(Outcome(State.FAILED, detail).status)
        try:
            submitting = operation == "submit"
            core = core_request(
                request,
                remote_id=None if submitting else recorded(request, REMOTE_ID),
                cursor=None if submitting else recorded(request, CURSOR),
                photometry=photometry,
            )
        except (AltdataError, PayloadError) as exc:  # credentials or coordinates SkyPortal holds but no facility can use
            if operation != "submit":
                raise FacilityError(str(exc)) from None
            state = State.FAILED if isinstance(exc, AltdataError) else State.REJECTED
            return None, Result(Outcome(state, str(exc)).status)
        settings, gateway_id = current_settings(), recorded(request, GATEWAY_ID)
        if operation == "submit" and cls.hands_off():
            return core, await asyncio.to_thread(handoff.hand_off, cls.facility(member), core, settings)
        if operation == "delete" and gateway_id is not None:
            secrets = member.secrets(core.allocation.altdata)
            return core, await asyncio.to_thread(handoff.cancel, gateway_id, settings, secrets)
        return core, await asyncio.to_thread(cls._direct, operation, core, member)

    @classmethod
    async def _run(cls, operation: str, request: Any, session: Any, options: dict[str, Any]) -> None:
        models = get_models()
        request = await models.reload(session, request)
        # Read before anything can commit: a committed async object cannot be lazy-loaded.
        initiator_id, obj_key, request_id = request.last_modified_by_id, getattr(request.obj, "internal_key", None), request.id
        member = cls.facility_for(request.payload)
        photometry = await cls._host_photometry(models, session, request, operation, member)
        core, result = await cls._perform(operation, request, member, photometry)
        if core is not None and result.photometry is not None and len(result.photometry):
            result = await cls._store_photometry(models, session, request, core, result, member)
        for transaction in result.transactions:
            record = transaction.as_dict()
            record["response"].update(result.tags)
            session.add(models.transaction(request=record["request"], response=record["response"], followup_request=request, initiator_id=initiator_id))
        if result.error:
            raise FacilityError(result.error)
        if result.status is not None:
            request.status = result.status
        models.refresh(
            obj_key=obj_key,
            request_id=request_id,
            user_id=initiator_id,
            refresh_source=bool(options.get("refresh_source")),
            refresh_requests=bool(options.get("refresh_requests")),
        )

    @classmethod
    async def _store_photometry(cls, models: Any, session: Any, request: Any, core: FollowupRequest, result: Result, member: type[Facility]) -> Result:
        """Store the photometry in SkyPortal (as its own ATLAS does, repeated points updated), in
        uploads of at most 10,000 points (SkyPortal refuses larger ones); when that fails, say so
        in the status, with how many points were stored, instead of the facility's."""
        allocation = core.allocation
        stored = 0
        try:
            if allocation.instrument_id is None:
                raise FacilityError("the allocation names no instrument")
            for upload in result.photometry.uploads(core.target.id, allocation.instrument_id, allocation.group_ids):
                body = json.loads(upload)  # SkyPortal's own function takes Python values
                await models.store_photometry(session, request, body)
                stored += len(body["mjd"])
        except Exception as exc:  # noqa: BLE001 - any SkyPortal error becomes the status; it must not lose the transactions
            total = len(result.photometry)
            counted = f" ({stored} of {total} points stored)" if stored else ""
            detail = Redactor(member.secrets(allocation.altdata)).text(f"the photometry could not be stored in SkyPortal{counted}: {exc}")
            return Result(skyportal_status(State.FAILED, detail, submitted=True), result.transactions, result.tags, None, result.error)
        return result


_DOCS = {
    "submit": "Submit the follow-up request (or hand it to the gateway); sets its status.",
    "get": "Follow the submitted request; stores its photometry in SkyPortal when it is complete.",
    "update": "Send the request's changed payload to the facility.",
    "delete": "Cancel the request at the facility (or the gateway) and mark it deleted.",
}


def _operation(operation: str) -> classmethod:
    async def method(cls, request: Any, session: Any, **kwargs: Any) -> None:
        await cls._run(operation, request, session, kwargs)

    method.__name__ = method.__qualname__ = operation
    method.__doc__ = _DOCS[operation] + " SkyPortal's caller commits the session."
    return classmethod(method)


def make_api_class(class_name: str, *facilities: type[Facility], module: str = __name__) -> type[SkyPortalClass]:
    """A SkyPortal class named ``class_name`` running ``facilities`` (one, or an observation and a
    forced-photometry facility). It defines only the operations they implement, plus ``delete``
    for any that submits (a request handed to the gateway is canceled there). A facility of kind
    ``observation_plan`` gets SkyPortal's plan methods instead (``send``, ``remove``: see
    ``plans.py``)."""
    if not facilities:
        raise ValueError("a SkyPortal class needs at least one facility")
    if facilities[0].kind is Kind.OBSERVATION_PLAN:
        from .plans import make_plan_class

        return make_plan_class(class_name, facilities[0], module=module)
    core = {op: any(member.implements()[op] for member in facilities) for op in OPERATIONS}
    operations = [op for op in OPERATIONS if core[op] or (op == "delete" and core["submit"])]
    facility_class = facilities[0]
    namespace: dict[str, Any] = {op: _operation(op) for op in operations}
    namespace |= {
        "facilities": tuple(facilities),
        "facility_class": facility_class,
        "__module__": module,
        "__doc__": f"SkyPortal's {class_name}: {' and '.join(m.title for m in facilities)}, run by facility_apis ({', '.join(m.name for m in facilities)}).",
    }
    return _FacilityType(class_name, (SkyPortalFacility,), namespace)
