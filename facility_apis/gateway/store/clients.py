"""API clients: who may call the gateway. A token is shown once and stored only as its SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from sqlalchemy import select

from ..models import CLIENTS, Client
from .database import Database
from .errors import Conflict


def token_hash(token: str) -> str:
    """The SHA-256 of ``token``, 64 hex digits: what the ``clients`` table keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Clients:
    """Registering clients and recognising their tokens."""

    def __init__(self, database: Database):
        self._database = database

    def add(self, name: str) -> str:
        """Register a client; return its new token (shown once). ``Conflict`` if ``name`` is taken."""
        token = secrets.token_urlsafe(32)
        with self._database.session() as session:
            if session.scalar(select(Client).where(Client.name == name)):
                raise Conflict(f"a client named {name!r} already exists")
            session.add(Client(name=name, token_hash=token_hash(token), created_at=time.time()))
        return token

    def authenticate(self, token: str | None) -> int | None:
        """The client id owning ``token``, or None. The comparison takes constant time. A read
        only: it never waits for the worker's writes."""
        if not token:
            return None
        presented = token_hash(token)
        with self._database.reading() as connection:
            row = connection.execute(select(CLIENTS.c.id, CLIENTS.c.token_hash).where(CLIENTS.c.token_hash == presented)).one_or_none()
        if row is None or not hmac.compare_digest(row.token_hash, presented):
            return None
        return row.id
