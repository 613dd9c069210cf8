"""SkyPortal-compatible facility classes, a listener for the gateway's status messages, and the
seams that connect them to a SkyPortal deployment.

``from facility_apis.skyportal import ATLASAPI, FacilityMessageListener`` gives classes SkyPortal
calls as its own (``await ATLASAPI.submit(request, session, **kwargs)``). The API classes are made
on first use from the facility registry (each facility names its class: ``skyportal_class``). Nothing here imports
``skyportal``: its models are imported inside the calls that need them (``models.py``).
See docs/skyportal.md.
"""

from __future__ import annotations

from typing import Any

from .adapter import SKYPORTAL_METHODS, SkyPortalFacility, make_api_class
from .classes import LISTENER_CLASSES, api_class, api_classes, bind, class_names
from .gateway_client import GatewayClient, GatewayError
from .listener import FacilityMessageListener, SEDMListener
from .models import SkyPortalModels, get_models, set_models, use_models
from .settings import Settings, configure, current_settings, load_settings, reset

__all__ = [
    "ATLASAPI",
    "LISTENER_CLASSES",
    "SKYPORTAL_METHODS",
    "FacilityMessageListener",
    "GatewayClient",
    "GatewayError",
    "SEDMListener",
    "Settings",
    "SkyPortalFacility",
    "SkyPortalModels",
    "api_class",
    "api_classes",
    "bind",
    "class_names",
    "configure",
    "current_settings",
    "get_models",
    "load_settings",
    "make_api_class",
    "reset",
    "set_models",
    "use_models",
]


def __getattr__(name: str) -> Any:
    """``ATLASAPI`` and every other SkyPortal class, made on first use."""
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return api_class(name)
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *class_names()})
