"""Gateway drain benchmark: one worker + Deliverer against a one-at-a-time polling loop.

N ATLAS tasks (default 1,000) are created already submitted in the ATLAS emulator, which answers
every status read after 20 ms and finishes a task at its 3rd status read
(``ATLASEmulator(finish_after_reads=3)``); the emulator and the SkyPortal stub each run in a child
process. Two sides, each with N tasks of its own, in this one run:

- baseline: a plain loop over the requests, one at a time, no sleeps: ``perform(facility, "get",
            request, transport)`` until the task is finished, delivering photometry
            (``PUT /api/photometry``) and each new status (``POST /api/facility``) straight away
            with a ``SkyPortalClient`` — no database;
- gateway:  the requests inserted in the gateway store already submitted (``remote_id`` = the
            task URL), then one ``Worker`` (32 calls in flight) and one ``Deliverer`` beside it,
            until no request owes a call and the outbox is empty.

Both start from "submitted" and end with every task completed and its photometry and statuses
received by the stub. Prints both times and ratio baseline/gateway (target ≥ 8: the worker at least
8× faster), the CPU seconds of this process each side used per task and their ratio gateway/
baseline (``time.process_time``; the emulators' processes are not counted; target ≤ 1.5: the
bookkeeping costs at most half the HTTP work again), the completed counts, and the statuses and
photometry points the stub received.
Exit 1 when a task is not completed or not delivered, on either side; timing is never enforced.

Usage: python bench/gateway_drain.py [--quick] [--tasks N] [--polls N] [--latency S]
           [--concurrency N] [--poll-interval S] [--database sqlite|postgresql|URL[,...]]
           [--json-out FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

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
    report,
    request_states,
    run_gateway,
)

TARGET_SPEEDUP = 8.0
TARGET_CPU = 1.5  # the gateway's CPU seconds per task at most 1.5× the one-at-a-time loop's
ROWS = 20  # points in each task's result file (every row becomes a point)


def baseline(services: Services, targets: list[BenchTarget], poll: float) -> tuple[float, int, float]:
    """Poll each task until it is finished, one at a time, delivering as we go; (seconds, polls,
    CPU seconds of this process)."""
    from facility_apis.core.interface import Allocation, FollowupRequest, Target
    from facility_apis.core.operations import perform
    from facility_apis.core.outcome import State
    from facility_apis.core.registry import default_registry
    from facility_apis.core.transport import Transport
    from facility_apis.skyportal.client import SkyPortalClient

    facility = default_registry().get("atlas")({"base_url": services.atlas_url, "poll_interval": poll}, egress=services.egress)
    allocation = Allocation(ALLOCATION_ID, {"api_token": ATLAS_TOKEN}, instrument_id=INSTRUMENT_ID, group_ids=GROUP_IDS)
    requests = [FollowupRequest(t.followup_id, Target(t.obj_id, t.ra, t.dec), allocation, PAYLOAD, remote_id=t.task_url) for t in targets]
    polls = 0
    with Transport(timeout=(5.0, 30.0), retries=1, egress=services.egress) as transport:
        client = SkyPortalClient(services.skyportal_url, SKYPORTAL_TOKEN, Transport(retries=0, timeout=(5.0, 30.0), egress=services.egress))
        started, cpu = time.perf_counter(), time.process_time()
        for target, request in zip(targets, requests, strict=True):
            status = "submitted"  # what the gateway's requests.add(remote_id=...) starts from
            for _ in range(100):
                outcome = perform(facility, "get", request, transport)
                polls += 1
                if outcome.state is State.THROTTLED or (outcome.state is State.FAILED and outcome.poll_after is not None):
                    continue  # transient: poll again (the gateway keeps the status too)
                if outcome.photometry is not None and len(outcome.photometry):
                    client.put_photometry(outcome.photometry.to_skyportal(target.obj_id, INSTRUMENT_ID, GROUP_IDS))
                if outcome.status != status:
                    status = outcome.status
                    client.post_status(target.followup_id, status)
                if not outcome.state.active:
                    break
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        client.transport.close()
    return elapsed, polls, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=None, help="tasks on each side (default 1000; --quick 20)")
    add_common_arguments(parser, database_help="sqlite (default), postgresql, a URL, or several, comma-separated")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on the gateway side after this many seconds")
    parser.add_argument("--quick", action="store_true", help="20 tasks (smoke test)")
    args = parser.parse_args(argv)
    tasks = args.tasks or (20 if args.quick else 1000)
    databases = [name.strip() for name in args.database.split(",") if name.strip()]

    failures: list[str] = []
    results: dict[str, dict] = {}
    with Services(rows=ROWS, finish_after_reads=args.polls, latency=args.latency) as services, tempfile.TemporaryDirectory(prefix="fa-drain-") as scratch:
        base_targets = make_targets(services, tasks, first_id=1, prefix="BASE")
        reads_before = services.counters()["reads_allowed"]
        base_seconds, _, base_cpu = baseline(services, base_targets, args.poll_interval)
        base_reads = services.counters()["reads_allowed"] - reads_before
        base = delivered(services, base_targets, ROWS)
        if base.lost:
            failures.append(f"baseline: {base.lost} tasks not completed or delivered (e.g. {base.missing[:5]})")

        print(
            f"gateway drain: {tasks:,} ATLAS tasks a side, each finished by its {args.polls} status reads, "
            f"{args.latency * 1e3:g} ms a read, {ROWS} points each (Python {sys.version.split()[0]})"
        )
        print(f"  baseline  {base_seconds:8.2f} s   one at a time, no sleeps: {base_reads:,} status reads; "
              f"completed {base.completed:,}/{tasks:,}; stub got {base.statuses:,} statuses, {base.points:,} points; "
              f"CPU {base_cpu:.2f} s ({base_cpu / tasks * 1e3:.2f} ms a task)")

        for index, name in enumerate(databases):
            with database(name, f"{scratch}") as (url, options, label):
                store = make_store(url, options, args.poll_interval)
                try:
                    targets = make_targets(services, tasks, first_id=100_000 * (index + 1), prefix=f"GW{index}-")
                    add_requests(store, targets)
                    reads_before = services.counters()["reads_allowed"]
                    cpu = time.process_time()
                    seconds, worked, emptied = run_gateway(store, services, concurrency=args.concurrency, poll=args.poll_interval, timeout=args.timeout)
                    cpu = time.process_time() - cpu
                    reads = services.counters()["reads_allowed"] - reads_before
                    states = request_states(store)
                    metrics = store.metrics()
                finally:
                    store.close()
            got = delivered(services, targets, ROWS)
            completed = states.get("completed", 0)
            speedup = base_seconds / seconds
            met = speedup >= TARGET_SPEEDUP
            cpu_ratio = cpu / base_cpu if base_cpu > 0 else float("inf")
            cpu_met = cpu_ratio <= TARGET_CPU
            results[label] = {
                "seconds": seconds, "speedup": speedup, "completed": completed, "delivered_completed": got.completed,
                "statuses": got.statuses, "points": got.points, "status_reads": reads, "target_met": met,
                "cpu_seconds": cpu, "cpu_ratio": cpu_ratio, "cpu_target_met": cpu_met,
            }  # fmt: skip
            print(f"  gateway   {seconds:8.2f} s   {label}, 1 worker ({args.concurrency} in flight) + Deliverer: {reads:,} status reads; "
                  f"completed {completed:,}/{tasks:,} (states {states}); stub got {got.statuses:,} statuses, {got.points:,} points"
                  f"; outbox backlog {metrics['outbox_backlog']}, dead {metrics['outbox_dead']}; CPU {cpu:.2f} s ({cpu / tasks * 1e3:.2f} ms a task)")
            target = f"target ≥ {TARGET_SPEEDUP:g} (the worker {TARGET_SPEEDUP:g}× faster)"
            print(f"ratio baseline/gateway ({label}): {speedup:.2f}  ({target})  {'MET' if met else 'MISSED'}")
            print(f"CPU per task gateway/baseline ({label}): {cpu_ratio:.2f}  (target ≤ {TARGET_CPU:g}: process CPU seconds per followed "
                  f"task, the same HTTP work with no bookkeeping as baseline)  {'MET' if cpu_met else 'MISSED'}")
            if not worked:
                failures.append(f"gateway ({label}): the worker did not finish within {args.timeout:g} s")
            if not emptied or metrics["outbox_backlog"] or metrics["outbox_dead"]:
                failures.append(f"gateway ({label}): outbox not emptied (backlog {metrics['outbox_backlog']}, dead {metrics['outbox_dead']})")
            if completed != tasks or got.lost:
                failures.append(f"gateway ({label}): {tasks - completed} tasks not completed, {got.lost} not delivered (e.g. {got.missing[:5]})")

    first = next(iter(results.values()))
    return report(
        failures,
        args.json_out,
        {
            "benchmark": "gateway_drain",
            "tasks": tasks,
            "polls": args.polls,
            "baseline_seconds": base_seconds,
            "baseline_cpu_seconds": base_cpu,
            "gateway": results,
            "median_ms": {"gateway": first["seconds"] * 1e3, "baseline": base_seconds * 1e3},
            "measured": f"{first['seconds']:.1f} s",
            "baseline": f"{base_seconds:.1f} s",
            "ratio": first["speedup"],
            "ratio_name": "baseline/gateway",
            "target": f"≥ {TARGET_SPEEDUP:g}",
            "target_met": first["target_met"],
            "more": [
                *(
                    {"label": f"worker+Deliverer drain ({label})", "base_label": "one-at-a-time loop", "value": f"{r['seconds']:.1f} s",
                     "baseline": f"{base_seconds:.1f} s", "ratio": r["speedup"], "ratio_name": "baseline/gateway",
                     "target": f"≥ {TARGET_SPEEDUP:g}", "target_met": r["target_met"]}
                    for label, r in list(results.items())[1:]
                ),
                *(
                    {"label": f"gateway CPU per task ({label})", "base_label": "loop's CPU per task", "value": f"{r['cpu_seconds'] / tasks * 1e3:.2f} ms",
                     "baseline": f"{base_cpu / tasks * 1e3:.2f} ms", "ratio": r["cpu_ratio"], "ratio_name": "gateway/baseline CPU",
                     "target": f"≤ {TARGET_CPU:g}", "target_met": r["cpu_target_met"]}
                    for label, r in results.items()
                ),
            ],
        },
    )


if __name__ == "__main__":
    sys.exit(main())
