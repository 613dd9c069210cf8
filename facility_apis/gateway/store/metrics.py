"""Health figures across the job queue and the outbox, read in one transaction."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from ..models import OUTBOX, REQUESTS
from . import accounts
from .database import Database


def metrics(database: Database, now: float | None = None) -> dict[str, Any]:
    """``requests``: ``{facility: {state: count}}``; ``due``: requests due now and
    ``oldest_due_seconds`` how long the oldest has waited; ``outbox_backlog``, its oldest message's
    age (``outbox_oldest_seconds``) and ``outbox_dead``; ``accounts``: each facility account the
    workers called, with its calls in flight and pause (see ``accounts.view``). Ages are seconds (None when there is
    nothing), ``now`` UNIX seconds (default: the clock)."""
    now = time.time() if now is None else now
    pending = (OUTBOX.c.delivered_at.is_(None), OUTBOX.c.dead.is_(False))
    with database.connection() as connection:
        depth: dict[str, dict[str, int]] = {}
        by_state = select(REQUESTS.c.facility, REQUESTS.c.state, func.count()).group_by(REQUESTS.c.facility, REQUESTS.c.state)
        for facility, state, count in connection.execute(by_state):
            depth.setdefault(facility, {})[state] = count
        due, oldest_due = connection.execute(select(func.count(), func.min(REQUESTS.c.next_poll_at)).where(REQUESTS.c.next_poll_at <= now)).one()
        backlog = connection.scalar(select(func.count()).select_from(OUTBOX).where(*pending))
        oldest_undelivered = connection.scalar(select(func.min(OUTBOX.c.created_at)).where(*pending))
        dead = connection.scalar(select(func.count()).select_from(OUTBOX).where(OUTBOX.c.dead.is_(True)))
        paced = accounts.view(connection, now)
    return {
        "requests": depth,
        "due": due,
        "oldest_due_seconds": None if oldest_due is None else round(now - oldest_due, 3),
        "outbox_backlog": backlog,
        "outbox_oldest_seconds": None if oldest_undelivered is None else round(now - oldest_undelivered, 3),
        "outbox_dead": dead,
        "accounts": paced,
    }
