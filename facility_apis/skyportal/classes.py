"""Which SkyPortal class runs which facility, and binding them to SkyPortal's base classes.

``SKYPORTAL_CLASSES`` maps SkyPortal's class name (its ``followup_apis`` enum value) to a
registry facility name: adding a facility is one line here. A registered facility not listed
gets ``<NAME>API`` (its name upper-cased, underscores dropped).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

from ..core.errors import DuplicateFacility
from ..core.registry import Registry, default_registry
from .adapter import SkyPortalFacility, make_api_class
from .listener import FacilityMessageListener

SKYPORTAL_CLASSES: dict[str, str] = {
    "ATLASAPI": "atlas",
}

LISTENER_CLASSES: dict[str, type] = {"FacilityMessageListener": FacilityMessageListener}


def class_names(registry: Registry | None = None) -> dict[str, str]:
    """SkyPortal class name → facility name, for every facility in ``registry`` (no import)."""
    registry = registry or default_registry()
    names = {name: facility for name, facility in SKYPORTAL_CLASSES.items() if facility in registry}
    mapped = set(names.values())
    for facility in registry.names():
        if facility not in mapped:
            derived = facility.upper().replace("_", "") + "API"
            if derived in names:
                raise DuplicateFacility(f"facility {facility!r} would be SkyPortal's {derived}, already taken by {names[derived]!r}")
            names[derived] = facility
    return names


@functools.cache
def _default_class(class_name: str) -> type[SkyPortalFacility]:
    return make_api_class(class_name, default_registry().get(class_names()[class_name]), module=__package__)


def api_class(class_name: str, registry: Registry | None = None) -> type[SkyPortalFacility]:
    """The SkyPortal class ``class_name`` (e.g. ``ATLASAPI``); ``KeyError`` if no facility has it."""
    if registry is None:
        if class_name not in class_names():
            raise KeyError(class_name)
        return _default_class(class_name)
    return make_api_class(class_name, registry.get(class_names(registry)[class_name]), module=__package__)


def api_classes(registry: Registry | None = None) -> dict[str, type[SkyPortalFacility]]:
    """Every SkyPortal class, by name, in registry order."""
    return {name: api_class(name, registry) for name in class_names(registry)}


def bind(api_base: type, listener_base: type, registry: Registry | None = None) -> SimpleNamespace:
    """The classes again, as subclasses of SkyPortal's own ``FollowUpAPI`` and ``Listener``
    (pass them in: this package never imports SkyPortal). Any SkyPortal version then accepts them,
    whether it finds its facilities by name or by ``issubclass``."""
    bound: dict[str, Any] = {}
    pairs = [(cls, api_base) for cls in api_classes(registry).values()]
    pairs += [(cls, listener_base) for cls in LISTENER_CLASSES.values()]
    for cls, base in pairs:
        meta = type(cls)
        if not issubclass(meta, type(base)):
            meta = type(f"Bound{meta.__name__}", (meta, type(base)), {})
        bound[cls.__name__] = meta(cls.__name__, (cls, base), {"__module__": cls.__module__, "__doc__": cls.__doc__})
    return SimpleNamespace(**bound)

