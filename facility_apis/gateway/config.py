"""The gateway's settings: a JSON file checked against ``schemas/gateway/config.json``, the
command line, and two environment variables for the secrets."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.egress import INTERNAL, EgressPolicy, is_loopback
from ..core.errors import ConfigurationError
from ..core.schemas import field_errors, load_schema
from .crypto import KEY_ENV, parse_key
from .pacing import RATE_KEYS, FacilityLimit, Rate
from .policy import Schedule
from .worker import WorkerSettings

SKYPORTAL_TOKEN_ENV = "FACILITY_APIS_SKYPORTAL_TOKEN"
#: Keys of a facility's config section that belong to the worker, not to the facility.
PACING_KEYS = ("concurrency", "min_interval", "per_account", *RATE_KEYS)


def _limit(name: str, section: Mapping[str, Any], path: Path | str) -> FacilityLimit:
    """The allowance a facility's section sets (``read_rate``/``write_rate`` over the documented ones)."""
    rates = {}
    for key, scope in RATE_KEYS.items():
        if key in section:
            try:
                rates[scope] = None if section[key] is None else Rate.parse(section[key])
            except ValueError as exc:
                raise ConfigurationError(f"the configuration file {path}: facilities.{name}.{key}: {exc}") from None
    return FacilityLimit(int(section.get("concurrency", 8)), float(section.get("min_interval", 0.0)), bool(section.get("per_account", False)), rates)


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/facility-apis`` (``~/.local/share/facility-apis`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "facility-apis"


def _read_secret_file(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} file {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class GatewayConfig:
    """Everything ``serve``, ``worker`` and ``demo`` need; secrets never show in its repr."""

    database_url: str = field(repr=False)  # may hold a password
    secret_key: str = field(repr=False)
    skyportal_url: str | None = None
    skyportal_token: str | None = field(default=None, repr=False)
    public_url: str | None = None
    address: str = "127.0.0.1"
    port: int = 8642
    facilities: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    schedule: Schedule = field(default_factory=Schedule)

    def facility_config(self) -> dict[str, dict[str, Any]]:
        """Per facility, the settings handed to the facility class (pacing keys removed)."""
        return {name: {k: v for k, v in section.items() if k not in PACING_KEYS} for name, section in self.facilities.items()}

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        database_url: str | None = None,
        data_dir: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> GatewayConfig:
        """Read ``path`` (optional), apply command-line values, and find the secrets.

        Refuses to load without an encryption key: altdata is never stored in clear.
        """
        environ = os.environ if environ is None else environ
        document: dict[str, Any] = {}
        if path is not None:
            try:
                document = json.loads(Path(path).read_text(encoding="utf-8"))
            except OSError as exc:
                raise ConfigurationError(f"cannot read the configuration file {path}: {exc.strerror}") from None
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"the configuration file {path} is not JSON: {exc.msg} (line {exc.lineno})") from None
            errors = field_errors(load_schema("gateway/config"), document)
            if errors:
                raise ConfigurationError(f"the configuration file {path} is invalid: " + "; ".join(map(str, errors)))
        data_dir = Path(data_dir or document.get("data_dir") or default_data_dir())
        url = database_url or document.get("database_url") or f"sqlite:///{data_dir / 'gateway.db'}"
        if url.startswith("sqlite:///"):
            folder = Path(url.removeprefix("sqlite:///")).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(f"cannot create the data directory {folder}: {exc.strerror}") from None

        key = environ.get(KEY_ENV) or (_read_secret_file(Path(document["secret_key_file"]), "secret key") if "secret_key_file" in document else None)
        if not key:
            raise ConfigurationError(
                f"no encryption key for allocation credentials: set {KEY_ENV} or secret_key_file (make a key with `facility-apis keygen`)"
            )
        parse_key(key)

        skyportal = document.get("skyportal") or {}
        token = environ.get(SKYPORTAL_TOKEN_ENV) or (_read_secret_file(Path(skyportal["token_file"]), "SkyPortal token") if "token_file" in skyportal else None)
        if skyportal and not token:
            raise ConfigurationError(f"skyportal.url is set but no token: set {SKYPORTAL_TOKEN_ENV} or skyportal.token_file")
        if skyportal.get("url"):
            # The token goes with every delivery: a URL it may not travel to would leave every
            # status undelivered, so the gateway does not start with one.
            refused = INTERNAL.refusal(str(skyportal["url"]), secret=True)
            if refused:
                raise ConfigurationError(f"the configuration file {path}: skyportal.url: {refused}")

        worker = document.get("worker") or {}
        facilities = document.get("facilities") or {}
        limits = {
            name: _limit(name, section, path)
            for name, section in facilities.items()
            if any(key in section for key in PACING_KEYS)
        }
        try:
            egress = EgressPolicy(tuple((document.get("egress") or {}).get("allow") or ()))
        except ValueError as exc:
            raise ConfigurationError(f"the configuration file {path}: egress.allow: {exc}") from None
        listen = document.get("listen") or {}
        values: dict[str, Any] = {
            "database_url": url,
            "secret_key": key,
            "skyportal_url": skyportal.get("url"),
            "skyportal_token": token,
            "public_url": document.get("public_url"),
            "address": listen.get("address", "127.0.0.1"),
            "port": int(listen.get("port", 8642)),
            "facilities": facilities,
            "worker": WorkerSettings(
                concurrency=int(worker.get("concurrency", 32)), limits=limits, lease=float(worker.get("lease_seconds", 300)), egress=egress
            ),
            "schedule": Schedule(
                default_poll=float(worker.get("default_poll_seconds", 60)),
                backoff_base=float(worker.get("backoff_base_seconds", 30)),
                backoff_cap=float(worker.get("backoff_cap_seconds", 3600)),
                horizon=float(worker.get("horizon_hours", 72)) * 3600.0,
            ),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def own_origins(self) -> tuple[str, ...]:
        """The origins of this deployment a facility must never call (``EgressPolicy.own``): the
        gateway's ``public_url`` and listen address (with the loopback names of this machine when
        it listens on a loopback or on every address), and the SkyPortal it reports to."""
        host = self.address.strip("[]")
        hosts = [host]
        if host in ("", "0.0.0.0", "::") or is_loopback(host):
            hosts += ["127.0.0.1", "localhost", "::1"]
        origins = [f"http://{f'[{name}]' if ':' in name else name}:{self.port}" for name in dict.fromkeys(hosts) if name]
        return tuple(origins + [url for url in (self.public_url, self.skyportal_url) if url])
