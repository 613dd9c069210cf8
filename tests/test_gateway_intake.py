"""Accepting requests while the worker writes: the API's reads take no write lock, and requests
accepted at the same moment share one transaction, each stored exactly once (on each backend)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from facility_apis.core.interface import Target
from facility_apis.core.registry import default_registry
from facility_apis.gateway.api_base import Gateway
from facility_apis.gateway.models import CLIENTS, HISTORY, REQUESTS
from facility_apis.gateway.store import NotFound
from facility_apis.gateway.store.requests import NewRequest

PAYLOAD = {"start_date": "2025-01-01", "end_date": "2025-01-31"}


def _owner(store, name: str, allocation_id: int) -> int:
    owner = store.clients.authenticate(store.clients.add(name))
    store.allocations.put(owner, allocation_id, "atlas", {"api_token": f"{name}-token-0123456789"}, instrument_id=1, group_ids=[1])
    return owner


def _stored(store) -> dict[int, tuple[int | None, str]]:
    with store.database.reading() as connection:
        rows = connection.execute(select(REQUESTS.c.id, REQUESTS.c.followup_request_id, REQUESTS.c.obj_id)).all()
        history = dict(connection.execute(select(HISTORY.c.request_id, func.count()).group_by(HISTORY.c.request_id)).all())
    assert all(history.get(row.id) == 1 for row in rows), "each accepted request has its one history row"
    return {row.id: (row.followup_request_id, row.obj_id) for row in rows}


def test_add_many_stores_each_request_once_in_order(gateway_store):
    owner = _owner(gateway_store, "alice", 1)
    requests = [NewRequest(1, Target(f"ZTF{i}", 10.0 + i, 20.0), PAYLOAD, owner_id=owner, followup_request_id=100 + i) for i in range(5)]
    ids = gateway_store.requests.add_many(requests)
    assert len(set(ids)) == 5
    assert _stored(gateway_store) == {ident: (100 + i, f"ZTF{i}") for i, ident in enumerate(ids)}
    view = gateway_store.requests.view(ids[3], owner)
    assert (view["state"], view["status"], view["next_operation"], view["obj_id"]) == ("pending", "pending submission", "submit", "ZTF3")


def test_add_many_with_a_foreign_allocation_stores_none(gateway_store):
    alice, _ = _owner(gateway_store, "alice", 1), _owner(gateway_store, "bob", 2)
    requests = [NewRequest(1, Target("ZTF1", 10.0, 20.0), PAYLOAD, owner_id=alice), NewRequest(2, Target("ZTF2", 10.0, 20.0), PAYLOAD, owner_id=alice)]
    with pytest.raises(NotFound, match="no allocation 2"):
        gateway_store.requests.add_many(requests)
    assert _stored(gateway_store) == {}


def test_requests_accepted_together_are_each_stored_once_and_a_bad_one_fails_alone(gateway_store):
    alice, _ = _owner(gateway_store, "alice", 1), _owner(gateway_store, "bob", 2)
    gateway = Gateway(store=gateway_store, registry=default_registry(), box=gateway_store.box)
    start = threading.Barrier(16)

    def accept(i: int) -> int | str:
        start.wait()
        allocation = 2 if i == 7 else 1  # bob's: refused, and only that one
        try:
            return gateway.accept(NewRequest(allocation, Target(f"ZTF{i}", 10.0, 20.0), PAYLOAD, owner_id=alice, followup_request_id=i))
        except NotFound as exc:
            return str(exc)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(accept, range(16)))
    assert answers[7] == "no allocation 2"
    ids = {answers[i]: i for i in range(16) if i != 7}
    assert len(ids) == 15 and all(isinstance(ident, int) for ident in ids)
    assert _stored(gateway_store) == {ident: (i, f"ZTF{i}") for ident, i in ids.items()}


def test_a_read_neither_waits_for_a_writer_nor_writes(gateway_store):
    token = gateway_store.clients.add("alice")
    holding, release = threading.Event(), threading.Event()

    def write_and_hold() -> None:
        with gateway_store.database.connection() as connection:
            connection.execute(CLIENTS.update().where(CLIENTS.c.name == "alice").values(name="alice"))
            holding.set()
            release.wait(30)

    writer = threading.Thread(target=write_and_hold)
    writer.start()
    try:
        assert holding.wait(10)
        with ThreadPoolExecutor(1) as pool:  # on SQLite, a transaction that took the write lock would wait for the writer
            assert pool.submit(gateway_store.clients.authenticate, token).result(timeout=5) is not None
    finally:
        release.set()
        writer.join()
    with pytest.raises(DBAPIError), gateway_store.database.reading() as connection:
        connection.execute(CLIENTS.update().values(name="mallory"))
    assert gateway_store.clients.authenticate(token) is not None


def test_on_sqlite_a_write_a_client_waits_on_goes_before_the_background_writes_waiting():
    from facility_apis.gateway.store.database import _WriterTurns

    turns, order = _WriterTurns(), []
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with turns.turn(False):
            holding.set()
            release.wait(30)

    def write(name: str, for_client: bool) -> None:
        with turns.turn(for_client):
            order.append(name)

    first = threading.Thread(target=hold)
    first.start()
    assert holding.wait(10)
    background = threading.Thread(target=write, args=("worker", False))
    background.start()
    background.join(0.3)  # waiting for its turn, before the client's write arrives
    client = threading.Thread(target=write, args=("client", True))
    client.start()
    for _ in range(500):
        if turns._clients_waiting:
            break
        client.join(0.01)
    release.set()
    for thread in (first, background, client):
        thread.join(10)
    assert order == ["client", "worker"]
