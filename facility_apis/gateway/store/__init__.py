"""The gateway's persistence, one module per kind of record, behind one ``Store``.

``Store(database_url, box)`` owns the ``Database`` (``database.py``: engine, SQLite's pragmas and
``BEGIN IMMEDIATE``, the writer lock, transactions, the schema version) and exposes:

- ``store.clients`` (``clients.py``): API clients and their token hashes;
- ``store.allocations`` (``allocations.py``): allocations, credentials sealed at rest;
- ``store.requests`` (``requests.py``): follow-up requests, their history, cancels, SkyPortal ids;
- ``store.jobs`` (``jobs.py``): the job queue: claims within each facility's allowance
  (``accounts.py``), leases, recording outcomes (many in one transaction: ``pending.py``);
- ``store.outbox`` (``outbox.py``): messages owed to SkyPortal and their delivery;
- ``store.metrics()`` (``metrics.py``): queue and outbox health.

Every state change is written in one transaction with its history row, its redacted HTTP
transactions and the outbox rows it owes SkyPortal.
"""

from __future__ import annotations

from typing import Any

from ..crypto import SecretBox
from ..policy import Schedule
from .allocations import Allocations
from .clients import Clients
from .database import Database
from .errors import Conflict, NotFound
from .jobs import Job, Jobs
from .metrics import metrics
from .outbox import Delivery, Outbox
from .requests import Requests

__all__ = ["Conflict", "Database", "Delivery", "Job", "NotFound", "Store"]


class Store:
    """The gateway's tables on ``database_url``; ``box`` seals altdata and signs callback URLs,
    ``schedule`` paces polls and retries (see ``policy.py``). ``create`` and ``engine_options``
    are ``Database``'s; opening raises ``ConfigurationError`` as it does, and when ``box``'s key
    is not the one the database's credentials are sealed with."""

    def __init__(self, database_url: str, box: SecretBox, *, schedule: Schedule | None = None, create: bool = True, **engine_options: Any):
        self.database = Database(database_url, create=create, **engine_options)
        self.schedule = schedule or Schedule()
        self._box = box
        self.clients = Clients(self.database)
        self.allocations = Allocations(self.database, box)
        self.requests = Requests(self.database, self.schedule)
        self.jobs = Jobs(self.database, self.allocations, self.schedule)
        self.outbox = Outbox(self.database)
        try:
            self.allocations.check_key()
        except Exception:
            self.database.close()
            raise

    @property
    def box(self) -> SecretBox:
        """The key holder: it seals altdata and signs the URLs the gateway hands out."""
        return self._box

    def metrics(self, now: float | None = None) -> dict[str, Any]:
        """Queue depth by facility and state, the oldest overdue job, the outbox backlog (see
        ``metrics.metrics``)."""
        return metrics(self.database, now)

    def close(self) -> None:
        self.database.close()

    def __repr__(self) -> str:
        return f"Store({self.database.display_url!r})"
