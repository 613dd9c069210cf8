"""Shared set-up of the gateway benchmarks (``gateway_drain.py``, ``gateway_throttled.py``,
``gateway_memory.py``); not a benchmark itself.

The ATLAS emulator and the SkyPortal stub each run in a child process of their own, as the real
services run on other machines: they must not share the measured process's interpreter lock (nor
its memory, for the memory benchmark). The parent drives them through a pipe: create tasks
directly in the emulator (already submitted, as if ``POST queue/`` had been answered), register
follow-up requests in the stub, read the emulator's throttle counters, collect what SkyPortal
received.

Emulator behaviour shared by the benchmarks: every ``GET queue/<id>/`` is answered after
``latency`` seconds (the loopback server's ``latency`` fault) and a task finishes at its
``finish_after_reads``-th status read (``ATLASEmulator(finish_after_reads=N)``), so a loop that
polls without pausing and a worker that paces its polls meet the same task lives.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ATLAS_TOKEN = "atlas-bench-token-0123456789"
ATLAS_USER = "bench"
SKYPORTAL_TOKEN = "skyportal-bench-token-0123456789"
SKYPORTAL_ACL = "Post from FacilityMessageListener"
INSTRUMENT_ID = 1
GROUP_IDS = (1,)
ALLOCATION_ID = 1
#: ATLAS request payload of every benchmark request (a month of data; the emulator ignores it).
PAYLOAD = {"start_date": "2025-01-01", "end_date": "2025-01-31"}
#: The emulator's throttle rate that stands for none (the drains measure the gateway, not ATLAS's allowance).
UNTHROTTLED = 10**9
POSTGRES_URL = os.environ.get("FACILITY_APIS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# -- the child processes ---------------------------------------------------------------------


def _serve(kind: str, options: dict[str, Any], conn) -> None:  # runs in the child process
    from facility_apis.testing import ATLASEmulator, SkyPortalStub
    from facility_apis.testing.atlas import mjd_of
    from facility_apis.testing.atlas_fields import task_fields

    if kind == "atlas":
        server = ATLASEmulator(
            tokens={ATLAS_TOKEN: ATLAS_USER},
            rows=options["rows"],
            max_queued=10**9,
            write_rate=options["write_rate"],
            read_rate=options["read_rate"],
            throttle_period=options["throttle_period"],
            finish_after_reads=options["finish_after_reads"],
        )
    else:
        server = SkyPortalStub(tokens={SKYPORTAL_TOKEN: {SKYPORTAL_ACL}})
    with server:
        if kind == "atlas" and options["latency"] > 0:
            server.faults.add("latency", count=10**12, path_prefix="/forcedphot/queue/", method="GET", seconds=options["latency"])
        conn.send(server.base_url if kind == "atlas" else server.url)
        while True:
            command, args = conn.recv()
            if command == "stop":
                conn.send(None)
                return
            if command == "create_tasks":  # [(ra, dec), ...] -> task URLs
                now_mjd = mjd_of(time.time())
                urls = []
                for ra, dec in args:
                    fields = task_fields({"ra": ra, "dec": dec, "mjd_min": now_mjd - 30, "mjd_max": now_mjd, "send_email": False}, now_mjd)
                    urls.append(server.create_task(ATLAS_USER, fields)["url"])
                conn.send(urls)
            elif command == "counters":
                conn.send(
                    {
                        "reads_allowed": server.reads_allowed,
                        "reads_throttled": server.reads_throttled,
                        "requests": len(server._requests),
                        "max_in_flight": server.max_in_flight,
                    }
                )
            elif command == "add_requests":  # [(followup_request_id, obj_id, ra, dec), ...]
                for followup_id, obj_id, ra, dec in args:
                    server.add_source(obj_id, ra, dec)  # found by id: the stub's object check stays O(1)
                    server.add_request(followup_id, obj_id=obj_id, instrument_id=INSTRUMENT_ID)
                conn.send(None)
            elif command == "down":  # SkyPortal or ATLAS failing every request ("drop" or "503") until "down" None
                server.down(args) if args else server.up()
                conn.send(None)
            elif command == "submitted":  # -> (POST queue/ received, (ra, dec) of every task)
                posts = sum(1 for r in server.requests if r.method == "POST" and r.path == "/forcedphot/queue/")
                with server._lock:
                    positions = [(task.fields["ra"], task.fields["dec"]) for task in server._tasks.values()]
                conn.send((posts, positions))
            elif command == "accepted":  # -> every message the stub accepted, in order: (kind, obj_id, detail, followup id)
                conn.send([tuple(message) for message in server.accepted()])
            elif command == "received":  # (followup ids, obj ids) -> statuses by id, points by object
                ids, obj_ids = args
                wanted = set(obj_ids)
                with server._lock:  # one pass over the stored points (photometry(obj) is a scan each)
                    points = Counter(p["obj_id"] for p in server._points.values() if p["obj_id"] in wanted)
                conn.send(({i: server.statuses(i) for i in ids}, {o: points.get(o, 0) for o in obj_ids}))
            elif command == "uploads":  # photometry uploads (PUT /api/photometry) received, by object
                uploads = Counter(
                    json.loads(r.body)["obj_id"] for r in server.requests if r.method == "PUT" and r.path == "/api/photometry"
                )
                conn.send(dict(uploads))
            else:
                conn.send(ValueError(f"unknown command {command!r}"))


class _Child:
    """One emulator in a child process, driven through a pipe (thread-safe)."""

    def __init__(self, kind: str, options: dict[str, Any]):
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=_serve, args=(kind, options, child_conn), name=f"bench-{kind}", daemon=True)
        self._process.start()
        self._lock = threading.Lock()
        if not self._conn.poll(60):
            raise RuntimeError(f"the {kind} emulator did not start")
        self.url: str = self._conn.recv()

    @property
    def pid(self) -> int:
        return self._process.pid

    def call(self, command: str, args: Any = None) -> Any:
        with self._lock:
            self._conn.send((command, args))
            answer = self._conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(Exception):
                self.call("stop")
            self._process.join(15)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)


class Services:
    """The ATLAS emulator and the SkyPortal stub, each in its own child process."""

    def __init__(
        self,
        *,
        rows: int = 20,
        finish_after_reads: int = 3,
        latency: float = 0.02,
        read_rate: int = UNTHROTTLED,
        write_rate: int = UNTHROTTLED,
        throttle_period: float = 60.0,
    ):
        self.read_rate, self.write_rate, self.throttle_period = read_rate, write_rate, throttle_period
        self.atlas = _Child(
            "atlas",
            {
                "rows": rows,
                "finish_after_reads": finish_after_reads,
                "latency": latency,
                "read_rate": read_rate,
                "write_rate": write_rate,
                "throttle_period": throttle_period,
            },
        )
        try:
            self.skyportal = _Child("skyportal", {})
        except BaseException:
            self.atlas.close()
            raise

    @property
    def atlas_url(self) -> str:
        return self.atlas.url

    @property
    def skyportal_url(self) -> str:
        return self.skyportal.url

    @property
    def egress(self):
        """The egress policy the benchmark's calls need: the two emulators, on loopback."""
        from facility_apis.core.egress import EgressPolicy

        return EgressPolicy.allowing(self.atlas_url, self.skyportal_url)

    def atlas_rates(self, *, rate_known: bool = True) -> dict[str, list | None]:
        """The emulator's own throttles as the gateway's ``read_rate``/``write_rate`` settings
        (``[calls, seconds]``), as an admin configures ATLAS's real ones (the default is ATLAS's
        documented 600 reads and 60 writes a minute); ``None`` where it has none (or allows
        nothing), or when not ``rate_known``: the gateway then learns the rate from 429s."""
        rates = {"read_rate": self.read_rate, "write_rate": self.write_rate}
        return {key: [calls, self.throttle_period] if rate_known and 0 < calls < UNTHROTTLED else None for key, calls in rates.items()}

    def atlas_limit(self, concurrency: int, *, rate_known: bool = True):
        """The allowance to give the gateway's workers for this emulator: ``concurrency`` calls at
        once and ``atlas_rates``."""
        from facility_apis.gateway.pacing import RATE_KEYS, FacilityLimit, Rate

        rates = self.atlas_rates(rate_known=rate_known)
        return FacilityLimit(concurrency=concurrency, rates={RATE_KEYS[key]: None if rate is None else Rate(*rate) for key, rate in rates.items()})

    def create_tasks(self, coordinates: list[tuple[float, float]]) -> list[str]:
        """Tasks already submitted to ATLAS; their URLs (the gateway's ``remote_id``)."""
        urls: list[str] = []
        for start in range(0, len(coordinates), 2000):
            urls += self.atlas.call("create_tasks", coordinates[start : start + 2000])
        return urls

    def counters(self) -> dict[str, int]:
        return self.atlas.call("counters")

    def add_requests(self, targets: list[BenchTarget]) -> None:
        self.skyportal.call("add_requests", [(t.followup_id, t.obj_id, t.ra, t.dec) for t in targets])

    def received(self, targets: list[BenchTarget]) -> tuple[dict[int, list[str]], dict[str, int]]:
        return self.skyportal.call("received", ([t.followup_id for t in targets], [t.obj_id for t in targets]))

    def uploads(self) -> dict[str, int]:
        """Photometry uploads the stub received, counted by object: a repeated delivery shows
        here, though SkyPortal's ``PUT`` stores its points once."""
        return self.skyportal.call("uploads")
    def skyportal_down(self, mode: str | None) -> None:
        """SkyPortal fails every request from now on (``"drop"`` the connection or answer
        ``"503"``), or answers again (``None``)."""
        self.skyportal.call("down", mode)

    def submissions(self) -> tuple[int, list[tuple[float, float]]]:
        """``POST queue/`` requests ATLAS received, and the position (ra, dec) of every task it holds."""
        return self.atlas.call("submitted")

    def accepted(self) -> list[tuple[str, str, str | int, int | None]]:
        """Every message SkyPortal accepted, in order: ``(kind, obj_id, detail, followup id)``
        (``SkyPortalStub.accepted``)."""
        return self.skyportal.call("accepted")

    def close(self) -> None:
        self.skyportal.close()
        self.atlas.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchTarget:
    """One follow-up request of a benchmark: SkyPortal's id and source, and its ATLAS task URL."""

    followup_id: int
    obj_id: str
    ra: float
    dec: float
    task_url: str = ""


def make_targets(services: Services, count: int, *, first_id: int, prefix: str) -> list[BenchTarget]:
    """``count`` requests known to SkyPortal, each with a task already submitted to ATLAS."""
    coordinates = [((10.0 + 0.01 * i) % 360.0, -30.0 + (i % 600) * 0.1) for i in range(count)]
    urls = services.create_tasks(coordinates)
    targets = [
        BenchTarget(first_id + i, f"{prefix}{i:06d}", ra, dec, url) for i, ((ra, dec), url) in enumerate(zip(coordinates, urls, strict=True))
    ]
    services.add_requests(targets)
    return targets


@dataclass
class Delivered:
    """What SkyPortal holds for a set of requests."""

    completed: int  # requests whose last status SkyPortal received starts with "complete"
    statuses: int
    points: int
    missing: list[int]  # followup ids not completed, or with no photometry

    @property
    def lost(self) -> int:
        return len(self.missing)


def delivered(services: Services, targets: list[BenchTarget], points_per_task: int) -> Delivered:
    statuses, points = services.received(targets)
    missing = [
        t.followup_id
        for t in targets
        if not (statuses[t.followup_id] and statuses[t.followup_id][-1].startswith("complete:")) or points[t.obj_id] != points_per_task
    ]
    completed = sum(1 for t in targets if statuses[t.followup_id] and statuses[t.followup_id][-1].startswith("complete:"))
    return Delivered(completed, sum(len(s) for s in statuses.values()), sum(points.values()), missing)


# -- the gateway's side ----------------------------------------------------------------------


@contextlib.contextmanager
def database(url: str | None, scratch: str) -> Iterator[tuple[str, dict[str, Any], str]]:
    """``(url, engine options, label)`` of an empty database: a SQLite file in ``scratch`` by
    default; for a PostgreSQL URL, a fresh schema there (dropped afterwards)."""
    if not url or url == "sqlite":
        yield f"sqlite:///{os.path.join(scratch, 'gateway.db')}", {}, "SQLite"
        return
    if url == "postgresql":
        url = POSTGRES_URL
    if not url.startswith("postgresql"):
        yield url, {}, url.split(":", 1)[0]
        return
    import sqlalchemy

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield url, {"connect_args": {"options": f"-csearch_path={schema}"}}, "PostgreSQL"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def postgresql_reachable(url: str = POSTGRES_URL) -> bool:
    """Whether the PostgreSQL server at ``url`` answers (the benchmarks' default server)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            return True
    except Exception:  # noqa: BLE001 - any failure to reach it
        return False
    finally:
        engine.dispose()


def process_url(url: str, options: dict[str, Any]) -> str:
    """``url`` and the engine ``options`` of ``database()`` as one URL, for a gateway started as a
    process of its own (``facility-apis serve --database-url``): a PostgreSQL schema's
    ``search_path`` travels as libpq's ``options`` parameter."""
    from urllib.parse import quote

    extra = (options.get("connect_args") or {}).get("options")
    return f"{url}{'&' if '?' in url else '?'}options={quote(extra)}" if extra else url


def make_store(url: str, options: dict[str, Any], poll: float, key: str | None = None):
    """A gateway store whose schedule polls every ``poll`` seconds and retries as quickly, its
    credentials sealed with ``key`` (default: a fresh one)."""
    from facility_apis.gateway.crypto import SecretBox, generate_key
    from facility_apis.gateway.policy import Schedule
    from facility_apis.gateway.store import Store

    store = Store(url, SecretBox(key or generate_key()), schedule=Schedule(default_poll=poll, backoff_base=poll, backoff_cap=10 * poll), **options)
    owner = store.clients.authenticate(store.clients.add("bench"))
    store.allocations.put(owner, ALLOCATION_ID, "atlas", {"api_token": ATLAS_TOKEN}, instrument_id=INSTRUMENT_ID, group_ids=list(GROUP_IDS))
    return store


def add_requests(store, targets: list[BenchTarget]) -> None:
    """Each target as a gateway request already submitted (``remote_id``): due for its first poll."""
    from facility_apis.core.interface import Target

    now = time.time()
    for t in targets:
        store.requests.add(ALLOCATION_ID, Target(t.obj_id, t.ra, t.dec), PAYLOAD, followup_request_id=t.followup_id, remote_id=t.task_url, now=now)


def open_again(store, url: str, options: dict[str, Any], poll: float):
    """Another store on ``store``'s database, as another worker process would open it."""
    from facility_apis.gateway.policy import Schedule
    from facility_apis.gateway.store import Store

    return Store(url, store.box, schedule=Schedule(default_poll=poll, backoff_base=poll, backoff_cap=10 * poll), create=False, **options)


def run_gateway(
    store, services: Services, *, concurrency: int, poll: float, timeout: float, idle: float = 0.2, allowed: int | None = None, others=(),
    rate_known: bool = True,
):  # fmt: skip
    """One worker (``concurrency`` calls in flight; ATLAS allowed ``allowed`` at once, default
    all of them; its read rate told unless not ``rate_known``: ``Services.atlas_limit``) and one
    Deliverer running beside it, until no request owes a call and the outbox is empty;
    ``others``: stores of more workers on the same database, each run in a thread of its own with
    the same settings (the allowance is shared by all). Returns ``(seconds, every worker
    finished, outbox emptied)``."""
    from facility_apis.gateway.outbox import Deliverer, DeliverySettings
    from facility_apis.gateway.worker import Worker, WorkerSettings

    limit = services.atlas_limit(allowed or concurrency, rate_known=rate_known)
    settings = WorkerSettings(concurrency=concurrency, default_limit=limit, idle=idle, egress=services.egress)
    config = {"atlas": {"base_url": services.atlas_url, "poll_interval": poll}}
    workers = [Worker(one, facility_config=config, settings=settings) for one in (store, *others)]
    finished = [False] * len(workers)

    def work(index: int) -> None:
        finished[index] = workers[index].run_until_idle(timeout)

    extra = [threading.Thread(target=work, args=(i,), name=f"bench-worker-{i}", daemon=True) for i in range(1, len(workers))]
    deliverer = Deliverer.for_skyportal(store, services.skyportal_url, SKYPORTAL_TOKEN, settings=DeliverySettings(idle=idle))
    thread = threading.Thread(target=deliverer.run, name="bench-deliverer", daemon=True)
    try:
        started = time.perf_counter()
        thread.start()
        for other in extra:
            other.start()
        deadline = time.monotonic() + timeout
        work(0)
        for other in extra:
            other.join(max(1.0, deadline - time.monotonic()))
        deliverer.stop()
        thread.join()
        emptied = deliverer.run_until_empty(max(1.0, deadline - time.monotonic()))
        elapsed = time.perf_counter() - started
    finally:
        deliverer.stop()
        thread.join()
        for worker in workers:
            worker.close()
        deliverer.close()
    return elapsed, all(finished), emptied


def request_states(store) -> dict[str, int]:
    """Gateway requests by state."""
    return dict(store.metrics()["requests"].get("atlas", {}))


def add_common_arguments(parser, *, database_help: str = "sqlite (default), postgresql or a URL", poll_interval: float = 0.05) -> None:
    """The options every gateway benchmark shares: the emulated task lives, the worker, the store
    (``poll_interval``: the default of ``--poll-interval``, seconds)."""
    parser.add_argument("--polls", type=int, default=3, help="status reads after which a task is finished (default 3)")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds before ATLAS answers a status read (default 0.02)")
    parser.add_argument("--concurrency", type=int, default=32, help="worker calls in flight (default 32)")
    parser.add_argument("--poll-interval", type=float, default=poll_interval, help=f"the worker's ATLAS poll interval, seconds (default {poll_interval:g})")
    parser.add_argument("--database", default="sqlite", help=database_help)
    parser.add_argument("--json-out", help="also write the figures to this JSON file")


def report(failures: list[str], json_out: str | None, figures: dict) -> int:
    """Print the failures, write ``figures`` (with them) to ``json_out`` if asked; the exit code."""
    for failure in failures:
        print(f"FAIL: {failure}")
    if json_out:
        with open(json_out, "w", encoding="utf-8") as handle:
            json.dump({**figures, "failures": failures}, handle, indent=2)
    return 1 if failures else 0
