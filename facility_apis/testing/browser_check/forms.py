"""The Python side: each facility's forms as the SkyPortal adapter hands them to SkyPortal's UI,
and the package's verdict on data submitted through them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...core.errors import ValidationFailed
from ...core.interface import Kind
from ...core.registry import Registry, default_registry
from ..form_instances import form_instances

FORMS = ("request", "altdata")
#: The screenshots each form gives (``browser/check.mjs``: the plain and the SkyPortal mode).
FORM_SCREENSHOTS = {"request": ("request", "request-skyportal"), "altdata": ("allocation",)}


@dataclass(frozen=True)
class Verdict:
    """``valid`` or not, the JSON paths of the fields at fault (``$.start_date``), and a ``note``
    when there is no verdict to compare (a crash, an outcome that cannot be read)."""

    valid: bool
    fields: tuple[str, ...] = ()
    note: str = ""

    def __str__(self) -> str:
        if self.note:
            return self.note
        return "valid" if self.valid else "invalid: " + ", ".join(self.fields)


def verdict_of(call: Callable[[], Any]) -> Verdict:
    """The verdict of a ``validate_*`` call: valid, the fields of its ``ValidationFailed``, or a
    note when it raised anything else (a facility crashing on form data is a finding too)."""
    try:
        call()
    except ValidationFailed as exc:
        return Verdict(False, tuple(sorted({e.path for e in exc.errors})))
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed
        return Verdict(False, (), note=f"raised {type(exc).__name__}: {exc}")
    return Verdict(True)


@dataclass
class FormUnderTest:
    """One form of one facility as SkyPortal's UI receives it, and the package's judge for it."""

    facility: str
    form: str  # one of FORMS
    title: str
    request_type: str | None  # "forced_photometry" or "triggered" for request forms
    schema: dict[str, Any]
    ui_schema: dict[str, Any]
    judge: Callable[[Any], Verdict]
    #: Properties the host adds to the form (SkyPortal's ``request_type``): not probed.
    ignore: tuple[str, ...] = ()

    def job(self) -> dict[str, Any]:
        """What ``browser/check.mjs`` needs to render and submit this form."""
        instances = [{"id": i.id, "data": i.data} for i in form_instances(self.schema, ignore=self.ignore)]
        return {
            "facility": self.facility,
            "form": self.form,
            "title": self.title,
            "requestType": self.request_type,
            "schema": self.schema,
            "uiSchema": self.ui_schema,
            "instances": instances,
        }


def collect_forms(registry: Registry | None = None, names: Iterable[str] | None = None) -> list[FormUnderTest]:
    """The request and altdata forms of every facility in ``registry`` (or only ``names``;
    ``UnknownFacility`` for a name it lacks), from the SkyPortal class's
    ``frontend_render_info(instrument=None, user=None)``."""
    from ...skyportal import api_classes
    from ...skyportal.snapshot import REQUEST_TYPE_MARKERS, SKYPORTAL_PAYLOAD_KEYS, facility_payload

    registry = registry or default_registry()
    wanted = {registry.get(name).name for name in names} if names else None
    # A class may run two facilities (ZTFAPI: triggering and forced photometry), each with its form.
    skyportal = {member.name: cls for cls in api_classes(registry).values() for member in cls.facilities}
    forms = []
    for core in registry.all():
        if wanted is not None and core.name not in wanted:
            continue
        cls = skyportal[core.name]
        info = cls.frontend_render_info(instrument=None, user=None)
        facility = cls.facility(core)
        members = [cls.facility(member) for member in cls.facilities]

        def judge_request(payload: Any, facility=facility) -> Verdict:
            if isinstance(payload, Mapping):  # SkyPortal's own markers never reach the facility
                payload = facility_payload(payload)
            return verdict_of(lambda: facility.validate_payload(payload))

        def judge_altdata(altdata: Any, members=members) -> Verdict:
            # The class's rule (SkyPortal's validate_altdata): altdata any of its facilities accepts.
            return verdict_of(lambda: _accepted_by_one(members, altdata))

        forced = core.kind is Kind.FORCED_PHOTOMETRY
        request = info.get("formSchemaForcedPhotometry") if forced else info.get("formSchema")
        if request is not None:
            request_type = "forced_photometry" if forced else "triggered"
            ui = info.get("uiSchema") or {}
            # SkyPortal's marker is not probed; a facility's own field of that name (Swift's) is.
            own = {key for key, spec in (request.get("properties") or {}).items() if set((spec or {}).get("enum") or ()) - set(REQUEST_TYPE_MARKERS)}
            markers = tuple(key for key in SKYPORTAL_PAYLOAD_KEYS if key not in own)
            forms.append(FormUnderTest(core.name, "request", core.title, request_type, request, ui, judge_request, markers))
        if info.get("formSchemaAltdata") is not None:
            forms.append(FormUnderTest(core.name, "altdata", core.title, None, info["formSchemaAltdata"], {}, judge_altdata))
    return forms


def _accepted_by_one(facilities: list[Any], altdata: Any) -> None:
    """Nothing when one of ``facilities`` accepts ``altdata``; else the first one's refusal."""
    refusals = []
    for facility in facilities:
        try:
            facility.validate_altdata(altdata)
            return
        except ValidationFailed as exc:
            refusals.append(exc)
    raise refusals[0]


def expected_screenshots(name: str, registry: Registry | None = None) -> tuple[str, ...]:
    """The screenshots facility ``name``'s forms give (``<name>-<shot>.png``): all three for a
    facility with a request form; ``allocation`` only for one SkyPortal shows no request form of
    (an observation-plan facility: the plan form is the generating class's)."""
    forms = {form.form for form in collect_forms(registry, [name])}
    return tuple(shot for kind in FORMS if kind in forms for shot in FORM_SCREENSHOTS[kind])
