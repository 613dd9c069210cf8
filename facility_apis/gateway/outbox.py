"""Delivers the outbox to SkyPortal until each message is acknowledged.

Statuses go to ``POST /api/facility``, photometry to ``PUT /api/photometry`` (idempotent in
SkyPortal). Messages of one request leave in the order they were written, one at a time, so a
status never overtakes the photometry it announces, and a status never announces points SkyPortal
refused (``Outbox.status_to_send`` says what happened instead); different requests are delivered
concurrently. A message SkyPortal refuses for good (a 4xx other than 401, 403, 408 and 429) is
kept as dead, with SkyPortal's reason, for the admin (``facility-apis outbox requeue`` sends dead
messages again once the cause is fixed); everything else is retried with doubling waits.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..core.egress import INTERNAL
from ..core.errors import FacilityError, FacilityUnavailable, Throttled
from ..core.redact import get_logger
from ..core.transport import Transport
from ..skyportal.client import SkyPortalClient, SkyPortalError
from .loops import Backoff, GaveUp, keep_trying, store_unavailable
from .store import Delivery, Store

log = get_logger(__name__)

#: SkyPortal answers that a later attempt may turn into a success.
RETRYABLE_STATUSES = frozenset({401, 403, 408, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class DeliverySettings:
    concurrency: int = 8
    batch: int = 64
    lease: float = 120.0
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    idle: float = 1.0

    def backoff(self, attempts: int) -> float:
        return min(self.backoff_cap, self.backoff_base * 2 ** max(attempts - 1, 0))


class Unresolved(FacilityError):
    """SkyPortal does not (yet) show the follow-up request this message belongs to."""


def _same_request(skyportal_payload: Any, gateway_payload: dict[str, Any]) -> bool:
    """SkyPortal keeps the payload as the observer sent it; the gateway keeps the fields its
    facility's form defines, with defaults filled in. They match when every field both have is
    the same."""
    if not isinstance(skyportal_payload, dict):
        return False
    return all(skyportal_payload[key] == gateway_payload[key] for key in skyportal_payload.keys() & gateway_payload.keys())


class Deliverer:
    """Works through the outbox; ``run_until_empty()`` for tests and benches."""

    def __init__(self, store: Store, client_factory: Callable[[], SkyPortalClient], *, settings: DeliverySettings | None = None, name: str | None = None):
        self.store = store
        self.settings = settings or DeliverySettings()
        self.name = name or f"outbox:{uuid.uuid4().hex[:8]}"
        self._client_factory = client_factory
        self._local = threading.local()
        self._clients: list[SkyPortalClient] = []
        #: Transports whose connection pools the clients share, closed last.
        self._owned: list[Transport] = []
        self._lock = threading.Lock()
        self._resolving = threading.Lock()
        self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="outbox")
        self._stop = threading.Event()
        self._claiming = Backoff(f"{self.name}: claiming messages", logger=log)
        self._saves = Backoff(f"{self.name}: recording deliveries", logger=log)
        #: ``time.monotonic()`` of the loop's latest round (the supervisor's heartbeat).
        self.last_beat = time.monotonic()

    @classmethod
    def for_skyportal(cls, store: Store, url: str, token: str, **options: Any) -> Deliverer:
        """A deliverer to SkyPortal at ``url``: its threads' clients share one connection pool."""
        size = (options.get("settings") or DeliverySettings()).concurrency
        pools = Transport(retries=0, timeout=(5.0, 30.0), egress=INTERNAL, pool_size=size)
        deliverer = cls(store, lambda: SkyPortalClient(url, token, Transport(retries=0, timeout=(5.0, 30.0), egress=INTERNAL, pools_of=pools)), **options)
        deliverer._owned.append(pools)
        return deliverer

    def _client(self) -> SkyPortalClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._client_factory()
            with self._lock:
                self._clients.append(client)
        return client

    # -- one message -------------------------------------------------------------------------

    def send(self, delivery: Delivery) -> bool:
        """Send one message: True when SkyPortal took it (the caller marks it delivered); a
        failure is recorded here. Never raises."""
        try:
            client = self._client()
            if delivery.kind == "photometry":
                client.put_photometry(delivery.body.encode())
            else:
                followup_request_id = delivery.followup_request_id or self._resolve(client, delivery)
                client.post_status(followup_request_id, self.store.outbox.status_to_send(delivery))
        except Throttled as exc:
            self._retry(delivery, str(exc), exc.wait)
        except (FacilityUnavailable, Unresolved) as exc:
            self._retry(delivery, str(exc))
        except SkyPortalError as exc:
            if exc.http_status in RETRYABLE_STATUSES:
                self._retry(delivery, str(exc))
            else:
                self._dead(delivery, str(exc))
        except FacilityError as exc:  # e.g. a status that fails the listener schema: no retry helps
            self._dead(delivery, str(exc))
        except Exception as exc:
            if store_unavailable(exc):  # resolving a GENERIC request's id needs the store
                self._saves.failure(exc)
                return False  # the message stays leased and is tried again when the lease ends
            log.exception("outbox %s: delivery failed", delivery.id)
            self._retry(delivery, f"{type(exc).__name__}: {exc}")
        else:
            return True
        return False

    def _record_failure(self, delivery: Delivery, error: str, at: float, *, dead: bool = False) -> None:
        """Write a failed attempt; should the store fail too, the message stays leased and is
        tried again once its lease ends (nothing is lost)."""
        try:
            self.store.outbox.retry(delivery, error, at, dead=dead)
        except Exception as exc:
            if not store_unavailable(exc):
                raise
            self._saves.failure(exc)

    def _dead(self, delivery: Delivery, error: str) -> None:
        log.error("outbox %s: given up: %s", delivery.id, error)
        self._record_failure(delivery, error, time.time(), dead=True)

    def _retry(self, delivery: Delivery, error: str, wait: float | None = None) -> None:
        wait = self.settings.backoff(delivery.attempts + 1) if wait is None else wait
        self._record_failure(delivery, error, time.time() + wait)

    def _resolve(self, client: SkyPortalClient, delivery: Delivery) -> int:
        """Find SkyPortal's id of a request that arrived through GENERIC forwarding (whose body
        carries no id). SkyPortal's requests on the same source and allocation that no gateway
        request holds are paired, oldest with oldest, with the gateway's unlinked ones of the
        same payload. SkyPortal may not have committed its request yet: then, later."""
        entries = [
            entry
            for entry in client.followup_requests(delivery.obj_id)
            if entry.get("allocation_id") == delivery.allocation_id and isinstance(entry.get("id"), int)
        ]
        with self._resolving:  # one resolution at a time, so two requests never take one id
            taken = self.store.requests.linked_followup_ids([entry["id"] for entry in entries])
            free = sorted((entry for entry in entries if entry["id"] not in taken), key=lambda entry: entry["id"])
            for request_id, payload in self.store.requests.unlinked(delivery.obj_id, delivery.allocation_id):
                match = next((entry for entry in free if _same_request(entry.get("payload"), payload)), None)
                if match is None:
                    continue
                free.remove(match)
                self.store.requests.link(request_id, match["id"])
            linked = self.store.requests.followup_request_id(delivery.request_id)
        if linked is not None:
            return linked
        raise Unresolved(f"SkyPortal shows no follow-up request on {delivery.obj_id} for allocation {delivery.allocation_id} yet")

    # -- the loop ----------------------------------------------------------------------------

    def run_once(self) -> int:
        """Deliver one batch; return how many messages were attempted."""
        leased_until = time.time() + self.settings.lease
        deliveries = self.store.outbox.claim(self.name, self.settings.batch, self.settings.lease)
        # The batch is marked in one statement once sent, retried while the store is unavailable
        # and the lease lasts. Should that fail (or the process die first), the batch is sent
        # again: delivery is at least once (photometry by idempotent PUT).
        sent = [delivery for delivery, ok in zip(deliveries, self._pool.map(self.send, deliveries), strict=True) if ok]
        try:
            keep_trying(lambda: self.store.outbox.delivered(sent), self._saves, self._stop, deadline=leased_until)
        except GaveUp as exc:
            log.error("outbox: %d delivered message(s) not marked; they will be sent again: %s", len(sent), exc)
        return len(deliveries)

    def run(self) -> None:
        """Deliver until ``stop()``; a store failure is retried with backoff."""
        while not self._stop.is_set():
            self.last_beat = time.monotonic()
            try:
                attempted = self.run_once()
            except Exception as exc:  # noqa: BLE001 - logged (rate-limited) by the backoff
                self._stop.wait(self._claiming.failure(exc))
                continue
            self._claiming.success()
            if not attempted:
                self._stop.wait(self.settings.idle)

    def run_until_empty(self, timeout: float = 60.0) -> bool:
        """Deliver until nothing is owed; False if ``timeout`` came first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.run_once():
                if not self.store.metrics()["outbox_backlog"]:
                    return True
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.stop()
        self._pool.shutdown(wait=True)
        for client in self._clients:
            client.transport.close()
        for transport in self._owned:
            transport.close()
