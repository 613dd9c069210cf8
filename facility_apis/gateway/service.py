"""Assembles the gateway from its configuration: store, worker, outbox deliverer, HTTP API."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from ..core.egress import INTERNAL
from ..core.errors import ConfigurationError
from ..core.redact import get_logger
from ..core.registry import Registry, default_registry
from ..core.transport import Transport
from ..skyportal.client import SkyPortalClient
from .config import GatewayConfig
from .crypto import SecretBox
from .loops import Supervisor
from .outbox import Deliverer
from .store import Store
from .worker import Worker

log = get_logger(__name__)


def open_store(config: GatewayConfig, **options: Any) -> Store:
    """The configured database, with the configured key and schedule."""
    return Store(config.database_url, SecretBox(config.secret_key), schedule=config.schedule, **options)


def check_facility_settings(config: GatewayConfig, registry: Registry) -> None:
    """Build each facility named under ``facilities`` with its settings, so that a misspelt
    facility, an unknown key or an unusable value stops the gateway at start instead of being
    ignored (the defaults staying in force): ``ConfigurationError`` naming
    ``facilities.<name>``."""
    known = registry.names()
    for name, settings in config.facility_config().items():
        if name not in known:
            raise ConfigurationError(f"facilities.{name}: no facility of that name; known facilities: {', '.join(sorted(known))}")
        try:
            registry.get(name)(dict(settings), egress=config.worker.egress)
        except ConfigurationError as exc:
            raise ConfigurationError(f"facilities.{name}: {exc}") from None


class Gateway:
    """One gateway process. ``start_background()`` runs the worker and the deliverer in
    supervised threads (restarted if they crash; ``fatal`` is set, with ``fatal_reason``, when
    one keeps crashing, and the process should then exit non-zero); ``app()`` is the tornado
    application to listen with."""

    def __init__(self, config: GatewayConfig, *, registry: Registry | None = None, **store_options: Any):
        # Facilities never call the deployment's own gateway or SkyPortal (a forwarding loop).
        egress = replace(config.worker.egress, own=config.own_origins())
        config = replace(config, worker=replace(config.worker, egress=egress))
        self.config = config
        self.registry = registry or default_registry()
        check_facility_settings(config, self.registry)
        self.store = open_store(config, **store_options)
        self.box = self.store.box
        self.worker = Worker(
            self.store,
            registry=self.registry,
            facility_config=config.facility_config(),
            settings=config.worker,
            callback_url=self._callback_url if config.public_url else None,
        )
        self.deliverer = Deliverer.for_skyportal(self.store, config.skyportal_url, config.skyportal_token) if config.skyportal_url else None
        self.fatal = threading.Event()
        self.fatal_reason: str | None = None
        self.supervisor = Supervisor(self._on_fatal)

    def _on_fatal(self, reason: str) -> None:
        self.fatal_reason = reason
        self.fatal.set()

    def _callback_url(self, request_id: int) -> str:
        from .api import callback_path

        return self.config.public_url.rstrip("/") + callback_path(self.box, request_id)

    def skyportal_client(self) -> SkyPortalClient | None:
        if not self.config.skyportal_url:
            return None
        return SkyPortalClient(self.config.skyportal_url, self.config.skyportal_token, Transport(retries=1, egress=INTERNAL))

    def app(self):
        from .api import make_app

        config = self.config
        return make_app(
            self.store,
            registry=self.registry,
            skyportal=self.skyportal_client(),
            facility_config=config.facility_config(),
            box=self.box,
            egress=config.worker.egress,
            loops=self.supervisor.health,
        )

    def start_background(self, *, worker: bool = True, deliverer: bool = True) -> None:
        """Run the worker and the outbox deliverer in supervised daemon threads until ``close()``."""
        if worker:
            self.supervisor.start("worker", self.worker)
        if deliverer:
            if self.deliverer is None:
                log.warning("no SkyPortal configured: statuses stay in the outbox until one is")
            else:
                self.supervisor.start("outbox", self.deliverer)

    def close(self) -> None:
        self.supervisor.stop()
        self.worker.close()
        if self.deliverer is not None:
            self.deliverer.close()
        self.store.close()
