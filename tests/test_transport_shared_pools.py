"""Transports of a thread pool share one connection pool per remote host (``pools_of``): the
connections are reused by every thread, while records, secrets and cookies stay each one's own."""

from __future__ import annotations

import threading

import pytest

from facility_apis.core.transport import Transport
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.server import LoopbackServer


def test_threads_reuse_the_owners_connections_and_keep_their_own_records():
    with LoopbackServer() as server:
        egress = loopback_egress(server)
        owner = Transport(retries=1, egress=egress, pool_size=4)
        borrowers = [Transport(retries=1, egress=egress, pools_of=owner, secrets=[f"secret-{i}"]) for i in range(4)]
        records: dict[int, list] = {}

        def calls(i: int) -> None:
            with borrowers[i].recording() as made:
                for _ in range(5):
                    borrowers[i].request("GET", f"{server.url}/x?token=secret-{i}")
            records[i] = made

        threads = [threading.Thread(target=calls, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pools = owner._adapter.poolmanager.pools
        assert len(pools) == 1  # one pool for the one host
        (host,) = pools.keys()  # (urllib3's container does not iterate)
        pool = pools[host]
        assert pool.num_connections <= 4 and pool.num_requests == 20  # 20 calls over at most 4 connections
        for i in range(4):
            assert len(records[i]) == 5 and all("secret-" not in r.url for r in records[i])  # each masks its own
        for borrower in borrowers:
            borrower.close()  # leaves the shared connections open
        assert borrowers[0].request("GET", f"{server.url}/y").status_code == 404
        owner.close()


def test_only_a_transport_with_the_same_egress_and_retries_may_share():
    with LoopbackServer() as server:
        owner = Transport(retries=1, egress=loopback_egress(server))
        with pytest.raises(ValueError, match="same egress policy and retries"):
            Transport(retries=3, egress=loopback_egress(server), pools_of=owner)
        with pytest.raises(ValueError, match="same egress policy and retries"):
            Transport(retries=1, pools_of=owner)
        owner.close()
