"""How fast the gateway may call each facility or facility account: the allowance a worker's configuration
gives (``facilities.<name>.concurrency``/``min_interval``/``per_account``/``read_rate``/``write_rate``)
and the rates a facility documents (``Facility.rate_limits``). It is enforced in the database, across
every worker, by the claims (``store/accounts.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

#: The rate each operation's call counts against, as DRF scopes its throttles by HTTP method:
#: reads (GET) and writes (POST, PUT, DELETE).
SCOPES: Mapping[str, str] = {"get": "read", "find": "read", "submit": "write", "update": "write", "delete": "write"}
#: How far ahead a claim may give a rated call its start; a later one is left due at that time.
RATE_HORIZON = 1.0
RATE_KEYS = {f"{scope}_rate": scope for scope in sorted(set(SCOPES.values()))}


@dataclass(frozen=True)
class Rate:
    """At most ``calls`` calls started in any ``period`` seconds: a sliding window, as DRF's
    throttles count (ATLAS: 600 reads and 60 writes in any 60 s per user)."""

    calls: int
    period: float

    #: The window a claim counts is longer than ``period`` by this fraction of it and these
    #: seconds: a call leaves a little after the start its claim gave it (a thread to wake, a
    #: connection to open), and the facility counts it when it arrives.
    MARGIN: ClassVar[tuple[float, float]] = (0.02, 0.25)

    @property
    def window(self) -> float:
        """Seconds over which the claims count this rate's calls: ``period`` and the margin."""
        fraction, seconds = self.MARGIN
        return self.period * (1 + fraction) + seconds

    def __post_init__(self) -> None:
        if not (isinstance(self.calls, int) and self.calls >= 1) or not self.period > 0:
            raise ValueError(f"a rate is a whole number of calls (at least 1) per a positive number of seconds, not {self.calls}/{self.period}")

    @classmethod
    def parse(cls, value: Any) -> Rate:
        """``"600/60"`` or ``[600, 60]``: calls per seconds; ``ValueError`` for anything else."""
        parts = value.split("/") if isinstance(value, str) else value
        try:
            calls, period = parts
            if isinstance(calls, bool) or isinstance(period, bool):
                raise TypeError
            calls = int(calls) if isinstance(calls, str) else calls
            return cls(calls, float(period))
        except (TypeError, ValueError):
            raise ValueError(f"must be calls per seconds, as \"600/60\" or [600, 60], not {value!r}") from None


@dataclass(frozen=True)
class FacilityLimit:
    """At most ``concurrency`` calls to a facility at once, all workers together, their starts
    ``min_interval`` seconds apart: for each of its accounts (allocations) when ``per_account``,
    else for all of them together. ``rates``: scope (``read``, ``write``) -> the ``Rate`` each
    account's calls of that scope keep to, over the facility's documented ``rate_limits``
    (``None``: no rate for that scope)."""

    concurrency: int = 8
    min_interval: float = 0.0
    per_account: bool = False
    rates: Mapping[str, Rate | None] = field(default_factory=dict)

    def over(self, documented: Mapping[str, tuple[int, float]]) -> FacilityLimit:
        """This allowance with the facility's ``documented`` rates for the scopes it does not set."""
        rates = {scope: Rate(*rate) for scope, rate in documented.items()} | dict(self.rates)
        return replace(self, rates={scope: rate for scope, rate in rates.items() if rate is not None})

    def rate(self, operation: str) -> Rate | None:
        """The rate a call of ``operation`` keeps to, if any."""
        return self.rates.get(SCOPES.get(operation, "write"))
