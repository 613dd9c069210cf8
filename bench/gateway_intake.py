"""Gateway intake benchmark: follow-up requests accepted over HTTP while a drain runs, against idle.

A poster process of its own sends N follow-up requests (default 2,000, ``--quick`` 60) to the
gateway's ``POST /api/followup_request``, 16 in flight (``--in-flight``), with the body the
package's SkyPortal classes send in gateway mode (``allocation_id``, ``followup_request_id``,
``obj_id``, ``target``, ``payload``, ``requester``), and records each request's latency (from
sending to the whole answer read, one keep-alive connection per slot). Twice:

- idle:   the gateway has nothing to follow;
- drain:  M ATLAS tasks (default 1,000, ``--quick`` 20) already submitted wait in the store, due
          at once, as in ``gateway_drain.py``; the gateway starts draining them as the poster
          starts. Only requests sent before the drain ended (every task completed and its
          messages delivered) count.

The gateway runs as real processes (``python -m facility_apis``, a JSON configuration file), in
the two deployments docs/gateway.md describes, each on a fresh database:

- one:    ``serve``: HTTP API, worker and outbox deliverer in one process (threads);
- split:  ``serve --no-worker`` (the API and a deliverer) and ``worker`` (worker and deliverer).

(``--deployments``: both by default, ``one`` with ``--quick``.)

The ATLAS emulator and the SkyPortal stub run in child processes (``gateway_common.py``). The
posted requests go to an ATLAS allocation of their own whose submissions ATLAS throttles for an
hour (the emulator's write throttle: no writes allowed, ``Retry-After: 3600``), so the worker
pauses that account after the first few 429s and follows only the drain: the intake is measured
against the drain's load, not against the posted requests' own.

Prints requests/s, p50 and p99 for both, and ``ratio p99 during drain / idle p99: X (target ≤ 3)``
for each deployment and database. Exit 1 unless every posted request was accepted exactly once
(HTTP 200 with an id; the rows in the database are exactly those ids, with their SkyPortal ids),
and every drain task completed and delivered (statuses and points at the stub, nothing dead).

Usage: python bench/gateway_intake.py [--quick] [--requests N] [--in-flight N] [--tasks N]
           [--deployments one,split] [--polls N] [--latency S] [--concurrency N]
           [--poll-interval S] [--database sqlite|postgresql|URL[,...]] [--timeout S]
           [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway_common import (
    ALLOCATION_ID,
    ATLAS_TOKEN,
    GROUP_IDS,
    INSTRUMENT_ID,
    PAYLOAD,
    SKYPORTAL_TOKEN,
    BenchTarget,
    Services,
    add_common_arguments,
    add_requests,
    database,
    delivered,
    make_store,
    make_targets,
    process_url,
    report,
)

TARGET_RATIO = 3.0  # p99 while a drain runs at most 3× the idle p99
ROWS = 20  # points in each drain task's result file
INTAKE_ALLOCATION = 2  # the posted requests' ATLAS allocation (its own account: its pause is its own)
DEPLOYMENTS = {
    "one": "one process: serve (API + worker + deliverer, threads)",
    "split": "two processes: serve --no-worker (API + deliverer) and worker",
}


# -- the poster (a process of its own) ---------------------------------------------------------


def _post_all(token: str, bodies: list[dict[str, Any]], in_flight: int, conn) -> None:  # runs in the child
    """Once told the gateway's URL, POST every body, ``in_flight`` at a time, once each (never
    retried: a POST that may have arrived is not sent again); send back ``[(sent at (UNIX
    seconds), seconds, HTTP status, id or None, error)]``."""
    import http.client
    from urllib.parse import urlsplit

    headers = {"Authorization": f"token {token}", "Content-Type": "application/json", "Accept": "application/json"}
    payloads = [json.dumps(body).encode("utf-8") for body in bodies]
    results: list[tuple[float, float, int, int | None, str | None] | None] = [None] * len(bodies)
    following = iter(range(len(bodies)))
    lock = threading.Lock()

    def post() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        while True:
            with lock:
                index = next(following, None)
            if index is None:
                break
            sent, started = time.time(), time.perf_counter()
            try:
                connection.request("POST", "/api/followup_request", body=payloads[index], headers=headers)
                response = connection.getresponse()
                text = response.read()
            except (OSError, http.client.HTTPException) as exc:
                results[index] = (sent, time.perf_counter() - started, 0, None, f"{type(exc).__name__}: {exc}")
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
                continue
            seconds = time.perf_counter() - started
            try:
                answer = json.loads(text)
            except ValueError:
                answer = None
            data = answer.get("data") if isinstance(answer, dict) else None
            ident = data.get("id") if isinstance(data, dict) else None
            error = None if response.status == 200 and isinstance(ident, int) else text[:300].decode("utf-8", "replace")
            results[index] = (sent, seconds, response.status, ident if isinstance(ident, int) else None, error)
        connection.close()

    conn.send("ready")
    parts = urlsplit(conn.recv())  # go, to this gateway
    threads = [threading.Thread(target=post, name=f"poster-{i}") for i in range(in_flight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    conn.send(results)


class Poster:
    """The poster process, started and ready (imports done, bodies encoded) before ``go(url)``."""

    def __init__(self, token: str, bodies: list[dict[str, Any]], in_flight: int):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_post_all, args=(token, bodies, in_flight, child), name="bench-poster", daemon=True)
        self._process.start()
        if not self._conn.poll(60) or self._conn.recv() != "ready":
            raise RuntimeError("the poster did not start")

    def go(self, url: str) -> None:
        self._conn.send(url)

    def results(self, timeout: float) -> list[tuple[float, float, int, int | None, str | None]]:
        if not self._conn.poll(timeout):
            self._process.terminate()
            raise RuntimeError(f"the poster did not finish within {timeout:g} s")
        results = self._conn.recv()
        self._process.join(10)
        return results


# -- the gateway's processes -----------------------------------------------------------------


class GatewayProcesses:
    """``python -m facility_apis serve`` (and ``worker`` for the split deployment) on one
    configuration file; their logs go to files in ``folder``."""

    def __init__(self, deployment: str, config: Path, environment: dict[str, str], folder: Path):
        self.deployment, self.config, self.environment, self.folder = deployment, config, environment, folder
        self.processes: list[subprocess.Popen] = []
        self.url = ""

    def _start(self, name: str, *verb: str) -> str:
        log = open(self.folder / f"{name}.log", "a", encoding="utf-8")  # noqa: SIM115 - the process holds it
        command = [sys.executable, "-m", "facility_apis", *verb, "--config", str(self.config)]
        # Run from the scratch folder (``-m`` would import a package in the working directory)
        # with the package this process imported first on the path: the code measured is ours.
        import facility_apis

        package_root = str(Path(facility_apis.__file__).resolve().parent.parent)
        environment = dict(self.environment, PYTHONPATH=os.pathsep.join(filter(None, [package_root, self.environment.get("PYTHONPATH")])))
        process = subprocess.Popen(command, env=environment, cwd=self.folder, stdout=subprocess.PIPE, stderr=log, text=True)
        log.close()
        self.processes.append(process)
        line = process.stdout.readline()
        if not line:
            process.wait(10)
            tail = (self.folder / f"{name}.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"{' '.join(verb)} did not start (exit {process.returncode}): " + " | ".join(tail))
        return line.strip()

    def start(self) -> str:
        """Start the processes; the API's URL once every one is ready."""
        if self.deployment == "one":
            self.url = self._start("serve", "serve").split()[-1]
        else:
            self.url = self._start("api", "serve", "--no-worker").split()[-1]
            self._start("worker", "worker")
        return self.url

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self) -> list[int]:
        """Stop them (SIGTERM, as a supervisor does); their exit statuses."""
        for process in self.processes:
            process.terminate()
        codes = []
        for process in self.processes:
            try:
                codes.append(process.wait(60))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait(10))
            process.stdout.close()
        self.processes = []
        return codes


def write_config(path: Path, url: str, services: Services, args: argparse.Namespace) -> None:
    """The gateway's configuration: the benchmark's database, the emulators, the drain's pace."""
    from urllib.parse import urlsplit

    origins = [f"{p.scheme}://{p.netloc}" for p in (urlsplit(services.atlas_url), urlsplit(services.skyportal_url))]
    poll = args.poll_interval
    document = {
        "database_url": url,
        "listen": {"address": "127.0.0.1", "port": 0},
        "skyportal": {"url": services.skyportal_url},
        "egress": {"allow": origins},
        "facilities": {"atlas": {"base_url": services.atlas_url, "poll_interval": poll, "concurrency": args.concurrency, **services.atlas_rates()}},
        "worker": {"concurrency": args.concurrency, "default_poll_seconds": poll, "backoff_base_seconds": poll, "backoff_cap_seconds": 10 * poll},
    }
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")


# -- figures ---------------------------------------------------------------------------------


@dataclass
class Phase:
    """The latencies of one posting run (seconds), and the requests/s over them."""

    count: int
    rate: float
    p50: float
    p99: float

    @classmethod
    def of(cls, results: list[tuple[float, float, int, int | None, str | None]]) -> Phase:
        if not results:
            return cls(0, 0.0, float("nan"), float("nan"))
        latencies = sorted(seconds for _, seconds, *_ in results)
        span = max(sent + seconds for sent, seconds, *_ in results) - min(sent for sent, *_ in results)
        return cls(len(latencies), len(latencies) / span if span > 0 else float("inf"), percentile(latencies, 50), percentile(latencies, 99))

    def line(self) -> str:
        return f"{self.count:,} requests, {self.rate:7.1f} requests/s, p50 {self.p50 * 1e3:7.1f} ms, p99 {self.p99 * 1e3:7.1f} ms"


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of sorted values."""
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def bodies_for(targets: list[BenchTarget]) -> list[dict[str, Any]]:
    """What the package's SkyPortal classes post in gateway mode (``skyportal/handoff.py``)."""
    return [
        {
            "allocation_id": INTAKE_ALLOCATION,
            "followup_request_id": t.followup_id,
            "obj_id": t.obj_id,
            "target": {"id": t.obj_id, "ra": t.ra, "dec": t.dec},
            "payload": dict(PAYLOAD),
            "requester": "bench",
        }
        for t in targets
    ]


def posted_targets(services: Services, count: int, *, first_id: int, prefix: str) -> list[BenchTarget]:
    """Requests SkyPortal knows (statuses of the throttled submissions are delivered to it)."""
    targets = [BenchTarget(first_id + i, f"{prefix}{i:06d}", (20.0 + 0.01 * i) % 360.0, -20.0 + (i % 400) * 0.1) for i in range(count)]
    services.add_requests(targets)
    return targets


def acceptance_failures(label: str, results, targets: list[BenchTarget], stored: dict[int, int | None]) -> list[str]:
    """Every posted request answered 200 with an id, ids distinct, and the stored rows of the
    intake allocation exactly those ids with their SkyPortal ids."""
    failures = []
    refused = [(i, status, error) for i, (_, _, status, ident, error) in enumerate(results) if status != 200 or ident is None]
    if refused:
        failures.append(f"{label}: {len(refused)} requests not accepted (e.g. #{refused[0][0]}: HTTP {refused[0][1]} {refused[0][2]})")
    answered = {ident: t.followup_id for t, (_, _, _, ident, _) in zip(targets, results, strict=True) if ident is not None}
    if len(answered) != sum(1 for r in results if r[3] is not None):
        failures.append(f"{label}: the same id answered for two requests")
    if answered != stored:
        extra = sorted(set(stored) - set(answered))[:5]
        missing = sorted(set(answered) - set(stored))[:5]
        wrong = sorted(i for i in set(answered) & set(stored) if answered[i] != stored[i])[:5]
        failures.append(
            f"{label}: stored rows differ from the answers: {len(stored)} rows for {len(answered)} ids (extra {extra}, missing {missing}, wrong {wrong})"
        )
    return failures


# -- one deployment on one database ----------------------------------------------------------


class DrainWatch:
    """Reads, on a plain connection of its own (no write lock taken on SQLite), whether the
    drain's requests are all completed with nothing left to deliver; notes when that happened."""

    def __init__(self, url: str, tasks: int):
        import sqlalchemy

        from facility_apis.gateway.models import OUTBOX, REQUESTS

        self._engine = sqlalchemy.create_engine(url)
        drain = REQUESTS.c.allocation_id == ALLOCATION_ID
        self._completed = sqlalchemy.select(sqlalchemy.func.count()).select_from(REQUESTS).where(drain, REQUESTS.c.state == "completed")
        self._owed = (
            sqlalchemy.select(sqlalchemy.func.count())
            .select_from(OUTBOX.join(REQUESTS, REQUESTS.c.id == OUTBOX.c.request_id))
            .where(drain, OUTBOX.c.delivered_at.is_(None), OUTBOX.c.dead.is_(False))
        )
        self._tasks = tasks
        self.ended_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="bench-drain-watch", daemon=True)

    def _done(self) -> bool:
        with self._engine.connect() as connection:
            return connection.execute(self._completed).scalar() == self._tasks and connection.execute(self._owed).scalar() == 0

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            if self._done():
                self.ended_at = time.time()
                return

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join()
        self._engine.dispose()
        return self.ended_at is not None


def measure(deployment: str, name: str, index: int, services: Services, scratch: Path, args: argparse.Namespace, requests: int, tasks: int):
    """Both phases on a fresh database; ``(label, figures, failures)``."""
    from sqlalchemy import select

    from facility_apis.gateway.crypto import generate_key
    from facility_apis.gateway.models import REQUESTS

    failures: list[str] = []
    folder = scratch / f"{deployment}-{index}"
    folder.mkdir()
    key = generate_key()
    with database(name, str(folder)) as (url, options, label):
        label = f"{deployment}, {label}"
        store = make_store(url, options, args.poll_interval, key=key)
        try:
            token = store.clients.add("intake")
            owner = store.clients.authenticate(token)
            store.allocations.put(owner, INTAKE_ALLOCATION, "atlas", {"api_token": ATLAS_TOKEN}, instrument_id=INSTRUMENT_ID, group_ids=list(GROUP_IDS))
            config = folder / "gateway.json"
            write_config(config, process_url(url, options), services, args)
            environment = dict(os.environ, FACILITY_APIS_SECRET_KEY=key, FACILITY_APIS_SKYPORTAL_TOKEN=SKYPORTAL_TOKEN)
            base = 1_000_000 * (index + 1)
            idle_targets = posted_targets(services, requests, first_id=base, prefix=f"IN{index}I-")
            drain_posted = posted_targets(services, requests, first_id=base + 200_000, prefix=f"IN{index}D-")
            drain_targets = make_targets(services, tasks, first_id=base + 400_000, prefix=f"DR{index}-")
            gateway = GatewayProcesses(deployment, config, environment, folder)

            # Idle: a freshly started gateway with nothing to follow.
            poster = Poster(token, bodies_for(idle_targets), args.in_flight)
            try:
                poster.go(gateway.start())
                idle_results = poster.results(args.timeout)
            finally:
                codes = gateway.stop()
            # Drain: the tasks wait in the store, due at once; the gateway (started afresh) drains
            # them from its start, and the poster starts as soon as it answers.
            add_requests(store, drain_targets)
            poster = Poster(token, bodies_for(drain_posted), args.in_flight)
            watch = DrainWatch(process_url(url, options), tasks)
            try:
                gateway_url = gateway.start()
                started = time.time()
                poster.go(gateway_url)
                watch.start()
                drain_results = poster.results(args.timeout)
                drained = watch.wait(args.timeout)
            finally:
                codes += gateway.stop()
            ended = watch.ended_at
            with store.database.connection() as connection:
                rows = connection.execute(select(REQUESTS.c.id, REQUESTS.c.followup_request_id).where(REQUESTS.c.allocation_id == INTAKE_ALLOCATION)).all()
            drain_states = _states(store, ALLOCATION_ID)
        finally:
            store.close()
    stored = {row.id: row.followup_request_id for row in rows}
    for phase, results, targets in ((f"{label}, idle", idle_results, idle_targets), (f"{label}, drain", drain_results, drain_posted)):
        mine = {t.followup_id for t in targets}
        failures += acceptance_failures(phase, results, targets, {i: f for i, f in stored.items() if f in mine})
    strays = [i for i, f in stored.items() if f not in {t.followup_id for t in idle_targets + drain_posted}]
    if strays:
        failures.append(f"{label}: {len(strays)} stored requests were never posted (e.g. {strays[:5]})")
    if any(code != 0 for code in codes):
        failures.append(f"{label}: a gateway process exited with status {codes} on SIGTERM")
    got = delivered(services, drain_targets, ROWS)
    if not drained or got.lost or drain_states.get("completed", 0) != tasks:
        not_completed = tasks - drain_states.get("completed", 0)
        failures.append(f"{label}: drain not finished: {not_completed} tasks not completed, {got.lost} not delivered (e.g. {got.missing[:5]})")
    during = [r for r in drain_results if ended is None or r[0] < ended]
    idle, busy = Phase.of(idle_results), Phase.of(during)
    ratio = busy.p99 / idle.p99 if idle.p99 > 0 else float("inf")
    figures = {
        "deployment": deployment,
        "database": label.split(", ")[1],
        "idle": vars(idle),
        "drain": vars(busy),
        "ratio": ratio,
        "target_met": ratio <= TARGET_RATIO,
        "posted": 2 * requests,
        "accepted": sum(1 for r in idle_results + drain_results if r[2] == 200 and r[3] is not None),
        "stored": len(stored),
        "drain_tasks": tasks,
        "drain_completed": drain_states.get("completed", 0),
        "drain_delivered": got.completed,
        "drain_seconds": (ended - started) if ended else None,
        "posted_during_drain": len(during),
    }
    return label, figures, failures


def _states(store, allocation_id: int) -> dict[str, int]:
    from sqlalchemy import func, select

    from facility_apis.gateway.models import REQUESTS

    with store.database.connection() as connection:
        rows = connection.execute(select(REQUESTS.c.state, func.count()).where(REQUESTS.c.allocation_id == allocation_id).group_by(REQUESTS.c.state)).all()
    return dict(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=None, help="requests posted in each phase (default 2000; --quick 60)")
    parser.add_argument("--in-flight", type=int, default=16, help="requests the poster has in flight at once (default 16)")
    parser.add_argument("--tasks", type=int, default=None, help="ATLAS tasks of the drain (default 1000; --quick 20)")
    parser.add_argument("--deployments", default=None, help="one, split or both, comma-separated (default one,split; --quick one)")
    add_common_arguments(parser, database_help="sqlite (default), postgresql, a URL, or several, comma-separated")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on a phase after this many seconds")
    parser.add_argument("--quick", action="store_true", help="60 requests, 20 tasks, one process (smoke test)")
    args = parser.parse_args(argv)
    requests = args.requests or (60 if args.quick else 2000)
    tasks = args.tasks or (20 if args.quick else 1000)
    deployments = [name.strip() for name in (args.deployments or ("one" if args.quick else "one,split")).split(",") if name.strip()]
    unknown = [name for name in deployments if name not in DEPLOYMENTS]
    if unknown or not deployments:
        parser.error(f"--deployments: {', '.join(unknown) or 'none given'}: choose among {', '.join(DEPLOYMENTS)}")
    databases = [name.strip() for name in args.database.split(",") if name.strip()]

    print(
        f"gateway intake: {requests:,} requests posted by another process, {args.in_flight} in flight, idle and while a drain of "
        f"{tasks:,} ATLAS tasks runs ({args.polls} status reads each, {args.latency * 1e3:g} ms a read; worker {args.concurrency} in flight); "
        f"Python {sys.version.split()[0]}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    failures: list[str] = []
    results: dict[str, dict] = {}
    # write_rate 0 over an hour: every ATLAS submission is refused with Retry-After: 3600, so the
    # posted requests' account is paused and the worker follows the drain only.
    services = Services(rows=ROWS, finish_after_reads=args.polls, latency=args.latency, write_rate=0, throttle_period=3600.0)
    with services, tempfile.TemporaryDirectory(prefix="fa-intake-") as scratch:
        index = 0
        for name in databases:
            for deployment in deployments:
                label, figures, problems = measure(deployment, name, index, services, Path(scratch), args, requests, tasks)
                index += 1
                results[label] = figures
                failures += problems
                idle, busy = Phase(**figures["idle"]), Phase(**figures["drain"])
                drain_time = f"{figures['drain_seconds']:.1f} s" if figures["drain_seconds"] else "not finished"
                print(f"  {label}: {DEPLOYMENTS[deployment]}")
                print(f"    idle   {idle.line()}")
                print(
                    f"    drain  {busy.line()}  ({figures['posted_during_drain']:,} of {requests:,} sent before the drain ended, in {drain_time}; "
                    f"{figures['drain_completed']:,}/{tasks:,} tasks completed, {figures['drain_delivered']:,} delivered)"
                )
                print(
                    f"    accepted {figures['accepted']:,} of {figures['posted']:,} posted; {figures['stored']:,} rows stored; "
                    f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
                )
                verdict = "MET" if figures["target_met"] else "MISSED"
                print(f"ratio p99 during drain / idle p99 ({label}): {figures['ratio']:.2f}  (target ≤ {TARGET_RATIO:g})  {verdict}", flush=True)

    first = next(iter(results.values()))
    return report(
        failures,
        args.json_out,
        {
            "benchmark": "gateway_intake",
            "requests": requests,
            "in_flight": args.in_flight,
            "tasks": tasks,
            "results": results,
            "measured": f"p99 {first['drain']['p99'] * 1e3:.0f} ms",
            "baseline": f"p99 {first['idle']['p99'] * 1e3:.0f} ms",
            "ratio": first["ratio"],
            "ratio_name": "drain p99/idle p99",
            "target": f"≤ {TARGET_RATIO:g}",
            "target_met": first["target_met"],
            "more": [
                {
                    "label": f"intake p99 during a drain ({label})",
                    "base_label": "idle intake p99",
                    "value": f"p99 {r['drain']['p99'] * 1e3:.0f} ms",
                    "baseline": f"p99 {r['idle']['p99'] * 1e3:.0f} ms",
                    "ratio": r["ratio"],
                    "ratio_name": "drain p99/idle p99",
                    "target": f"≤ {TARGET_RATIO:g}",
                    "target_met": r["target_met"],
                }
                for label, r in list(results.items())[1:]
            ],
        },
    )


if __name__ == "__main__":
    sys.exit(main())
