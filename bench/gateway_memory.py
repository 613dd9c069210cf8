"""Gateway memory benchmark: resident memory growth of a worker holding 10,000 pending jobs.

10,000 ATLAS tasks (``--quick``: 300) are created already submitted in the ATLAS emulator (a child
process, like the SkyPortal stub, so neither counts here), and as many requests are inserted in
the gateway store with ``remote_id``: all due for polling at once. Then, in this process, the RSS
(``psutil``) is read after a ``gc.collect()`` — the baseline: interpreter, imports, store and the
emulators' clients — and one ``Worker`` (32 calls in flight) with its ``Deliverer`` beside it, as
``facility-apis serve`` runs them, works through the backlog for ``--seconds`` (default 60;
``--quick``: until drained). A sampler reads the RSS every 20 ms.

The worker claims at most as many jobs as it has free slots, so its memory should not follow the
backlog: the growth (peak RSS − baseline) should stay under 100 MB (the target), and the RSS
should level off while jobs keep completing. Prints the baseline, the peak, the growth, the RSS
every few seconds, and the jobs completed meanwhile. Exit 1 when a job failed (any state but
completed or still following), never for memory.

Usage: python bench/gateway_memory.py [--quick] [--jobs N] [--seconds S] [--polls N]
           [--concurrency N] [--no-deliverer] [--database sqlite|postgresql|URL] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys
import tempfile
import threading
import time

from gateway_common import SKYPORTAL_TOKEN, Services, add_common_arguments, add_requests, database, make_store, make_targets, report, request_states

TARGET_MB = 100.0
ROWS = 20
MB = 1024 * 1024


class RSSSampler:
    def __init__(self, interval: float = 0.02):
        import psutil

        self._process = psutil.Process()
        self.interval = interval
        self.peak = 0
        self.trace: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def rss(self) -> int:
        return self._process.memory_info().rss

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while True:
            rss = self.rss()
            self.peak = max(self.peak, rss)
            self.trace.append((time.monotonic() - self.started, rss))
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=None, help="pending jobs (default 10000, --quick 300)")
    parser.add_argument("--seconds", type=float, default=None, help="how long the worker runs (default 60; --quick: until drained)")
    parser.add_argument("--no-deliverer", action="store_true", help="run the worker alone")
    add_common_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="300 jobs, until drained (smoke test)")
    args = parser.parse_args(argv)
    jobs = args.jobs or (300 if args.quick else 10_000)
    seconds = args.seconds or (120.0 if args.quick else 60.0)

    if importlib.util.find_spec("psutil") is None:
        print("psutil is not installed (pip install -e '.[bench]'): gateway memory benchmark skipped")
        return 0
    from facility_apis.gateway.outbox import Deliverer, DeliverySettings
    from facility_apis.gateway.worker import Worker, WorkerSettings

    failures: list[str] = []
    with (
        Services(rows=ROWS, finish_after_reads=args.polls, latency=args.latency) as services,
        tempfile.TemporaryDirectory(prefix="fa-memory-") as scratch,
        database(args.database, scratch) as (url, options, label),
    ):
        store = make_store(url, options, args.poll_interval)
        try:
            setup = time.perf_counter()
            targets = make_targets(services, jobs, first_id=1, prefix="MEM")
            add_requests(store, targets)
            setup = time.perf_counter() - setup
            del targets
            due = store.metrics()["due"]
            reads_before = services.counters()["reads_allowed"]

            gc.collect()
            sampler = RSSSampler()
            baseline = sampler.rss()
            sampler.start()
            settings = WorkerSettings(concurrency=args.concurrency, default_limit=services.atlas_limit(args.concurrency), idle=0.2, egress=services.egress)
            worker = Worker(store, facility_config={"atlas": {"base_url": services.atlas_url, "poll_interval": args.poll_interval}}, settings=settings)
            deliverer = None
            if not args.no_deliverer:
                deliverer = Deliverer.for_skyportal(store, services.skyportal_url, SKYPORTAL_TOKEN, settings=DeliverySettings(idle=0.2))
            thread = threading.Thread(target=deliverer.run, name="bench-deliverer", daemon=True) if deliverer else None
            started = time.perf_counter()
            try:
                if thread:
                    thread.start()
                drained = worker.run_until_idle(seconds)
                elapsed = time.perf_counter() - started
            finally:
                if deliverer:
                    deliverer.stop()
                    thread.join()
                worker.close()
                if deliverer:
                    deliverer.close()
                sampler.stop()
            final = sampler.rss()
            reads = services.counters()["reads_allowed"] - reads_before
            states = request_states(store)
            metrics = store.metrics()
        finally:
            store.close()

    growth = (sampler.peak - baseline) / MB
    met = growth < TARGET_MB
    completed = states.get("completed", 0)
    following = sum(states.get(name, 0) for name in ("submitted", "queued", "running"))
    bad = {name: count for name, count in states.items() if name not in ("completed", "submitted", "queued", "running")}
    who = "1 worker" + ("" if args.no_deliverer else " + Deliverer")
    print(
        f"gateway memory: {jobs:,} pending ATLAS jobs ({due:,} due at the start; set up in {setup:.1f} s), {who} "
        f"({args.concurrency} in flight) for {elapsed:.1f} s{' (drained)' if drained else ''} "
        f"(Python {sys.version.split()[0]}, {label})"
    )
    print(f"  meanwhile: {reads:,} status reads ({reads / elapsed:.0f}/s), {completed:,} jobs completed, {following:,} still followed "
          f"(polled oldest-due first: every job is read once before any is read again); outbox backlog {metrics['outbox_backlog']:,}")
    step = max(1.0, round(elapsed / 12))
    marks, next_mark = [], 0.0
    for t, rss in sampler.trace:
        if t >= next_mark:
            marks.append(f"{t:.0f}s {(rss - baseline) / MB:+.1f}")
            next_mark += step
    print(f"  RSS growth over time (MB): {', '.join(marks)}")
    print(f"  RSS: baseline {baseline / MB:.1f} MB, peak {sampler.peak / MB:.1f} MB, at the end {final / MB:.1f} MB")
    print(f"RSS growth holding {jobs:,} jobs: {growth:.1f} MB  (target < {TARGET_MB:g} MB)  {'MET' if met else 'MISSED'}")
    if bad:
        failures.append(f"jobs ended other than completed: {bad}")
    if reads == 0:
        failures.append("the worker read no task status")
    if args.quick and not drained:
        failures.append(f"the backlog was not drained within {seconds:g} s")

    return report(
        failures,
        args.json_out,
        {
            "benchmark": "gateway_memory",
            "jobs": jobs,
            "seconds": elapsed,
            "completed": completed,
            "status_reads": reads,
            "baseline_mb": baseline / MB,
            "peak_mb": sampler.peak / MB,
            "growth_mb": growth,
            "ratio": growth / TARGET_MB,
            "ratio_name": "growth/100 MB",
            "measured": f"{growth:.1f} MB growth",
            "baseline": f"{baseline / MB:.1f} MB RSS before",
            "target": f"< {TARGET_MB:g} MB",
            "target_met": met,
        },
    )


if __name__ == "__main__":
    sys.exit(main())
