"""Throttled drain benchmark: how much of ATLAS's read allowance two workers turn into polls.

The ATLAS emulator (in a child process) enforces DRF's sliding-window read throttle — 600 reads a
minute per user, 429 with ``Retry-After`` beyond — answers each status read after 20 ms and
finishes a task at its 3rd status read. N tasks (default 600: 1,800 reads, three full windows'
worth) are created already submitted, inserted in the gateway store with ``remote_id``, then
``Worker``s (32 calls in flight each, 32 allowed at ATLAS in all: the allowance and throttle
pauses are shared through the database) and one ``Deliverer`` run until every task is completed
and delivered to the SkyPortal stub: first one worker, then two on one database (``--workers``),
each drain against a fresh emulator. Each takes about two minutes: the first window's 600 reads
go out at once, then the workers must wait out the window and resume on time, twice.

The gateway is told the emulator's read rate (``read_rate``; ATLAS's documented 600 reads a
minute is its default), so the workers together keep to it and should meet no 429;
``--unknown-rate`` does not tell it, and the workers learn the rate from 429s (pauses, then a ramp).

A sampler reads the emulator's counter of allowed reads every 0.1 s. The achieved rate is the mean,
over every 60 s window lying inside the run (start to the last read, one window start every
0.1 s), of the reads allowed in that window, as a fraction of the allowed rate (target ≥ 0.9).
Because DRF's window slides, no 60 s window can hold more than 600 reads, so the free first burst
cannot inflate the figure (reads ÷ elapsed over a short run would); a worker that waits longer than
asked, or stalls after a 429, shows as windows with fewer reads. Also printed: the reads per
minute of run, the 429s of two workers against one worker's (target: no more), the most requests
ATLAS had at once, and the lost tasks. Exit 1 when a task is lost (not completed, or not
delivered) or ATLAS had more requests at once than allowed.

``--quick`` scales the window down (30 reads per 3 s, 30 tasks, 4 calls allowed at once) for the
smoke test: it checks that nothing is lost and that two workers stay within the 4; its fraction
suffers from ``Retry-After``'s whole seconds and means little.

Usage: python bench/gateway_throttled.py [--quick] [--tasks N] [--rate N] [--period S] [--workers N]
           [--unknown-rate] [--allowed N] [--polls N] [--latency S] [--concurrency N] [--database sqlite|postgresql|URL]
           [--json-out FILE]
"""

from __future__ import annotations

import argparse
import bisect
import math
import sys
import tempfile
import threading
import time

from gateway_common import (
    Services,
    add_common_arguments,
    add_requests,
    database,
    delivered,
    make_store,
    make_targets,
    open_again,
    report,
    request_states,
    run_gateway,
)

TARGET_FRACTION = 0.9
ROWS = 20


class Sampler:
    """Samples the emulator's allowed/throttled read counters every ``interval`` seconds."""

    def __init__(self, services: Services, interval: float = 0.1):
        self.services, self.interval = services, interval
        self.samples: list[tuple[float, int, int]] = []  # (seconds since start, allowed, throttled)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> None:
        self.started = time.monotonic()
        self._base = self.services.counters()
        self._thread.start()

    def _sample(self) -> None:
        counters = self.services.counters()
        self.samples.append(
            (
                time.monotonic() - self.started,
                counters["reads_allowed"] - self._base["reads_allowed"],
                counters["reads_throttled"] - self._base["reads_throttled"],
            )
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def allowed_at(self, t: float) -> int:
        """Reads allowed by time ``t`` (the last sample at or before it)."""
        index = bisect.bisect_right(self.times, t) - 1
        return self.samples[index][1] if index >= 0 else 0

    def analyse(self, period: float, step: float = 0.1) -> dict:
        self.times = [s[0] for s in self.samples]
        total = self.samples[-1][1]
        last_read = next((t for t, allowed, _ in self.samples if allowed == total), self.samples[-1][0])
        counts = []
        start = 0.0
        while start + period <= last_read + 1e-9:
            counts.append(self.allowed_at(start + period) - self.allowed_at(start))
            start += step
        # Samples come every ``interval`` from another process, so a window's count may hold reads
        # from just before its start. Counted from the first sample at or after the start instead,
        # it is a lower bound of the true count: only that bound above the limit is a fault.
        floors = []
        start = 0.0
        while start + period <= last_read + 1e-9:
            after = bisect.bisect_left(self.times, start)
            floors.append(self.allowed_at(start + period) - (self.samples[after][1] if after < len(self.samples) else total))
            start += step
        return {"total": total, "throttled": self.samples[-1][2], "last_read": last_read, "windows": counts, "window_floors": floors}


def run_phase(args, workers: int, tasks: int, rate: int, period: float, allowed: int) -> dict:
    """One drain of ``tasks`` tasks by ``workers`` workers on one database, against a fresh
    emulator (its throttle window starts empty); the figures and the correctness failures."""
    failures: list[str] = []
    timeout = 5 * tasks * args.polls / rate * period + 60
    with (
        Services(rows=ROWS, finish_after_reads=args.polls, latency=args.latency, read_rate=rate, throttle_period=period) as services,
        tempfile.TemporaryDirectory(prefix="fa-throttled-") as scratch,
        database(args.database, scratch) as (url, options, label),
    ):
        store = make_store(url, options, args.poll_interval)
        others = [open_again(store, url, options, args.poll_interval) for _ in range(workers - 1)]
        try:
            targets = make_targets(services, tasks, first_id=1, prefix="THR")
            add_requests(store, targets)
            sampler = Sampler(services)
            sampler.start()
            try:
                seconds, worked, emptied = run_gateway(
                    store, services, concurrency=args.concurrency, poll=args.poll_interval, timeout=timeout, allowed=allowed, others=others,
                    rate_known=not args.unknown_rate,
                )
            finally:
                sampler.stop()
            states = request_states(store)
            metrics = store.metrics()
        finally:
            for one in (store, *others):
                one.close()
        got = delivered(services, targets, ROWS)
        peak = services.counters()["max_in_flight"]

    figures = sampler.analyse(period)
    windows = figures["windows"]
    fraction = sum(windows) / len(windows) / rate if windows else 0.0
    completed = states.get("completed", 0)
    lost = max(tasks - completed, got.lost)
    name = f"{workers} worker{'s' if workers > 1 else ''}"
    per_minute = rate * 60.0 / period
    print(f"  {name} ({args.concurrency} in flight each, {allowed} allowed at ATLAS in all) + Deliverer: {seconds:.1f} s; "
          f"{figures['total']:,} reads allowed, {figures['throttled']:,} answered 429; last read at {figures['last_read']:.1f} s; "
          f"at most {peak} requests at ATLAS at once")
    spans = [
        str(sampler.allowed_at(k * period) - sampler.allowed_at((k - 1) * period))
        for k in range(1, math.ceil(figures["last_read"] / period + 1e-9) + 1)
    ]
    print(f"    reads in each {period:g} s of the run: {', '.join(spans)}")
    if windows:
        print(f"    reads in a {period:g} s window: mean {sum(windows) / len(windows):.1f}, min {min(windows)}, max {max(windows)} "
              f"(over {len(windows)} windows from 0 to {figures['last_read']:.1f} s); {fraction:.3f} of the allowed "
              f"{per_minute:g} reads/min")
        if max(figures["window_floors"]) > rate:
            failures.append(f"{name}: the emulator let at least {max(figures['window_floors'])} reads through in one window (limit {rate})")
    else:
        failures.append(f"{name}: the run ({figures['last_read']:.1f} s of reads) is shorter than one {period:g} s window: nothing measured")
    print(f"    lost tasks: {lost}  (completed {completed:,}/{tasks:,}, states {states}; delivered complete {got.completed:,}; "
          f"stub got {got.statuses:,} statuses, {got.points:,} points; outbox backlog {metrics['outbox_backlog']}, dead {metrics['outbox_dead']})")
    if peak > allowed:
        failures.append(f"{name}: ATLAS had {peak} requests at once, over the {allowed} allowed")
    if not worked:
        failures.append(f"{name}: the workers did not finish within {timeout:g} s")
    if not emptied or metrics["outbox_backlog"] or metrics["outbox_dead"]:
        failures.append(f"{name}: outbox not emptied (backlog {metrics['outbox_backlog']}, dead {metrics['outbox_dead']})")
    if lost:
        failures.append(f"{name}: {lost} tasks lost (e.g. {got.missing[:5]})")
    return {
        "label": label, "seconds": seconds, "reads_allowed": figures["total"], "reads_throttled": figures["throttled"],
        "fraction": fraction, "max_in_flight": peak, "lost": lost, "failures": failures,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=None, help="tasks (default 600, --quick 30)")
    parser.add_argument("--rate", type=int, default=None, help="reads allowed per period (default 600, --quick 30)")
    parser.add_argument("--period", type=float, default=None, help="the throttle window, seconds (default 60, --quick 3)")
    parser.add_argument("--workers", type=int, default=2, help="workers sharing the database in the second drain (default 2)")
    parser.add_argument("--allowed", type=int, default=None, help="ATLAS calls allowed at once, all workers together (default --concurrency, --quick 4)")
    parser.add_argument("--unknown-rate", action="store_true", help="do not tell the gateway the read rate: it learns it from 429s (pauses and ramps)")
    add_common_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="a 3 s window, 30 reads in it, 30 tasks, 4 calls at once (smoke test)")
    args = parser.parse_args(argv)
    tasks = args.tasks or (30 if args.quick else 600)
    rate = args.rate or (30 if args.quick else 600)
    period = args.period or (3.0 if args.quick else 60.0)
    allowed = args.allowed or (4 if args.quick else args.concurrency)
    per_minute = rate * 60.0 / period

    print(
        f"gateway throttled drain: {tasks:,} ATLAS tasks, each finished by its {args.polls} status reads, "
        f"{args.latency * 1e3:g} ms a read; ATLAS allows {rate} reads per {period:g} s ({per_minute:g}/min) per user "
        f"(Python {sys.version.split()[0]}); one worker, then {args.workers} sharing the database; the gateway "
        f"{'is not told the rate (it learns it from 429s)' if args.unknown_rate else 'is told the rate (read_rate, as for ATLAS by default)'}"
    )
    one = run_phase(args, 1, tasks, rate, period, allowed)
    many = run_phase(args, args.workers, tasks, rate, period, allowed)
    failures = one["failures"] + many["failures"]
    met = many["fraction"] >= TARGET_FRACTION
    fewer = many["reads_throttled"] <= one["reads_throttled"]
    print(f"fraction of the allowed read rate achieved ({args.workers} workers, {many['label']}): {many['fraction']:.3f}  "
          f"({many['fraction'] * per_minute:.0f} of {per_minute:g} reads/min; 1 worker: {one['fraction']:.3f}; "
          f"target ≥ {TARGET_FRACTION})  {'MET' if met else 'MISSED'}")
    print(f"429s with {args.workers} workers: {many['reads_throttled']}, with 1 worker: {one['reads_throttled']}  "
          f"(target: no more)  {'MET' if fewer else 'MISSED'}")
    print(f"lost tasks: {one['lost'] + many['lost']}")

    return report(
        failures,
        args.json_out,
        {
            "benchmark": "gateway_throttled",
            "tasks": tasks,
            "rate": rate,
            "period": period,
            "allowed": allowed,
            "workers": args.workers,
            "rate_known": not args.unknown_rate,
            "one_worker": {k: v for k, v in one.items() if k != "failures"},
            "many_workers": {k: v for k, v in many.items() if k != "failures"},
            "seconds": many["seconds"],
            "reads_allowed": many["reads_allowed"],
            "reads_throttled": many["reads_throttled"],
            "ratio": many["fraction"],
            "ratio_name": f"achieved/allowed read rate, {args.workers} workers",
            "measured": f"{many['fraction'] * per_minute:.0f} reads/min",
            "baseline": f"{per_minute:g} reads/min allowed",
            "target": f"≥ {TARGET_FRACTION}",
            "target_met": met,
            "lost": one["lost"] + many["lost"],
            "more": [
                {"label": f"429s, {args.workers} workers", "base_label": "429s, 1 worker", "value": str(many["reads_throttled"]),
                 "baseline": str(one["reads_throttled"]), "ratio": many["reads_throttled"] / max(one["reads_throttled"], 1),
                 "ratio_name": "429s, N workers/1", "target": "≤ 1", "target_met": fewer},
            ],
        },
    )


if __name__ == "__main__":
    sys.exit(main())
