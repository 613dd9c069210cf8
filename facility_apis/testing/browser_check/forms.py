"""The Python side: each facility's forms as the SkyPortal adapter hands them to SkyPortal's UI,
and the package's verdict on data submitted through them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...core.errors import ValidationFailed
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
    from ...skyportal.snapshot import SKYPORTAL_PAYLOAD_KEYS

    registry = registry or default_registry()
    wanted = {registry.get(name).name for name in names} if names else None
    skyportal = {cls.facility_class.name: cls for cls in api_classes(registry).values()}
    forms = []
    for core in registry.all():
        if wanted is not None and core.name not in wanted:
            continue
        cls = skyportal[core.name]
        info = cls.frontend_render_info(instrument=None, user=None)
        facility = cls.facility()

        def judge_request(payload: Any, facility=facility) -> Verdict:
            if isinstance(payload, Mapping):  # SkyPortal's own markers never reach the facility
                payload = {k: v for k, v in payload.items() if k not in SKYPORTAL_PAYLOAD_KEYS}
            return verdict_of(lambda: facility.validate_payload(payload))

        def judge_altdata(altdata: Any, facility=facility) -> Verdict:
            return verdict_of(lambda: facility.validate_altdata(altdata))

        forced = info.get("formSchemaForcedPhotometry")
        request = forced if forced is not None else info.get("formSchema")
        if request is not None:
            request_type = "forced_photometry" if forced is not None else "triggered"
            ui = info.get("uiSchema") or {}
            forms.append(FormUnderTest(core.name, "request", core.title, request_type, request, ui, judge_request, tuple(SKYPORTAL_PAYLOAD_KEYS)))
        if info.get("formSchemaAltdata") is not None:
            forms.append(FormUnderTest(core.name, "altdata", core.title, None, info["formSchemaAltdata"], {}, judge_altdata))
    return forms


def expected_screenshots(name: str, registry: Registry | None = None) -> tuple[str, ...]:
    """The screenshots facility ``name``'s forms give (``<name>-<shot>.png``): all three for a
    facility with a request form; ``allocation`` only for one SkyPortal shows no request form of
    (an observation-plan facility: the plan form is the generating class's)."""
    forms = {form.form for form in collect_forms(registry, [name])}
    return tuple(shot for kind in FORMS if kind in forms for shot in FORM_SCREENSHOTS[kind])
