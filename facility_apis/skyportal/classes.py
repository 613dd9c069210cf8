"""Which SkyPortal class runs which facility, and binding them to SkyPortal's base classes.

Each facility declares the SkyPortal class it is known by (``Facility.skyportal_class``, the
instrument's ``api_classname`` in SkyPortal's database). Two facilities may share a class when one
is an observation and the other forced photometry: SkyPortal's ZTFAPI offers both forms, and the
request's ``request_type`` says which one a request is.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from ..core.errors import DuplicateFacility
from ..core.interface import Facility, Kind
from ..core.redact import get_logger
from ..core.registry import Registry, default_registry
from .adapter import SkyPortalFacility, make_api_class
from .listener import FacilityMessageListener, SEDMListener

log = get_logger(__name__)

LISTENER_CLASSES: dict[str, type] = {
    "FacilityMessageListener": FacilityMessageListener,
    "SEDMListener": SEDMListener,
}


def _facilities(registry: Registry) -> list[type[Facility]]:
    """Every facility that imports; one that does not is logged and left out, so that one broken
    facility never takes SkyPortal's other facilities down with it."""
    found = []
    for name in registry.names():
        try:
            found.append(registry.get(name))
        except Exception as exc:  # noqa: BLE001 - any import failure of a plug-in
            log.error("facility %r cannot be loaded and is left out of SkyPortal: %s: %s", name, type(exc).__name__, exc)
    return found


def grouped(registry: Registry | None = None, *, strict: bool = True) -> dict[str, tuple[type[Facility], ...]]:
    """SkyPortal class name → its facilities (one, or an observation and a forced-photometry
    facility), in registry order. A name claimed otherwise: ``DuplicateFacility`` when ``strict``;
    else the first claims (built-ins come first) keep the class, the others are logged and left
    out, so that a plug-in's mistake never stops SkyPortal."""
    groups: dict[str, list[type[Facility]]] = {}
    for cls in _facilities(registry or default_registry()):
        members = groups.setdefault(cls.skyportal_class, [])
        kinds = [member.kind for member in (*members, cls)]
        if len(kinds) > 2 or (len(kinds) == 2 and sorted(kinds) != sorted([Kind.OBSERVATION, Kind.FORCED_PHOTOMETRY])):
            names = ", ".join(member.name for member in (*members, cls))
            message = f"SkyPortal class {cls.skyportal_class} is claimed by {names}: only an observation and a forced-photometry facility may share one"
            if strict:
                raise DuplicateFacility(message)
            log.error("%s; %s is left out of SkyPortal", message, cls.name)
            continue
        members.append(cls)
    return {name: tuple(members) for name, members in groups.items()}


def class_names(registry: Registry | None = None) -> dict[str, tuple[str, ...]]:
    """SkyPortal class name → the names of the facilities it runs."""
    return {name: tuple(cls.name for cls in members) for name, members in grouped(registry).items()}


@functools.cache
def _default_classes() -> dict[str, type[SkyPortalFacility]]:
    return {name: make_api_class(name, *members, module=__package__) for name, members in grouped(strict=False).items()}


def api_classes(registry: Registry | None = None) -> dict[str, type[SkyPortalFacility]]:
    """Every SkyPortal class, by name, in registry order. Never raises for a conflicting claim (see
    :func:`grouped`): SkyPortal imports these at start-up."""
    if registry is None:
        return dict(_default_classes())
    return {name: make_api_class(name, *members, module=__package__) for name, members in grouped(registry, strict=False).items()}


def api_class(class_name: str, registry: Registry | None = None) -> type[SkyPortalFacility]:
    """The SkyPortal class ``class_name`` (e.g. ``ATLASAPI``); ``KeyError`` if no facility has it."""
    return api_classes(registry)[class_name]


def bind(api_base: type, listener_base: type, registry: Registry | None = None, *, bases: Mapping[str, type] | None = None) -> SimpleNamespace:
    """The classes again, as subclasses of SkyPortal's own ``FollowUpAPI`` and ``Listener``
    (pass them in: this package never imports SkyPortal). Any SkyPortal version then accepts them,
    whether it finds its facilities by name or by ``issubclass``.

    ``bases`` builds the classes it names on another of SkyPortal's classes instead of
    ``api_base``: an observation-plan class on SkyPortal's class that makes the plans
    (``{"MMAAPI": skyportal.facility_apis.observation_plan.MMAAPI}``), so that making plans, and its
    form, stay SkyPortal's while this package delivers them. ``ValueError`` for a name no class
    has."""
    classes = api_classes(registry)
    unknown = sorted(set(bases or {}) - set(classes))
    if unknown:
        raise ValueError(f"bind: no class named {', '.join(unknown)}; known: {', '.join(classes)}")
    bound: dict[str, Any] = {}
    pairs = [(cls, (bases or {}).get(name, api_base)) for name, cls in classes.items()]
    pairs += [(cls, listener_base) for cls in LISTENER_CLASSES.values()]
    for cls, base in pairs:
        meta = type(cls)
        if not issubclass(meta, type(base)):
            meta = type(f"Bound{meta.__name__}", (meta, type(base)), {})
        bound[cls.__name__] = meta(cls.__name__, (cls, base), {"__module__": cls.__module__, "__doc__": cls.__doc__})
    return SimpleNamespace(**bound)
