"""Deployment settings of the SkyPortal classes: facility configuration and the gateway.

An explicit seam, never read at import time. Either call :func:`configure` (tests, scripts,
SkyPortal's own start-up), or let the first use load the settings from SkyPortal's configuration
(``baselayer``'s ``load_env()``, when it is importable) and the environment::

    facility_apis:
      facilities:
        atlas: {base_url: "https://fallingstar-data.com/forcedphot", poll_interval: 30}
      gateway:
        url: "https://gateway.example.org"
        token: "<the gateway's API token>"
        facilities: [atlas]          # optional: which facilities hand off (default: all)
      egress:
        allow: []                    # origins or networks facilities may reach besides the
                                     # public internet (see facility_apis.core.egress)

``FACILITY_APIS_GATEWAY_URL`` and ``FACILITY_APIS_GATEWAY_TOKEN`` override the gateway keys. For
ATLAS, SkyPortal's own ``app.atlas.{protocol,host,port}`` keys are honoured when
``facility_apis.facilities.atlas.base_url`` is not set.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..core.egress import INTERNAL, EgressPolicy
from ..core.errors import ConfigurationError

ENV_GATEWAY_URL = "FACILITY_APIS_GATEWAY_URL"
ENV_GATEWAY_TOKEN = "FACILITY_APIS_GATEWAY_TOKEN"


@dataclass(frozen=True)
class Settings:
    """What the SkyPortal classes need from the deployment.

    ``facilities`` maps a facility name to its deployment configuration (the ``config`` of the
    core facility class). With ``gateway_url`` and ``gateway_token``, submissions of the facilities
    in ``gateway_facilities`` (all when ``None``) are handed off to the gateway. ``egress`` is
    where facilities may call besides the public internet (default: nowhere else).
    """

    facilities: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    gateway_url: str | None = None
    gateway_token: str | None = field(default=None, repr=False)
    gateway_facilities: frozenset[str] | None = None
    egress: EgressPolicy = field(default_factory=EgressPolicy)

    def __post_init__(self) -> None:
        frozen = {name: MappingProxyType(dict(config or {})) for name, config in dict(self.facilities or {}).items()}
        object.__setattr__(self, "facilities", MappingProxyType(frozen))
        if self.gateway_facilities is not None:
            object.__setattr__(self, "gateway_facilities", frozenset(self.gateway_facilities))
        if bool(self.gateway_url) != bool(self.gateway_token):
            raise ConfigurationError("the gateway needs both a URL and a token")
        if self.gateway_url:
            reason = INTERNAL.refusal(self.gateway_url, secret=True)
            if reason is not None:
                raise ConfigurationError(f"the gateway URL is refused: {reason}")
            object.__setattr__(self, "gateway_url", self.gateway_url.rstrip("/"))

    def facility_config(self, name: str) -> dict[str, Any]:
        """The deployment configuration of facility ``name`` (a fresh dict)."""
        return dict(self.facilities.get(name, {}))

    def hands_off(self, name: str) -> bool:
        """Whether submissions to facility ``name`` go to the gateway."""
        return bool(self.gateway_url) and (self.gateway_facilities is None or name in self.gateway_facilities)


_lock = threading.Lock()
_current: Settings | None = None


def configure(
    *,
    facilities: Mapping[str, Mapping[str, Any]] | None = None,
    gateway_url: str | None = None,
    gateway_token: str | None = None,
    gateway_facilities: Iterable[str] | None = None,
    egress: EgressPolicy | None = None,
) -> Settings:
    """Replace the settings (every argument left out takes its default) and return them."""
    global _current
    settings = Settings(
        facilities=facilities or {},
        gateway_url=gateway_url or None,
        gateway_token=gateway_token or None,
        gateway_facilities=frozenset(gateway_facilities) if gateway_facilities is not None else None,
        egress=egress or EgressPolicy(),
    )
    with _lock:
        _current = settings
    return settings


def reset() -> None:
    """Forget the settings: the next use loads them again from SkyPortal's config and the environment."""
    global _current
    with _lock:
        _current = None


def current_settings() -> Settings:
    """The settings in force, loaded on first use when :func:`configure` was never called."""
    global _current
    with _lock:
        if _current is None:
            _current = load_settings()
        return _current


def _lookup(config: Any, dotted: str) -> Any:
    node = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _skyportal_config() -> Any:
    """SkyPortal's configuration, or ``None`` outside a SkyPortal deployment."""
    try:
        from baselayer.app.env import load_env
    except ImportError:
        return None
    return load_env()[1]


def _legacy_atlas_url(config: Any) -> str | None:
    """SkyPortal's own ATLAS setting (``app.atlas.protocol/host/port``) as a base URL."""
    host = _lookup(config, "app.atlas.host")
    if not host:
        return None
    protocol = _lookup(config, "app.atlas.protocol") or "https"
    port = _lookup(config, "app.atlas.port")
    return f"{protocol}://{host}{f':{port}' if port else ''}/forcedphot"


def load_settings(config: Any = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from a SkyPortal-style configuration mapping (SkyPortal's own by default) and the
    environment (``os.environ`` by default)."""
    config = _skyportal_config() if config is None else config
    environ = os.environ if environ is None else environ
    facilities = {name: dict(value) for name, value in (_lookup(config, "facility_apis.facilities") or {}).items()}
    legacy = _legacy_atlas_url(config)
    if legacy and not facilities.get("atlas", {}).get("base_url"):
        facilities.setdefault("atlas", {})["base_url"] = legacy
    chosen = _lookup(config, "facility_apis.gateway.facilities")
    try:
        egress = EgressPolicy(tuple(_lookup(config, "facility_apis.egress.allow") or ()))
    except ValueError as exc:
        raise ConfigurationError(f"facility_apis.egress.allow: {exc}") from None
    return Settings(
        facilities=facilities,
        gateway_url=environ.get(ENV_GATEWAY_URL) or _lookup(config, "facility_apis.gateway.url") or None,
        gateway_token=environ.get(ENV_GATEWAY_TOKEN) or _lookup(config, "facility_apis.gateway.token") or None,
        gateway_facilities=frozenset(chosen) if chosen is not None else None,
        egress=egress,
    )
