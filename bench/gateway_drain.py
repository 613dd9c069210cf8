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

Worker processes (``--worker-processes N``, default 2; 0, and ``--quick`` unless given, skip it):
N more tasks drained on PostgreSQL (``$FACILITY_APIS_TEST_POSTGRES``) by one gateway worker
process, then by N, each drain against a fresh emulator, stub and schema; each process a ``Worker``
(32 calls in flight) and its ``Deliverer``, as ``facility-apis worker`` runs them
(``gateway_processes.py``); ATLAS allows ``--allowed`` calls at once in all (default 32), shared
through the database. Prints each drain's time, ``ratio 1 worker / N workers (PostgreSQL)``
(target ≥ 1.6 for two; 0.8 × N otherwise) and the CPU seconds each process, its PostgreSQL
backends, the emulator and the stub used, with the claims and each process's CPU by thread.
Skipped with a note when PostgreSQL is not reachable and the option was not given.

Exit 1 when a task is not completed or not delivered, on either side; with worker processes also
when a status or an upload reached the stub twice, or ATLAS had more calls at once than allowed
(counted by the emulator). Timing is never enforced.

Usage: python bench/gateway_drain.py [--quick] [--tasks N] [--polls N] [--latency S]
           [--concurrency N] [--poll-interval S] [--database sqlite|postgresql|URL[,...]]
           [--worker-processes N] [--allowed N] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time

from gateway_common import (
    ALLOCATION_ID,
    ATLAS_TOKEN,
    GROUP_IDS,
    INSTRUMENT_ID,
    PAYLOAD,
    POSTGRES_URL,
    SKYPORTAL_TOKEN,
    BenchTarget,
    Services,
    add_common_arguments,
    add_requests,
    database,
    delivered,
    make_store,
    make_targets,
    postgresql_reachable,
    report,
    request_states,
    run_gateway,
)

TARGET_SPEEDUP = 8.0
TARGET_CPU = 1.5  # the gateway's CPU seconds per task at most 1.5× the one-at-a-time loop's
TARGET_PROCESSES = 1.6  # two worker processes drain at least 1.6× as fast as one (0.8 × N for N)
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
                    for upload in outcome.photometry.uploads(target.obj_id, INSTRUMENT_ID, GROUP_IDS):
                        client.put_photometry(upload)
                if outcome.status != status:
                    status = outcome.status
                    client.post_status(target.followup_id, status)
                if not outcome.state.active:
                    break
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        client.transport.close()
    return elapsed, polls, cpu


def _cpu_seconds(pids) -> dict[int, float]:
    """User + system CPU seconds of each process that can be read (psutil), by pid."""
    try:
        import psutil
    except ImportError:
        return {}
    seconds = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        seconds[pid] = times.user + times.system
    return seconds


def processes_drain(count: int, tasks: int, args, scratch: str) -> tuple[dict, list[str]]:
    """The drain of ``tasks`` tasks by ``count`` worker processes (each a ``Worker`` and its
    ``Deliverer``, see ``gateway_processes.py``) on a fresh PostgreSQL schema, against a fresh
    emulator and stub: its figures and its failures (a task lost or delivered twice, ATLAS's
    allowance exceeded)."""
    from gateway_processes import ProcessSpec, WorkerProcesses

    from facility_apis.gateway.crypto import generate_key

    failures: list[str] = []
    name = f"{count} worker process{'es' if count > 1 else ''}"
    allowed = args.allowed or args.concurrency
    with Services(rows=ROWS, finish_after_reads=args.polls, latency=args.latency) as services, database(POSTGRES_URL, scratch) as (url, options, label):
        key = generate_key()
        store = make_store(url, options, args.poll_interval, key)
        try:
            targets = make_targets(services, tasks, first_id=1, prefix="WP")
            add_requests(store, targets)
            limit = services.atlas_limit(allowed)
            spec = ProcessSpec(url, options, key, services.atlas_url, services.skyportal_url, args.concurrency, limit, args.poll_interval, 0.2, args.timeout)
            with WorkerProcesses(count, spec) as processes:
                emulators = {"atlas": services.atlas.pid, "skyportal": services.skyportal.pid}
                before = _cpu_seconds(emulators.values())
                reads_before = services.counters()["reads_allowed"]
                seconds, results = processes.run()
                after = _cpu_seconds(emulators.values())
                backends = _cpu_seconds(pid for result in results for pid in result.backends)
            counters = services.counters()
            states = request_states(store)
            metrics = store.metrics()
        finally:
            store.close()
        got = delivered(services, targets, ROWS)
        statuses, _ = services.received(targets)
        uploads = services.uploads()
    completed = states.get("completed", 0)
    reads = counters["reads_allowed"] - reads_before
    # Delivered twice: a status the stub received right after the same one; an upload received again.
    repeated_statuses = sum(1 for got_statuses in statuses.values() for a, b in itertools.pairwise(got_statuses) if a == b)
    repeated_uploads = sum(max(0, uploads.get(t.obj_id, 0) - 1) for t in targets)
    cpu = {
        "workers": sum(result.cpu_seconds for result in results),
        "postgresql": sum(backends.values()) if backends else None,
        **{kind: after[pid] - before[pid] if pid in before and pid in after else None for kind, pid in emulators.items()},
    }
    figures = {
        "processes": count, "seconds": seconds, "completed": completed, "delivered_completed": got.completed,
        "statuses": got.statuses, "points": got.points, "uploads": sum(uploads.get(t.obj_id, 0) for t in targets),
        "repeated_statuses": repeated_statuses, "repeated_uploads": repeated_uploads, "status_reads": reads,
        "max_in_flight": counters["max_in_flight"], "allowed": allowed, "calls": [result.calls for result in results],
        "cpu_seconds": cpu, "process_cpu_seconds": [result.cpu_seconds for result in results],
    }  # fmt: skip
    known = [value for value in cpu.values() if value is not None]
    print(
        f"  {name:<20} {seconds:8.2f} s   {label}, {args.concurrency} in flight each, {allowed} allowed at ATLAS in all: "
        f"calls {' + '.join(f'{result.calls:,}' for result in results)}; {reads:,} status reads; at most {counters['max_in_flight']} at ATLAS at once; "
        f"completed {completed:,}/{tasks:,}; stub got {got.statuses:,} statuses ({repeated_statuses} repeated), {got.points:,} points in "
        f"{figures['uploads']:,} uploads ({repeated_uploads} repeated); outbox backlog {metrics['outbox_backlog']}, dead {metrics['outbox_dead']}"
    )
    print(
        f"  {'':<20} CPU seconds over the drain: worker processes {cpu['workers']:.1f} "
        f"({', '.join(f'{result.cpu_seconds:.1f}' for result in results)}), their PostgreSQL backends {_seconds(cpu['postgresql'])}, "
        f"ATLAS emulator {_seconds(cpu['atlas'])}, SkyPortal stub {_seconds(cpu['skyportal'])}: {sum(known):.1f} of the "
        f"{(os.cpu_count() or 1) * seconds:.1f} the {os.cpu_count()} cores had (load average now {_load()})"
    )
    for result in results:
        roles = ", ".join(f"{role} {seconds:.1f}" for role, seconds in sorted((result.thread_cpu or {}).items()))
        print(f"  {'':<20} process {result.index}: {result.claims:,} claims ({result.empty_claims:,} empty), CPU by thread: {roles or 'n/a'}")
    for result in results:
        if not result.finished or not result.emptied:
            failures.append(f"{name}: process {result.index} did not see the queue drained and the outbox emptied within {args.timeout:g} s")
    if metrics["outbox_backlog"] or metrics["outbox_dead"]:
        failures.append(f"{name}: outbox not emptied (backlog {metrics['outbox_backlog']}, dead {metrics['outbox_dead']})")
    if completed != tasks or got.lost:
        failures.append(f"{name}: {tasks - completed} tasks not completed, {got.lost} not delivered (e.g. {got.missing[:5]})")
    if repeated_statuses or repeated_uploads:
        failures.append(f"{name}: delivered twice: {repeated_statuses} statuses, {repeated_uploads} photometry uploads")
    if counters["max_in_flight"] > allowed:
        failures.append(f"{name}: ATLAS had {counters['max_in_flight']} requests at once, {allowed} allowed")
    return figures, failures


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def compare_processes(count: int, tasks: int, args, scratch: str) -> tuple[dict, list[str]]:
    """One worker process against ``count`` of them, each drain on its own fresh emulator and
    database: the figures of both, the ratio of their times, and the failures of either."""
    target = TARGET_PROCESSES if count == 2 else 0.8 * count
    print(f"worker processes on PostgreSQL: {tasks:,} tasks, drained by 1 worker process, then by {count} (each a Worker and its Deliverer)")
    one, failures = processes_drain(1, tasks, args, scratch)
    many, more_failures = processes_drain(count, tasks, args, scratch)
    ratio = one["seconds"] / many["seconds"]
    met = ratio >= target
    cores = os.cpu_count() or 1
    bound_one, bound_many = _cpu_bound_seconds(one, cores), _cpu_bound_seconds(many, cores)
    print(
        f"  CPU-bound: the drain by 1 worker process needs about {bound_one:.1f} s, by {count} {bound_many:.1f} s on {cores} idle cores "
        f"(the busiest process on one core, or all the CPU seconds above spread over the cores): a ratio of {bound_one / bound_many:.2f} "
        f"where CPU alone bounds both"
    )
    print(f"ratio 1 worker / {count} workers (PostgreSQL): {ratio:.2f}  (target ≥ {target:g})  {'MET' if met else 'MISSED'}")
    figures = {"one": one, "many": many, "ratio": ratio, "target": target, "target_met": met, "cpu_bound_ratio": bound_one / bound_many}
    return figures, failures + more_failures


def _cpu_bound_seconds(drain: dict, cores: int) -> float:
    """About the least time a drain's CPU seconds allow on ``cores`` idle cores: its busiest worker
    process runs on one core at a time (one interpreter lock), and everything it measured
    (worker processes, PostgreSQL backends, emulator, stub) shares the cores."""
    total = sum(value for value in drain["cpu_seconds"].values() if value is not None)
    return max(max(drain["process_cpu_seconds"]), total / cores)


def processes_row(compared: dict) -> dict:
    """``compare_processes``'s figure as a row of ``run_all.py``'s summary."""
    count = compared["many"]["processes"]
    return {
        "label": f"{count} worker processes' drain (PostgreSQL)", "base_label": "1 worker process",
        "value": f"{compared['many']['seconds']:.1f} s", "baseline": f"{compared['one']['seconds']:.1f} s", "ratio": compared["ratio"],
        "ratio_name": f"1 worker / {count} workers", "target": f"≥ {compared['target']:g}", "target_met": compared["target_met"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=None, help="tasks on each side (default 1000; --quick 20)")
    add_common_arguments(parser, database_help="sqlite (default), postgresql, a URL, or several, comma-separated")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on the gateway side after this many seconds")
    parser.add_argument("--quick", action="store_true", help="20 tasks (smoke test)")
    parser.add_argument(
        "--worker-processes", type=int, default=None,
        help="also drain the tasks on PostgreSQL with 1 worker process, then N (default 2; 0: not; --quick: 0)",
    )  # fmt: skip
    parser.add_argument("--allowed", type=int, default=None, help="ATLAS calls allowed at once, all worker processes together (default --concurrency)")
    args = parser.parse_args(argv)
    tasks = args.tasks or (20 if args.quick else 1000)
    worker_processes = args.worker_processes if args.worker_processes is not None else (0 if args.quick else 2)
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

        compared = None
        if worker_processes > 1:
            if args.worker_processes is None and not postgresql_reachable():
                print(f"worker processes: skipped, PostgreSQL at {POSTGRES_URL} is not reachable")
            else:
                compared, more_failures = compare_processes(worker_processes, tasks, args, scratch)
                failures += more_failures

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
                *([processes_row(compared)] if compared else []),
            ],
            **({"worker_processes": compared} if compared else {}),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
