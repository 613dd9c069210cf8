"""Which facilities exist: built-ins by lazy dotted path, others through the entry-point group
``skyportal.facility_apis`` (entry name = facility name, value = ``module:Class``).

Nothing is imported until a facility is asked for by name. Two facilities claiming one name is an
error, never a silent override: SkyPortal keys a database enum on these names.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from .errors import DuplicateFacility, UnknownFacility

if TYPE_CHECKING:
    from .interface import Facility

ENTRY_POINT_GROUP = "skyportal.facility_apis"

BUILTINS: dict[str, str] = {
    "atlas": "facility_apis.facilities.atlas:ATLASFacility",
    "lt_ioo": "facility_apis.facilities.lt:IOOFacility",
    "lt_ioi": "facility_apis.facilities.lt:IOIFacility",
    "lt_sprat": "facility_apis.facilities.lt:SPRATFacility",
    "bhtom": "facility_apis.facilities.bhtom:BHTOMFacility",
    "generic": "facility_apis.facilities.notification.generic:GenericFacility",
    "slack": "facility_apis.facilities.notification.slack:SlackFacility",
    "ztf_fp": "facility_apis.facilities.ztf_fp:ZTFForcedPhotometryFacility",
    "fink_fp": "facility_apis.facilities.fink_fp:FinkForcedPhotometryFacility",
    "lco_sinistro": "facility_apis.facilities.observation_portal.lco:SinistroFacility",
    "lco_spectral": "facility_apis.facilities.observation_portal.lco:SpectralFacility",
    "lco_muscat": "facility_apis.facilities.observation_portal.lco:MuscatFacility",
    "lco_floyds": "facility_apis.facilities.observation_portal.lco:FloydsFacility",
    "soar_goodman_imager": "facility_apis.facilities.observation_portal.soar:GoodmanImagerFacility",
    "soar_goodman_spectrograph": "facility_apis.facilities.observation_portal.soar:GoodmanSpectrographFacility",
    "soar_triplespec": "facility_apis.facilities.observation_portal.soar:TripleSpecFacility",
    "ztf_trigger": "facility_apis.facilities.ztf_trigger:ZTFTriggerFacility",
    "kait": "facility_apis.facilities.kait:KAITFacility",
    "winter": "facility_apis.facilities.winter:WINTERFacility",
    "spring": "facility_apis.facilities.winter:SPRINGFacility",
    "gemini": "facility_apis.facilities.gemini:GeminiFacility",
    "sedm": "facility_apis.facilities.sedm:SEDMFacility",
    "swift": "facility_apis.facilities.swift:SwiftFacility",
    "nicer": "facility_apis.facilities.nicer:NICERFacility",
    "mma": "facility_apis.facilities.mma:MMAFacility",
}


def _import(path: str) -> type[Facility]:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


class Registry:
    """Maps facility names to classes, importing each on first use."""

    def __init__(self, builtins: dict[str, str] | None = None, *, group: str | None = ENTRY_POINT_GROUP):
        self._paths: dict[str, str] = dict(BUILTINS if builtins is None else builtins)
        self._origins: dict[str, str] = dict.fromkeys(self._paths, "facility_apis")
        self._classes: dict[str, type[Facility]] = {}
        if group:
            for entry in entry_points(group=group):
                origin = entry.dist.name if entry.dist else entry.value
                self._add(entry.name, entry.value, origin)

    def _add(self, name: str, path: str, origin: str) -> None:
        if name in self._paths:
            raise DuplicateFacility(
                f"facility name {name!r} is claimed by both {self._origins[name]} ({self._paths[name]}) "
                f"and {origin} ({path})"
            )
        self._paths[name] = path
        self._origins[name] = origin

    def register(self, name: str, target: str | type[Facility]) -> None:
        """Add a facility by dotted path (``"pkg.module:Class"``) or by class."""
        if isinstance(target, str):
            self._add(name, target, target)
        else:
            self._add(name, f"{target.__module__}:{target.__qualname__}", target.__module__)
            self._classes[name] = target

    def names(self) -> list[str]:
        """Built-ins first in their fixed order, then the others sorted (a stable order)."""
        builtins = [name for name in self._paths if name in BUILTINS]
        others = sorted(name for name in self._paths if name not in BUILTINS)
        return builtins + others

    def __contains__(self, name: object) -> bool:
        return name in self._paths

    def get(self, name: str) -> type[Facility]:
        """The class registered under ``name``; ``UnknownFacility`` lists what exists."""
        if name not in self._paths:
            raise UnknownFacility(f"no facility named {name!r}; known facilities: {', '.join(self.names())}")
        if name not in self._classes:
            cls = _import(self._paths[name])
            if getattr(cls, "name", None) != name:
                raise DuplicateFacility(f"{self._paths[name]} declares name {getattr(cls, 'name', None)!r}, registered as {name!r}")
            self._classes[name] = cls
        return self._classes[name]

    def all(self) -> list[type[Facility]]:
        return [self.get(name) for name in self.names()]


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry (built-ins plus installed entry points), made on first use."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def get_facility(name: str) -> type[Facility]:
    return default_registry().get(name)
