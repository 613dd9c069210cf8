"""Gateway steady-load benchmark: resident memory and open file descriptors over a long run.

The gateway runs in this process as ``facility-apis serve`` runs it: the HTTP API (``make_app``
served from a thread), one ``Worker`` and one ``Deliverer``, on a SQLite file (or PostgreSQL).
The ATLAS emulator and the SkyPortal stub run in child processes (``gateway_common.py``). For
``--seconds`` (default 600; ``--quick`` 12), new follow-up requests arrive at a steady rate
(``--rate``, default 5 a second) as ``POST /api/followup_request`` bodies, so the worker submits
each to ATLAS (``POST queue/``), polls it (finished at its 3rd status read, one poll a second),
fetches its result file (20 points) and the Deliverer sends its statuses and photometry to the
stub; SkyPortal goes down ``--outages`` times (default 4, ``--quick`` 2) for ``--outage-seconds``
(default 15, ``--quick`` 2), alternately dropping every connection and answering 503, and the
outbox catches up afterwards.

Every ``--sample`` seconds (default 2, ``--quick`` 0.25) a sampler reads this process's RSS and
open file descriptors (``psutil``), what they are made of (Python's allocated blocks, SQLite's
own heap, the descriptors by peer), the requests arrived and completed and the outbox backlog.
After a warm-up (``--warmup``, default 20 % of the run but at least 60 s, at most half
of it) the gateway's caches and connection pools are full and neither should grow:

- ``RSS end/warm-up`` (target ≤ 1.05): the last sample over the one at the end of the warm-up;
- ``open fds end/warm-up`` (the gateway's: the benchmark's own API client sockets are left out).
  A connection pool keeps the connections its busiest moment opened, up to its size, so the
  target is: no growth outside the pools (files, pipes, listening sockets), and each pool within
  its size at every sample (ATLAS ``--concurrency``, SkyPortal the Deliverer's 8, the API's
  keep-alive connections the intake's 4 clients);
- the least-squares slope of each over the samples after the warm-up (MB/min, fds/min).

``--tracemalloc`` also traces Python allocations (slower, and RSS then includes the tracing) and
prints the 15 tracebacks whose live allocations grew most from the end of the warm-up to the end
(each snapshot after a ``gc.collect()``: what is kept, not garbage awaiting the collector).

Correctness (exit 1), checked once the load stops, SkyPortal is up and the gateway has drained:
every request the API accepted was submitted to ATLAS once (``POST queue/`` counted there, and
one task per request's position), completed, and SkyPortal accepted each message of its outbox
exactly once, in the outbox's order, which is the order of its history (every status but the
initial ``pending submission``): 20 points, then ``complete: ...`` last; nothing dead or left in
the outbox; the API refused nothing.

Usage: python bench/gateway_steady.py [--quick] [--seconds S] [--rate N] [--warmup S] [--sample S]
           [--outages N] [--outage-seconds S] [--tracemalloc] [--polls N] [--latency S]
           [--concurrency N] [--poll-interval S] [--database sqlite|postgresql|URL] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gateway_common import (
    ATLAS_TOKEN,
    GROUP_IDS,
    INSTRUMENT_ID,
    PAYLOAD,
    SKYPORTAL_TOKEN,
    BenchTarget,
    Services,
    add_common_arguments,
    database,
    make_store,
    report,
    request_states,
)

TARGET_RSS_RATIO = 1.05
#: Threads (a keep-alive connection each) the intake posts requests from.
CLIENTS = 4
ROWS = 20
MB = 1024 * 1024
#: Frames kept per traced allocation (``--tracemalloc``): enough to see which gateway code asked.
TRACE_FRAMES = 12
#: The allocation the benchmark's API client posts its requests on (its own, not gateway_common's).
ALLOCATION_ID = 2


@dataclass
class Sample:
    at: float  # seconds since the load started
    rss: int
    fds: int
    blocks: int  # memory blocks Python's allocator holds (``sys.getallocatedblocks``)
    sqlite: int  # bytes SQLite's own allocator holds in this process (``sqlite3_memory_used``)
    malloc_used: int  # bytes the C heap (glibc malloc, all arenas) has handed out, SQLite's included
    malloc_held: int  # bytes the C heap holds from the system, in use or free
    statements: int  # compiled statements in the engine's cache (SQLAlchemy keeps up to 500)
    arrived: int
    completed: int
    followed: int  # requests not finished yet
    backlog: int  # outbox messages owed to SkyPortal
    skyportal_down: bool
    fd_kinds: Counter[str]  # the open fds by what they are (``FdKinds``)


def sqlite_memory_used() -> Callable[[], int]:
    """``sqlite3_memory_used()`` of the SQLite library this process's ``sqlite3`` module uses: its
    page caches, statements and schema, which neither Python's allocator nor tracemalloc sees
    (0 where the library cannot be loaded)."""
    import ctypes
    import ctypes.util
    import sqlite3  # noqa: F401 - loads the library the process shares

    name = ctypes.util.find_library("sqlite3")
    try:
        function = ctypes.CDLL(name).sqlite3_memory_used if name else None
    except (OSError, AttributeError):
        function = None
    if function is None:
        return lambda: 0
    function.restype, function.argtypes = ctypes.c_int64, []
    return function


def c_heap() -> Callable[[], tuple[int, int]]:
    """``(in use, held)`` bytes of the C heap, every arena, from glibc's ``mallinfo2()``: what
    malloc handed out, and what it holds from the system (in use plus free chunks it keeps, so
    ``held - in use`` is fragmentation). ``(0, 0)`` where the C library has no ``mallinfo2``."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
        ]

    try:
        function = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return lambda: (0, 0)
    function.restype, function.argtypes = MallInfo2, []

    def read() -> tuple[int, int]:
        info = function()
        return info.uordblks + info.hblkhd, info.arena + info.hblkhd

    return read


class FdKinds:
    """Tells this process's open descriptors apart: sockets by the service at their other end
    (ATLAS, SkyPortal, the API's server and client sides, PostgreSQL, other), files by name, and
    the rest (pipes, event fds, epoll)."""

    def __init__(self, process, ports: dict[int, str], api_port: int):
        self._process, self._ports, self._api_port = process, ports, api_port

    def __call__(self, total: int) -> Counter[str]:
        kinds: Counter[str] = Counter()
        for connection in self._process.net_connections(kind="all"):
            if connection.laddr and not isinstance(connection.laddr, str) and connection.laddr.port == self._api_port:
                kinds["API server" if connection.raddr else "API listening"] += 1
            elif connection.raddr and not isinstance(connection.raddr, str):
                kinds[self._ports.get(connection.raddr.port, "other sockets")] += 1
            else:
                kinds["other sockets"] += 1
        for opened in self._process.open_files():
            name = opened.path.rsplit("/", 1)[-1]
            kinds["database " + name.rsplit("-", 1)[-1] if name.endswith(("-wal", "-shm")) else "database" if name.endswith(".db") else "other files"] += 1
        kinds["pipes, events"] = total - sum(kinds.values())
        return kinds


class Sampler:
    """Reads RSS, open fds and the gateway's metrics every ``interval`` seconds, from a thread."""

    def __init__(self, store, intake: Intake, outages: Outages, interval: float, ports: dict[int, str], api_port: int):
        import psutil

        self._process = psutil.Process()
        self._kinds = FdKinds(self._process, ports, api_port)
        self._sqlite = sqlite_memory_used()
        self._c_heap = c_heap()
        self.store, self.intake, self.outages, self.interval = store, intake, outages, interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self, started: float) -> None:
        self.started = started
        self._thread.start()

    def sample(self) -> Sample:
        metrics = self.store.metrics()
        states = metrics["requests"].get("atlas", {})
        followed = sum(count for state, count in states.items() if state in ("pending", "submitted", "queued", "running"))
        total = self._process.num_fds()
        kinds = self._kinds(total)
        fds = total - kinds.pop("API client", 0)  # the gateway's: the intake's sockets are the benchmark's
        return Sample(
            time.monotonic() - self.started,
            self._process.memory_info().rss,
            fds,
            sys.getallocatedblocks(),
            self._sqlite(),
            *self._c_heap(),
            len(self.store.database.engine._compiled_cache or ()),
            self.intake.arrived,
            states.get("completed", 0),
            followed,
            metrics["outbox_backlog"],
            self.outages.down,
            kinds,
        )

    def _run(self) -> None:
        next_at = self.started
        while True:
            self.samples.append(self.sample())
            next_at += self.interval
            if self._stop.wait(max(0.0, next_at - time.monotonic())):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self.sample())


class Intake:
    """Sends one request every ``1/rate`` seconds to the gateway's API until ``stop()``, from
    ``clients`` threads (a keep-alive session each), so that a slow answer does not hold back the
    next arrival; the arrival times do not drift (posts that fall behind go out at once)."""

    def __init__(self, api_url: str, token: str, targets: list[BenchTarget], rate: float, clients: int = CLIENTS):
        self.api_url, self.targets, self.rate, self.token = api_url, targets, rate, token
        self.sent = 0  # requests sent so far (``arrived`` once the API accepted them)
        self.arrived = 0
        self.gateway_ids: dict[int, int] = {}  # followup id -> gateway request id
        self.refused: list[str] = []
        self._local = threading.local()
        self._sessions: list = []
        self._lock = threading.Lock()
        self._posting = ThreadPoolExecutor(clients, thread_name_prefix="bench-client")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-intake", daemon=True)

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = self._local.session = requests.Session()
            session.headers["Authorization"] = f"token {self.token}"
            with self._lock:
                self._sessions.append(session)
        return session

    def start(self, started: float) -> None:
        self.started = started
        self._thread.start()

    def _post(self, target: BenchTarget) -> None:
        body = {
            "allocation_id": ALLOCATION_ID,
            "target": {"id": target.obj_id, "ra": target.ra, "dec": target.dec},
            "payload": PAYLOAD,
            "followup_request_id": target.followup_id,
        }
        try:
            answer = self._session().post(f"{self.api_url}/api/followup_request", json=body, timeout=30)
        except Exception as exc:  # noqa: BLE001 - counted as a refusal, the run goes on
            self.refused.append(f"{target.obj_id}: {type(exc).__name__}: {exc}")
            return
        if answer.status_code != 200:
            self.refused.append(f"{target.obj_id}: HTTP {answer.status_code}: {answer.text[:200]}")
            return
        self.gateway_ids[target.followup_id] = answer.json()["data"]["id"]
        with self._lock:
            self.arrived += 1

    def _run(self) -> None:
        for index, target in enumerate(self.targets):
            if self._stop.wait(max(0.0, self.started + index / self.rate - time.monotonic())):
                return
            self.sent = index + 1
            self._posting.submit(self._post, target)

    def stop(self) -> None:
        """No more arrivals; the posts already sent are answered first."""
        self._stop.set()
        self._thread.join()
        self._posting.shutdown(wait=True)
        for session in self._sessions:
            session.close()
        self._sessions.clear()


class Outages:
    """SkyPortal down ``count`` times for ``seconds`` each, evenly spread over ``period`` (the k-th
    from ``(k + 1/2) * period / count``), alternately dropping connections and answering 503."""

    MODES = ("drop", "503")

    def __init__(self, services: Services, count: int, seconds: float, period: float):
        self.services = services
        self.windows = [((k + 0.5) * period / count, (k + 0.5) * period / count + seconds, self.MODES[k % 2]) for k in range(count)]
        self.down = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-outages", daemon=True)

    def start(self, started: float) -> None:
        self.started = started
        self._thread.start()

    def _run(self) -> None:
        try:
            for begin, end, mode in self.windows:
                if self._stop.wait(max(0.0, self.started + begin - time.monotonic())):
                    return
                self.services.skyportal_down(mode)
                self.down = True
                if self._stop.wait(max(0.0, self.started + end - time.monotonic())):
                    return
                self.services.skyportal_down(None)
                self.down = False
        finally:
            if self.down:
                self.services.skyportal_down(None)
                self.down = False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, value)`` points, per minute (0 with fewer than two)."""
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return 60.0 * sum((t - mean_t) * (v - mean_v) for t, v in points) / spread if spread else 0.0


def make_targets(count: int) -> list[BenchTarget]:
    """``count`` requests on distinct sources, each at its own position (ATLAS's tasks are told
    apart by it)."""
    return [BenchTarget(100_000 + i, f"STD{i:06d}", round((10.0 + 0.001 * i) % 360.0, 6), round(-30.0 + (i % 600) * 0.1, 6)) for i in range(count)]


@dataclass
class Checked:
    """What the run delivered, against what the gateway owed."""

    submissions: int = 0
    duplicate_tasks: int = 0
    retried: int = 0  # outbox messages that needed more than one attempt (the outages bit)
    completed: int = 0
    statuses: int = 0
    points: int = 0
    failures: list[str] = field(default_factory=list)


def check(store, services: Services, intake: Intake, targets: list[BenchTarget], metrics: dict) -> Checked:
    """Every accepted request submitted once, completed, and its outbox accepted by SkyPortal
    once each, in order; the outbox empty with nothing dead (the failures, if any)."""
    from sqlalchemy import func, select

    from facility_apis.gateway.models import HISTORY, OUTBOX

    result = Checked()
    failures = result.failures
    arrived = [t for t in targets if t.followup_id in intake.gateway_ids]
    if intake.refused:
        failures.append(f"the API refused {len(intake.refused)} request(s), e.g. {intake.refused[0]}")

    posts, positions = services.submissions()
    tasks = Counter((round(ra, 6), round(dec, 6)) for ra, dec in positions)
    result.submissions = posts
    result.duplicate_tasks = sum(count - 1 for count in tasks.values() if count > 1)
    if posts != len(arrived):
        failures.append(f"ATLAS received {posts} POST queue/ for {len(arrived)} requests")
    unsubmitted = [t.obj_id for t in arrived if tasks.get((t.ra, t.dec), 0) != 1]
    if unsubmitted:
        failures.append(f"{len(unsubmitted)} request(s) without exactly one ATLAS task, e.g. {unsubmitted[:5]}")

    states = request_states(store)
    result.completed = states.get("completed", 0)
    if result.completed != len(arrived) or sum(states.values()) != len(arrived):
        failures.append(f"{len(arrived)} requests arrived; by state: {states}")
    if metrics["outbox_backlog"] or metrics["outbox_dead"]:
        failures.append(f"outbox not emptied: backlog {metrics['outbox_backlog']}, dead {metrics['outbox_dead']}")

    owed: dict[int, list[tuple[str, str | int]]] = defaultdict(list)
    history: dict[int, list[str]] = defaultdict(list)
    with store.database.connection() as connection:
        for request_id, kind, body in connection.execute(select(OUTBOX.c.request_id, OUTBOX.c.kind, OUTBOX.c.body).order_by(OUTBOX.c.id)):
            owed[request_id].append(("status", body["new_status"]) if kind == "status" else ("photometry", len(body["mjd"])))
        for request_id, status in connection.execute(select(HISTORY.c.request_id, HISTORY.c.status).order_by(HISTORY.c.id)):
            history[request_id].append(status)
        result.retried = connection.scalar(select(func.count()).select_from(OUTBOX).where(OUTBOX.c.attempts > 1))
    got: dict[str, list[tuple[str, str | int]]] = defaultdict(list)
    wrong_ids = 0
    by_obj = {t.obj_id: t for t in arrived}
    for kind, obj_id, detail, followup_id in services.accepted():
        got[obj_id].append((kind, detail))
        if kind == "status" and (obj_id not in by_obj or followup_id != by_obj[obj_id].followup_id):
            wrong_ids += 1
    if wrong_ids:
        failures.append(f"{wrong_ids} status(es) reached SkyPortal for a request the benchmark did not make")
    mismatched, unlike_history, unfinished = [], [], []
    for t in arrived:
        request_id = intake.gateway_ids[t.followup_id]
        messages = got.get(t.obj_id, [])
        if messages != owed[request_id]:
            mismatched.append(t.obj_id)
        statuses = [detail for kind, detail in owed[request_id] if kind == "status"]
        if history[request_id][1:] != statuses:  # the first, "pending submission", is not sent
            unlike_history.append(t.obj_id)
        points = sum(detail for kind, detail in messages if kind == "photometry")
        if not (messages and messages[-1][0] == "status" and str(messages[-1][1]).startswith("complete:")) or points != ROWS:
            unfinished.append(t.obj_id)
        result.statuses += len(statuses)
        result.points += points
    if mismatched:
        failures.append(
            f"{len(mismatched)} request(s) whose messages SkyPortal accepted differ from their outbox (lost, repeated or reordered), e.g. {mismatched[:5]}"
        )
    if unlike_history:
        failures.append(f"{len(unlike_history)} request(s) whose outbox statuses differ from their history, e.g. {unlike_history[:5]}")
    if unfinished:
        failures.append(f"{len(unfinished)} request(s) without {ROWS} points and a final 'complete: ...' at SkyPortal, e.g. {unfinished[:5]}")
    strays = set(got) - set(by_obj)
    if strays:
        failures.append(f"SkyPortal accepted messages for {len(strays)} source(s) no accepted request is on")
    return result


def live_snapshot() -> tracemalloc.Snapshot:
    """The traced allocations still reachable: unreachable cycles (which the collector frees at
    its own pace) are collected first, so a difference of two snapshots is what was kept."""
    gc.collect()
    return tracemalloc.take_snapshot()


def short(filename: str) -> str:
    """A source file's name as a reader finds it: from the package (``facility_apis/...``,
    ``sqlalchemy/...``) or the standard library's."""
    for marker in ("site-packages/", "/work/", "lib/python"):
        if marker in filename:
            filename = filename.split(marker, 1)[-1]
    return filename.split("/", 1)[-1] if filename.startswith(("3.", "wt/", "main/")) else filename


def at_or_before(samples: list[Sample], t: float) -> Sample:
    return max((s for s in samples if s.at <= t), key=lambda s: s.at, default=samples[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=None, help="length of the steady load (default 600, --quick 12)")
    parser.add_argument("--rate", type=float, default=5.0, help="new requests per second (default 5)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the reference sample (default 20 %% of the run, 60 to half of it)")
    parser.add_argument("--sample", type=float, default=None, help="seconds between samples (default 2, --quick 0.25)")
    parser.add_argument("--outages", type=int, default=None, help="times SkyPortal goes down (default 4, --quick 2)")
    parser.add_argument("--outage-seconds", type=float, default=None, help="length of each outage (default 15, --quick 2)")
    parser.add_argument("--tracemalloc", action="store_true", help="trace allocations; print the lines that grew most after the warm-up")
    add_common_arguments(parser, poll_interval=1.0)
    parser.add_argument("--quick", action="store_true", help="12 s, two 2 s outages (smoke test)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (12.0 if args.quick else 600.0)
    warmup = args.warmup if args.warmup is not None else max(0.2 * seconds, min(60.0, 0.5 * seconds))
    interval = args.sample or (0.25 if args.quick else 2.0)
    outage_count = args.outages if args.outages is not None else (2 if args.quick else 4)
    outage_seconds = args.outage_seconds or (2.0 if args.quick else 15.0)
    if importlib.util.find_spec("psutil") is None:
        print("psutil is not installed (pip install -e '.[bench]'): gateway steady-load benchmark skipped")
        return 0
    if not 0 < warmup < seconds:
        parser.error("--warmup must be shorter than --seconds")

    from sqlalchemy.engine import make_url

    from facility_apis.gateway.api import make_app
    from facility_apis.gateway.outbox import Deliverer, DeliverySettings
    from facility_apis.gateway.runner import AppThread
    from facility_apis.gateway.worker import Worker, WorkerSettings

    targets = make_targets(int(seconds * args.rate) + 1)
    failures: list[str] = []
    with (
        Services(rows=ROWS, finish_after_reads=args.polls, latency=args.latency) as services,
        tempfile.TemporaryDirectory(prefix="fa-steady-") as scratch,
        database(args.database, scratch) as (url, options, label),
    ):
        services.add_requests(targets)
        store = make_store(url, options, args.poll_interval)
        try:
            token = store.clients.add("steady-intake")
            owner = store.clients.authenticate(token)
            store.allocations.put(owner, ALLOCATION_ID, "atlas", {"api_token": ATLAS_TOKEN}, instrument_id=INSTRUMENT_ID, group_ids=list(GROUP_IDS))
            config = {"atlas": {"base_url": services.atlas_url, "poll_interval": args.poll_interval}}
            if args.tracemalloc:
                tracemalloc.start(TRACE_FRAMES)
            app = AppThread(make_app(store, facility_config=config, egress=services.egress)).start()
            settings = WorkerSettings(concurrency=args.concurrency, default_limit=services.atlas_limit(args.concurrency), idle=0.2, egress=services.egress)
            worker = Worker(store, facility_config=config, settings=settings)
            deliverer = Deliverer.for_skyportal(store, services.skyportal_url, SKYPORTAL_TOKEN, settings=DeliverySettings(idle=0.2))
            loops = [threading.Thread(target=loop.run, name=f"bench-{name}", daemon=True) for name, loop in (("worker", worker), ("outbox", deliverer))]
            intake = Intake(app.url, token, targets, args.rate)
            outages = Outages(services, outage_count, outage_seconds, seconds)
            ports = {urlsplit(services.atlas_url).port: "ATLAS", urlsplit(services.skyportal_url).port: "SkyPortal", app.port: "API client"}
            if label == "PostgreSQL":
                ports[make_url(url).port or 5432] = "PostgreSQL"
            sampler = Sampler(store, intake, outages, interval, ports, app.port)
            snapshots = []
            drained = False
            try:
                for thread in loops:
                    thread.start()
                started = time.monotonic()
                for part in (sampler, intake, outages):
                    part.start(started)
                time.sleep(max(0.0, started + warmup - time.monotonic()))
                if args.tracemalloc:
                    snapshots.append(live_snapshot())
                time.sleep(max(0.0, started + seconds - time.monotonic()))
                sampler.stop()  # its last sample is the end of the load: before the intake's client closes
                intake.stop()
                if args.tracemalloc:
                    snapshots.append(live_snapshot())
                outages.stop()
                load_end = time.monotonic()
                drain_limit = 120.0 + 10 * outage_seconds
                while time.monotonic() - load_end < drain_limit:
                    if store.jobs.next_due() is None and not store.metrics()["outbox_backlog"]:
                        drained = True
                        break
                    time.sleep(0.2)
                drain_seconds = time.monotonic() - load_end
            finally:
                intake.stop()
                outages.stop()
                worker.stop()
                deliverer.stop()
                for thread in loops:
                    thread.join()
                worker.close()
                deliverer.close()
                app.stop()
                if args.tracemalloc:
                    tracemalloc.stop()
            metrics = store.metrics()
            checked = check(store, services, intake, targets, metrics)
        finally:
            store.close()

    failures += checked.failures
    if not drained:
        failures.append(f"the gateway had not drained {drain_limit:g} s after the load stopped")
    samples = [s for s in sampler.samples if s.at <= seconds + interval]
    reference, end = at_or_before(samples, warmup), samples[-1]
    after = [s for s in samples if s.at >= reference.at]
    rss_ratio = end.rss / reference.rss
    fds_ratio = end.fds / reference.fds
    rss_slope = slope_per_minute([(s.at, s.rss / MB) for s in after])
    fds_slope = slope_per_minute([(s.at, s.fds) for s in after])
    rss_met = rss_ratio <= TARGET_RSS_RATIO
    pools = {"ATLAS": args.concurrency, "SkyPortal": DeliverySettings().concurrency, "API server": CLIENTS}
    outside = {name: s.fds - sum(s.fd_kinds[pool] for pool in pools) for name, s in (("warm-up", reference), ("end", end))}
    pool_max = {pool: max(s.fd_kinds[pool] for s in after) for pool in pools}
    fds_met = outside["end"] <= outside["warm-up"] and all(pool_max[pool] <= size for pool, size in pools.items())

    print(
        f"gateway steady load: {args.rate:g} requests/s through the API for {seconds:g} s "
        f"({intake.arrived:,} arrived, {end.arrived / seconds:.2f}/s by its end), each "
        f"submitted, finished at status read {args.polls} ({args.poll_interval:g} s apart), {ROWS} points; SkyPortal down "
        f"{outage_count}× {outage_seconds:g} s (Python {sys.version.split()[0]}, {label}{', tracemalloc on' if args.tracemalloc else ''})"
    )
    print(f"  outages (s): {', '.join(f'{b:.0f}-{e:.0f} {m}' for b, e, m in outages.windows)}; warm-up {warmup:g} s; a sample every {interval:g} s")
    print("       t   RSS MB  Python blocks  C heap MB used/held  SQLite MB   fds  arrived  completed  followed  outbox  SkyPortal")
    step = max(interval, seconds / 20)
    decimals = 0 if step >= 10 else 1
    for mark in [k * step for k in range(int(seconds / step + 1e-9) + 1)]:
        s = at_or_before(samples, mark + 1e-6)
        print(
            f"  {s.at:6.{decimals}f}s {s.rss / MB:8.1f} {s.blocks:14,d} {s.malloc_used / MB:11.1f} /{s.malloc_held / MB:6.1f} {s.sqlite / MB:10.2f} {s.fds:5d} "
            f"{s.arrived:8,d} {s.completed:10,d} {s.followed:9,d} {s.backlog:7,d}  "
            f"{'down' if s.skyportal_down else 'up'}"
        )
    peak = max(after, key=lambda s: s.rss)
    print(
        f"  after the warm-up: RSS {reference.rss / MB:.1f} -> {end.rss / MB:.1f} MB (peak {peak.rss / MB:.1f} at {peak.at:.0f} s), "
        f"slope {rss_slope:+.3f} MB/min; fds {reference.fds} -> {end.fds} (max {max(s.fds for s in after)}), slope {fds_slope:+.2f} fds/min"
    )
    blocks_slope = slope_per_minute([(s.at, s.blocks) for s in after])
    print(
        f"  of which Python's allocator: {reference.blocks:,} -> {end.blocks:,} blocks (slope {blocks_slope:+,.0f}/min); "
        f"C heap in use {reference.malloc_used / MB:.1f} -> {end.malloc_used / MB:.1f} MB, held {reference.malloc_held / MB:.1f} -> "
        f"{end.malloc_held / MB:.1f} MB, of which SQLite's {reference.sqlite / MB:.2f} -> {end.sqlite / MB:.2f} MB; "
        f"compiled statements cached {reference.statements} -> {end.statements}"
    )
    print(
        f"  delivered: {checked.completed:,} completed, {checked.submissions:,} POST queue/ at ATLAS, SkyPortal accepted "
        f"{checked.statuses:,} statuses and {checked.points:,} points ({checked.retried:,} messages needed more than one attempt); "
        f"drained {drain_seconds:.1f} s after the load; outbox backlog {metrics['outbox_backlog']}, dead {metrics['outbox_dead']}"
    )
    for name, sample in (("end of the warm-up", reference), ("end", end)):
        print(f"  open fds at the {name}: " + ", ".join(f"{kind} {count}" for kind, count in sorted(sample.fd_kinds.items())))
    if len(snapshots) == 2:
        print("  tracemalloc, the allocations that grew most from the end of the warm-up to the end (outermost frame first):")
        for stat in snapshots[1].compare_to(snapshots[0], "traceback")[:15]:
            frames = " > ".join(f"{short(frame.filename)}:{frame.lineno}" for frame in stat.traceback)
            print(f"    {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {frames}")
    print(
        f"RSS end/warm-up: {rss_ratio:.3f}  ({end.rss / MB:.1f} / {reference.rss / MB:.1f} MB; target ≤ {TARGET_RSS_RATIO})  {'MET' if rss_met else 'MISSED'}"
    )
    print(
        f"open fds end/warm-up: {fds_ratio:.3f}  ({end.fds} / {reference.fds}; target: none more outside the connection pools "
        f"({outside['warm-up']} -> {outside['end']}), each pool within its size ("
        + ", ".join(f"{pool} {pool_max[pool]} ≤ {size}" for pool, size in pools.items())
        + f"))  {'MET' if fds_met else 'MISSED'}"
    )

    return report(
        failures,
        args.json_out,
        {
            "benchmark": "gateway_steady",
            "seconds": seconds,
            "rate": args.rate,
            "warmup": warmup,
            "outages": [list(window) for window in outages.windows],
            "arrived": intake.arrived,
            "refused": len(intake.refused),
            "submissions": checked.submissions,
            "duplicate_tasks": checked.duplicate_tasks,
            "completed": checked.completed,
            "statuses_delivered": checked.statuses,
            "points_delivered": checked.points,
            "delivery_retried": checked.retried,
            "outbox_backlog": metrics["outbox_backlog"],
            "outbox_dead": metrics["outbox_dead"],
            "drained": drained,
            "rss_mb": {"warmup": reference.rss / MB, "end": end.rss / MB, "peak": peak.rss / MB, "slope_per_min": rss_slope},
            "fds": {
                "warmup": reference.fds,
                "end": end.fds,
                "max": max(s.fds for s in after),
                "slope_per_min": fds_slope,
                "outside_pools": outside,
                "pool_max": pool_max,
                "pool_sizes": pools,
            },
            # seconds, RSS bytes, fds, Python blocks, SQLite bytes, C heap bytes in use, held
            "samples": [[round(s.at, 2), s.rss, s.fds, s.blocks, s.sqlite, s.malloc_used, s.malloc_held] for s in samples],
            "ratio": rss_ratio,
            "ratio_name": "RSS end/warm-up",
            "measured": f"{end.rss / MB:.1f} MB at the end",
            "baseline": f"{reference.rss / MB:.1f} MB after warm-up",
            "target": f"≤ {TARGET_RSS_RATIO}",
            "target_met": rss_met,
            "more": [
                {
                    "label": "open fds at the end",
                    "base_label": "open fds after warm-up",
                    "value": str(end.fds),
                    "baseline": str(reference.fds),
                    "ratio": fds_ratio,
                    "ratio_name": "fds end/warm-up",
                    "target": "none more outside the pools",
                    "target_met": fds_met,
                },
            ],
        },
    )


if __name__ == "__main__":
    sys.exit(main())
