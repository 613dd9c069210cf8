"""Gateway worker processes for the benchmarks (``gateway_drain.py --worker-processes``); not a
benchmark itself.

Each process is one gateway worker as docs/gateway.md recommends running several: a ``Worker``
and an outbox ``Deliverer`` beside it (as ``facility-apis worker`` runs them), on a database the
benchmark created and filled, with the store settings of ``gateway_common.make_store``. The
processes start (``spawn``: a fresh interpreter each), open the store and build their worker, then
wait; ``WorkerProcesses.run`` starts them all at once and waits until each has seen the queue
drained (no request owes a facility call) and the outbox emptied. Only that span is timed, not
the start-up.

Each process also reports its CPU seconds over the run (``time.process_time``: all of its threads;
and by kind of thread, with ``psutil``), the facility calls its worker made, its claims (and how many
brought nothing), and the PostgreSQL server processes (backends) of its connections, found by their
``application_name``, so the benchmark can count the server's CPU too.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from gateway_common import SKYPORTAL_TOKEN


@dataclass(frozen=True)
class ProcessSpec:
    """What a worker process needs: the database (``url``, engine ``options``, the credentials'
    ``key``), the services' URLs, and the worker's settings (as ``gateway_common.run_gateway``'s):
    ``concurrency`` calls in flight, ATLAS's allowance ``limit`` (a ``FacilityLimit``, shared by
    every process: ``Services.atlas_limit``)."""

    url: str
    options: dict[str, Any]
    key: str
    atlas_url: str
    skyportal_url: str
    concurrency: int
    limit: Any
    poll: float
    idle: float
    timeout: float


@dataclass(frozen=True)
class ProcessResult:
    """One process's run: its worker finished (no request owes a call) and its deliverer saw the
    outbox empty within the timeout; ``cpu_seconds`` of the process over the run, ``calls`` its
    worker made, ``backends`` the server process ids of its PostgreSQL connections."""

    index: int
    pid: int
    finished: bool
    emptied: bool
    cpu_seconds: float
    calls: int
    backends: tuple[int, ...]
    #: Claims the worker made (``Jobs.claim`` calls), and those that brought no job.
    claims: int = 0
    empty_claims: int = 0
    #: CPU seconds over the run by thread: ``dispatcher`` (claims), ``calls`` (facility calls and
    #: recording their outcomes), ``deliverer`` (claiming and marking messages), ``deliveries``.
    thread_cpu: dict[str, float] | None = None


def application_name(index: int) -> str:
    """The ``application_name`` of worker process ``index``'s PostgreSQL connections."""
    return f"bench-worker-{os.getpid()}-{index}"


def _connect_options(spec: ProcessSpec, name: str) -> dict[str, Any]:
    if not spec.url.startswith("postgresql"):
        return dict(spec.options)
    connect_args = {**spec.options.get("connect_args", {}), "application_name": name}
    return {**spec.options, "connect_args": connect_args}


def _backends(store, name: str) -> tuple[int, ...]:
    if store.database.dialect != "postgresql":
        return ()
    from sqlalchemy import text

    with store.database.connection() as connection:
        return tuple(connection.scalars(text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"), {"name": name}))


def _thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process so far, by native thread id (psutil; empty without it)."""
    try:
        import psutil
    except ImportError:
        return {}
    return {thread.id: thread.user_time + thread.system_time for thread in psutil.Process().threads()}


def _by_role(before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
    """The CPU each kind of thread used between ``before`` and ``after``, by the thread's name."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    roles: dict[str, float] = {}
    for native_id, seconds in after.items():
        name = names.get(native_id, "")
        role = "dispatcher" if name == "MainThread" else "calls" if name.startswith("call:") else "deliveries" if name.startswith("outbox") else "other"
        roles[role] = roles.get(role, 0.0) + seconds - before.get(native_id, 0.0)
    return roles


class _Counted:
    """Counts the calls of a store method and those that returned nothing."""

    def __init__(self, method):
        self._method = method
        self.calls = 0
        self.empty = 0

    def __call__(self, *args, **kwargs):
        answer = self._method(*args, **kwargs)
        self.calls += 1
        self.empty += not answer
        return answer


def _work(index: int, name: str, spec: ProcessSpec, conn) -> None:  # runs in the child process
    from facility_apis.core.egress import EgressPolicy
    from facility_apis.gateway.crypto import SecretBox
    from facility_apis.gateway.outbox import Deliverer, DeliverySettings
    from facility_apis.gateway.policy import Schedule
    from facility_apis.gateway.store import Store
    from facility_apis.gateway.worker import Worker, WorkerSettings

    class CountingWorker(Worker):
        calls = 0

        def _call(self, facility, job):
            outcome = super()._call(facility, job)
            if outcome is not None:
                with self._lock:
                    self.calls += 1
            return outcome

    schedule = Schedule(default_poll=spec.poll, backoff_base=spec.poll, backoff_cap=10 * spec.poll)
    store = Store(spec.url, SecretBox(spec.key), schedule=schedule, create=False, **_connect_options(spec, name))
    egress = EgressPolicy.allowing(spec.atlas_url, spec.skyportal_url)
    settings = WorkerSettings(concurrency=spec.concurrency, default_limit=spec.limit, idle=spec.idle, egress=egress)
    worker = CountingWorker(store, facility_config={"atlas": {"base_url": spec.atlas_url, "poll_interval": spec.poll}}, settings=settings)
    deliverer = Deliverer.for_skyportal(store, spec.skyportal_url, SKYPORTAL_TOKEN, settings=DeliverySettings(idle=spec.idle))
    deliverer_cpu: list[float] = []

    def deliver() -> None:
        try:
            deliverer.run()
        finally:
            deliverer_cpu.append(time.thread_time())  # the thread ends before the others are read

    thread = threading.Thread(target=deliver, name="bench-deliverer", daemon=True)
    claims = store.jobs.claim = _Counted(store.jobs.claim)
    try:
        conn.send("ready")
        conn.recv()  # go
        cpu, threads = time.process_time(), _thread_cpu()
        deadline = time.monotonic() + spec.timeout
        thread.start()
        finished = worker.run_until_idle(spec.timeout)
        deliverer.stop()
        thread.join()
        emptied = deliverer.run_until_empty(max(1.0, deadline - time.monotonic()))
        cpu, threads = time.process_time() - cpu, _by_role(threads, _thread_cpu())
        if deliverer_cpu and threads:
            threads["deliverer"] = deliverer_cpu[0]
        result = ProcessResult(index, os.getpid(), finished, emptied, cpu, worker.calls, _backends(store, name), claims.calls, claims.empty, threads)
        conn.send(result)
        conn.recv()  # the parent has read what it wanted (the backends' CPU): close
    finally:
        deliverer.stop()
        if thread.is_alive():
            thread.join()
        worker.close()
        deliverer.close()
        store.close()


class WorkerProcesses:
    """``count`` worker processes on ``spec``'s database, started and ready to run (a context
    manager: they are stopped on leaving it)."""

    def __init__(self, count: int, spec: ProcessSpec):
        context = multiprocessing.get_context("spawn")
        self._spec = spec
        self._conns = []
        self._processes = []
        try:
            for index in range(count):
                parent_conn, child_conn = context.Pipe()
                process = context.Process(target=_work, args=(index, application_name(index), spec, child_conn), name=f"bench-worker-{index}", daemon=True)
                process.start()
                self._conns.append(parent_conn)
                self._processes.append(process)
            for index, conn in enumerate(self._conns):
                if not conn.poll(120) or conn.recv() != "ready":
                    raise RuntimeError(f"worker process {index} did not start")
        except BaseException:
            self.close()
            raise

    def run(self) -> tuple[float, list[ProcessResult]]:
        """Start every process's drain at once; ``(seconds until the last one is done, each one's
        result)``. The processes stay open (their PostgreSQL backends too) until ``close()``."""
        started = time.perf_counter()
        for conn in self._conns:
            conn.send("go")
        results: list[ProcessResult] = []
        for index, conn in enumerate(self._conns):
            if not conn.poll(self._spec.timeout + 60):
                raise RuntimeError(f"worker process {index} did not report within {self._spec.timeout + 60:g} s")
            results.append(conn.recv())
        return time.perf_counter() - started, results

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(Exception):
                conn.send("close")
        for process in self._processes:
            process.join(30)
            if process.is_alive():
                process.terminate()
                process.join(5)

    def __enter__(self) -> WorkerProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
