"""The worker: claims due requests, calls their facilities concurrently, records the outcomes.

One dispatcher thread claims as many due jobs as there are free slots and hands them to a bounded
thread pool. Each facility account's allowance (concurrency, spacing) and throttle pauses are kept
in the database and shared by every worker (``store/accounts.py``): a claim takes only what the
account allows, a job spaced by ``min_interval`` waits here for its start time, and a throttle
recorded by any worker pauses the account for all. Sleeping happens here, never in a facility.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..core.egress import EgressPolicy
from ..core.interface import Facility
from ..core.operations import perform
from ..core.outcome import Outcome
from ..core.redact import get_logger
from ..core.registry import Registry, default_registry
from ..core.transport import Transport
from .batching import GroupCommit
from .loops import Backoff, GaveUp, keep_trying, store_unavailable
from .pacing import FacilityLimit
from .store import Job, Store
from .store.jobs import Recording

log = get_logger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """``concurrency`` facility calls in flight in this process; ``limits`` per facility (else
    ``default_limit``), the allowance of each of its accounts across all workers (give every
    worker the same); a claimed job is held for ``lease`` seconds, which must exceed the longest
    call; with nothing due, the database is asked again after at most ``idle`` seconds; ``egress``
    is where facilities may call besides the public internet."""

    concurrency: int = 32
    default_limit: FacilityLimit = field(default_factory=FacilityLimit)
    limits: Mapping[str, FacilityLimit] = field(default_factory=dict)
    lease: float = 300.0
    idle: float = 1.0
    timeout: tuple[float, float] = (5.0, 30.0)
    egress: EgressPolicy = field(default_factory=EgressPolicy)


def worker_name() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


CallbackURL = Callable[[int], str]


class Worker:
    """Follows the store's requests until ``stop()``; ``run_until_idle()`` for tests and benches."""

    def __init__(
        self,
        store: Store,
        *,
        registry: Registry | None = None,
        facility_config: Mapping[str, Mapping[str, Any]] | None = None,
        settings: WorkerSettings | None = None,
        callback_url: CallbackURL | None = None,
        name: str | None = None,
    ):
        self.store = store
        self.registry = registry or default_registry()
        self.facility_config = dict(facility_config or {})
        self.settings = settings or WorkerSettings()
        self.callback_url = callback_url
        self.name = name or worker_name()
        self._facilities: dict[str, Facility] = {}
        self._limits: dict[str, FacilityLimit] = {}
        self._local = threading.local()
        self._transports: list[Transport] = []
        self._pools = Transport(timeout=self.settings.timeout, retries=1, egress=self.settings.egress, pool_size=self.settings.concurrency)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix=f"call:{self.name}")
        self._in_flight: set[Future] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        #: Requests whose outcome is being saved (their lease is ours), and the jobs claimed for
        #: them meanwhile, started once that save is done (``_saved``).
        self._saving: set[int] = set()
        self._after_save: dict[int, Job] = {}
        self._saving_lock = threading.Lock()
        self._claiming = Backoff(f"worker {self.name}: claiming due requests", logger=log)
        self._saves = Backoff(f"worker {self.name}: saving outcomes", logger=log)
        #: Outcomes that arrive together are recorded in one transaction (see ``batching.py``).
        self._records: GroupCommit[Recording, bool] = GroupCommit(self.store.jobs.record_many, retry_alone=lambda exc: not store_unavailable(exc))
        #: ``time.monotonic()`` of the dispatcher's latest round (the supervisor's heartbeat).
        self.last_beat = time.monotonic()
        self._claimed_at = 0.0
        #: With calls in flight, claim only once this many slots are free: fewer, fuller claims.
        self._batch = max(1, self.settings.concurrency // 4)

    # -- wiring ------------------------------------------------------------------------------

    def facility(self, name: str) -> Facility:
        with self._lock:
            if name not in self._facilities:
                self._facilities[name] = self.registry.get(name)(self.facility_config.get(name), egress=self.settings.egress)
            return self._facilities[name]

    def limit(self, facility: str) -> FacilityLimit:
        """The allowance of each account of ``facility``: the configured one, with the rates the
        facility documents (``Facility.rate_limits``) where the configuration sets none."""
        with self._lock:
            if facility not in self._limits:
                configured = self.settings.limits.get(facility, self.settings.default_limit)
                self._limits[facility] = configured.over(self.registry.get(facility).rate_limits)
            return self._limits[facility]

    def _transport(self) -> Transport:
        """This thread's transport; the threads share one connection pool per remote host."""
        transport = getattr(self._local, "transport", None)
        if transport is None:
            transport = Transport(timeout=self.settings.timeout, retries=1, egress=self.settings.egress, pools_of=self._pools)
            self._local.transport = transport
            with self._lock:
                self._transports.append(transport)
        return transport

    # -- one job -----------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        try:
            facility = self.facility(job.facility)
            if job.interrupted:
                if not facility.implements()["find"]:
                    detail = f"a worker stopped while submitting; the request may have reached {facility.title} and was not sent again"
                    self.store.jobs.abandon(job, detail)
                    return
                # The facility can tell whether the lost submission arrived: ask it, never resend blindly.
                job = dataclasses.replace(job, operation="find", interrupted=False)
            outcome = self._call(facility, job)
            if outcome is None:
                return
            implemented = facility.implements()
            recording = Recording(job, outcome, implemented["get"], implemented["delete"], implemented["update"], facility.title)
            record = functools.partial(self._records.submit, recording)
            if not self._save(job, outcome, record):
                log.warning("request %s: lease lost while calling %s; its result was dropped", job.request_id, job.facility)
        except Exception as exc:  # the lease expires and another attempt follows (nothing was sent)
            if store_unavailable(exc):
                self._saves.failure(exc)
            else:
                log.exception("request %s: the worker failed to handle %s", job.request_id, job.operation)
        finally:
            self._wake.set()

    def _save(self, job: Job, outcome: Outcome, write: Callable[[], bool]) -> bool:
        """``write()`` the outcome of a call, retried while the store is unavailable: the lease
        is ours until another worker claims the request, and the store refuses a save after
        that (False). On giving up (the worker is stopping) the lease is released, and a
        submission's remote id is logged, so that nothing the facility holds goes unrecorded."""
        with self._saving_lock:
            self._saving.add(job.request_id)
        try:
            return keep_trying(write, self._saves, self._stop)
        except GaveUp as exc:
            held = f"; the facility holds it as {outcome.remote_id}" if outcome.remote_id and outcome.remote_id != job.request.remote_id else ""
            log.error("request %s: the outcome of %s (%s) was not saved%s: %s", job.request_id, job.operation, outcome.state.value, held, exc)
            with contextlib.suppress(Exception):
                self.store.jobs.defer(job)
            return True
        finally:
            self._saved(job.request_id)

    def _saved(self, request_id: int) -> None:
        """The save of ``request_id``'s outcome is over: start the job claimed for it meanwhile.

        A save commits (and frees the request, often due again at once) before the thread that
        asked for it learns so; a claim in between takes the request under a new lease of ours.
        That job waits for the save rather than run beside it, and is never dropped: dropped, it
        would hold the request, uncalled, until its lease ran out."""
        with self._saving_lock:
            self._saving.discard(request_id)
            waiting = self._after_save.pop(request_id, None)
        if waiting is None:
            return
        try:
            if self._stop.is_set():
                raise RuntimeError("the worker is stopping")
            self._dispatch(waiting)
        except RuntimeError:  # stopping (the pool takes no more work): give it back now
            with contextlib.suppress(Exception):
                self.store.jobs.defer(waiting)

    def _dispatch(self, job: Job) -> None:
        """Run ``job`` on the pool, counted in flight."""
        self.facility(job.facility)
        future = self._pool.submit(self._run, job)
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)

    def _call(self, facility: Facility, job: Job) -> Outcome | None:
        request = job.request
        if job.operation == "submit" and self.callback_url is not None:
            request = dataclasses.replace(request, callback_url=self.callback_url(job.request_id))
        # A submission is marked (committed) before it leaves, its lease renewed.
        if job.operation == "submit" and not self.store.jobs.start(job, self.settings.lease):
            return None
        # The facility's spacing: the claim gave the call its start time (at most lease/4 ahead).
        # Waited out even when stopping: a stop lets the calls it started finish.
        wait = job.not_before - time.time()
        if wait > 0:
            time.sleep(wait)
        return perform(facility, job.operation, request, self._transport())

    # -- dispatching -------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim what is due and start it; return the number of jobs started."""
        free = self.settings.concurrency - len(self._in_flight)
        if free <= 0 or (self._in_flight and free < self._batch):
            return 0
        started = 0
        self._claimed_at = now = time.time()
        for job in self.store.jobs.claim(self.name, free, self.settings.lease, now, limits=self.limit):
            with self._saving_lock:
                if job.request_id in self._saving:
                    self._after_save[job.request_id] = job  # started when that save is done (``_saved``)
                    continue
            self._dispatch(job)
            started += 1
        return started

    def _idle_wait(self) -> float:
        if self.settings.concurrency - len(self._in_flight) < self._batch:
            return self.settings.idle  # too few free slots to claim: a finishing call wakes us
        next_due = self.store.jobs.next_due()
        if next_due is None or next_due <= self._claimed_at:
            # Nothing owed, or due but not claimed: leased (calls in flight) or held back by an
            # account's allowance. A call of ours finishing wakes us; another worker's, ``idle``.
            return self.settings.idle
        return min(self.settings.idle, max(0.001, next_due - time.time()))

    def run(self) -> None:
        """Dispatch until ``stop()``; in-flight calls finish before it returns. A store failure
        (claiming, or asking when the next request is due) is retried with backoff."""
        while not self._stop.is_set():
            self.last_beat = time.monotonic()
            self._wake.clear()  # before claiming, so that a call finishing meanwhile is not missed
            try:
                started = self.run_once()
                wait = self._idle_wait() if started == 0 or len(self._in_flight) >= self.settings.concurrency else None
            except Exception as exc:  # noqa: BLE001 - logged (rate-limited) by the backoff
                self._stop.wait(self._claiming.failure(exc))
                continue
            self._claiming.success()
            if wait is not None:
                self._wake.wait(wait)
        self._drain_in_flight()

    def run_until_idle(self, timeout: float = 60.0) -> bool:
        """Work until no request owes a facility call; False if ``timeout`` came first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._wake.clear()
            started = self.run_once()
            if not started and not self._in_flight and self.store.jobs.next_due() is None:
                return True
            if not started or len(self._in_flight) >= self.settings.concurrency:
                self._wake.wait(min(self._idle_wait(), max(0.0, deadline - time.monotonic())))
        return False

    def _drain_in_flight(self) -> None:
        for future in list(self._in_flight):
            future.result()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def close(self) -> None:
        self.stop()
        self._pool.shutdown(wait=True)
        for transport in self._transports:
            transport.close()
        self._pools.close()
