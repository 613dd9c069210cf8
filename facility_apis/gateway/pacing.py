"""How fast the gateway may call each facility or facility account: the allowance a worker's configuration
gives (``facilities.<name>.concurrency``/``min_interval``/``per_account``). It is enforced in the database, across
every worker, by the claims (``store/accounts.py``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FacilityLimit:
    """At most ``concurrency`` calls to a facility at once, all workers together, their starts
    ``min_interval`` seconds apart: for each of its accounts (allocations) when ``per_account``,
    else for all of them together."""

    concurrency: int = 8
    min_interval: float = 0.0
    per_account: bool = False
