"""End-to-end tests' way to run a gateway to the end: the worker until nothing is owed, then the
outbox until SkyPortal has everything (imported by the test modules; not a test module)."""

from __future__ import annotations

from facility_apis.gateway.outbox import Deliverer, DeliverySettings
from facility_apis.gateway.store import Store
from facility_apis.gateway.worker import Worker

#: Outbox retries in tenths of a second rather than the production minutes.
QUICK_DELIVERY = DeliverySettings(backoff_base=0.05, backoff_cap=0.2, idle=0.05)


def follow_and_deliver(worker: Worker, store: Store, skyportal_url: str, token: str, *, worker_seconds: float = 30.0, outbox_seconds: float = 30.0) -> bool:
    """Run ``worker`` until idle, then deliver ``store``'s outbox to SkyPortal until empty; close
    both. True when both finished within their seconds."""
    deliverer = Deliverer.for_skyportal(store, skyportal_url, token, settings=QUICK_DELIVERY)
    try:
        return worker.run_until_idle(worker_seconds) and deliverer.run_until_empty(outbox_seconds)
    finally:
        worker.close()
        deliverer.close()
