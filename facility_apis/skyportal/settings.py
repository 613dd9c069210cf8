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

SkyPortal reads the classes' forms while it imports its handlers, at start-up, so the settings
loaded on first use never raise: a part that cannot be used (the gateway, the egress allowances,
SkyPortal's configuration itself) is left out, logged once, and kept in ``Settings.problems`` for
the operations it concerns to report in their status. ``load_settings`` and ``configure``, called
explicitly, raise ``ConfigurationError`` instead.
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
from ..core.redact import get_logger
from .guard import forget_logged

log = get_logger(__name__)

ENV_GATEWAY_URL = "FACILITY_APIS_GATEWAY_URL"
ENV_GATEWAY_TOKEN = "FACILITY_APIS_GATEWAY_TOKEN"


@dataclass(frozen=True)
class Settings:
    """What the SkyPortal classes need from the deployment.

    ``facilities`` maps a facility name to its deployment configuration (the ``config`` of the
    core facility class). With ``gateway_url`` and ``gateway_token``, submissions of the facilities
    in ``gateway_facilities`` (all when ``None``) are handed off to the gateway. ``egress`` is
    where facilities may call besides the public internet (default: nowhere else). ``problems``
    holds, by part (``gateway``, ``egress``, ``config``), why a configured part was left out.
    """

    facilities: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    gateway_url: str | None = None
    gateway_token: str | None = field(default=None, repr=False)
    gateway_facilities: frozenset[str] | None = None
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    problems: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "problems", MappingProxyType(dict(self.problems or {})))
        frozen = {name: MappingProxyType(dict(config or {})) for name, config in dict(self.facilities or {}).items()}
        object.__setattr__(self, "facilities", MappingProxyType(frozen))
        if self.gateway_facilities is not None:
            object.__setattr__(self, "gateway_facilities", frozenset(self.gateway_facilities))
        check_gateway(self.gateway_url, self.gateway_token)
        if self.gateway_url:
            object.__setattr__(self, "gateway_url", self.gateway_url.rstrip("/"))

    def facility_config(self, name: str) -> dict[str, Any]:
        """The deployment configuration of facility ``name`` (a fresh dict)."""
        return dict(self.facilities.get(name, {}))

    def hands_off(self, name: str) -> bool:
        """Whether submissions to facility ``name`` go to the gateway."""
        return bool(self.gateway_url) and self._chosen(name)

    def _chosen(self, name: str) -> bool:
        return self.gateway_facilities is None or name in self.gateway_facilities

    def problem_for(self, name: str) -> str | None:
        """Why facility ``name`` cannot run as configured, or ``None``: SkyPortal's configuration
        did not load, or the egress allowances (every facility) or the gateway (the facilities it
        was meant to take) are unusable."""
        for part in ("config", "egress"):
            if part in self.problems:
                return self.problems[part]
        if "gateway" in self.problems and self._chosen(name):
            return self.problems["gateway"]
        return None


def check_gateway(url: str | None, token: str | None) -> None:
    """``ConfigurationError`` unless the gateway is either unset or a usable URL with a token."""
    if bool(url) != bool(token):
        raise ConfigurationError("the gateway needs both a URL and a token")
    if url:
        reason = INTERNAL.refusal(url, secret=True)
        if reason is not None:
            raise ConfigurationError(f"the gateway URL is refused: {reason}")


_lock = threading.Lock()
_current: Settings | None = None


def configure(
    *,
    facilities: Mapping[str, Mapping[str, Any]] | None = None,
    gateway_url: str | None = None,
    gateway_token: str | None = None,
    gateway_facilities: Iterable[str] | None = None,
    egress: EgressPolicy | Mapping[str, Any] | None = None,
) -> Settings:
    """Replace the settings (every argument left out takes its default) and return them.
    ``egress`` is an ``EgressPolicy`` or, as in SkyPortal's config.yaml, ``{"allow": [...]}``;
    raises ``ConfigurationError`` naming ``egress.allow`` on an entry it cannot use."""
    global _current
    if isinstance(egress, Mapping):
        try:
            egress = EgressPolicy(tuple(egress.get("allow") or ()))
        except ValueError as exc:
            raise ConfigurationError(f"egress.allow: {exc}") from None
    elif egress is not None and not isinstance(egress, EgressPolicy):
        raise ConfigurationError(f"egress must be an EgressPolicy or {{'allow': [...]}}, not {type(egress).__name__}")
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
    """Forget the settings: the next use loads them again from SkyPortal's config and the
    environment (and logs their problems again)."""
    global _current
    with _lock:
        _current = None
    forget_logged()


def current_settings() -> Settings:
    """The settings in force, loaded on first use when :func:`configure` was never called. Never
    raises (see the module docstring): each unusable part is logged once, here."""
    global _current
    with _lock:
        if _current is None:
            _current = load_settings(strict=False)
            for problem in _current.problems.values():
                log.error("facility_apis settings in SkyPortal's configuration: %s; the facilities it concerns report it when used", problem)
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


def load_settings(config: Any = None, environ: Mapping[str, str] | None = None, *, strict: bool = True) -> Settings:
    """Settings from a SkyPortal-style configuration mapping (SkyPortal's own by default) and the
    environment (``os.environ`` by default). ``strict``: raise ``ConfigurationError`` for an
    unusable part; otherwise leave it out and name it in ``Settings.problems``."""
    problems: dict[str, str] = {}

    def unusable(part: str, message: str) -> None:
        if strict:
            raise ConfigurationError(message)
        problems[part] = message

    environ = os.environ if environ is None else environ
    if config is None:
        try:
            config = _skyportal_config()
        except Exception as exc:  # noqa: BLE001 - whatever SkyPortal's loader raises, SkyPortal must start
            unusable("config", f"SkyPortal's configuration could not be read: {type(exc).__name__}: {exc}")
    facilities: dict[str, dict[str, Any]] = {}
    try:
        facilities = {str(name): dict(value or {}) for name, value in (_lookup(config, "facility_apis.facilities") or {}).items()}
    except (AttributeError, TypeError, ValueError):
        unusable("config", "facility_apis.facilities: must map facility names to their settings")
    legacy = _legacy_atlas_url(config)
    if legacy and not facilities.get("atlas", {}).get("base_url"):
        facilities.setdefault("atlas", {})["base_url"] = legacy
    try:
        egress = EgressPolicy(tuple(_lookup(config, "facility_apis.egress.allow") or ()))
    except (TypeError, ValueError) as exc:
        unusable("egress", f"facility_apis.egress.allow: {exc}")
        egress = EgressPolicy()
    chosen = _lookup(config, "facility_apis.gateway.facilities")
    gateway_url = environ.get(ENV_GATEWAY_URL) or _lookup(config, "facility_apis.gateway.url") or None
    gateway_token = environ.get(ENV_GATEWAY_TOKEN) or _lookup(config, "facility_apis.gateway.token") or None
    try:
        check_gateway(gateway_url, gateway_token)
    except ConfigurationError as exc:
        unusable("gateway", f"facility_apis.gateway: {exc}")
        gateway_url = gateway_token = None
    return Settings(
        facilities=facilities,
        gateway_url=gateway_url,
        gateway_token=gateway_token,
        gateway_facilities=frozenset([chosen] if isinstance(chosen, str) else chosen) if isinstance(chosen, (str, list, tuple)) else None,
        egress=egress,
        problems=problems,
    )
