"""Import-time benchmark: what does ``import facility_apis`` (and its core) cost?

Each measurement runs in a fresh interpreter (``sys.executable -c ...``) that times the import
statement alone with ``time.perf_counter`` (interpreter start-up is excluded). Three statements are
measured, interleaved round by round so that machine load drifts hit all of them alike:

- ``package``:  ``import facility_apis``
- ``core``:     ``import facility_apis.core.registry, facility_apis.core.interface``
- ``baseline``: ``import requests, jsonschema`` (the third-party libraries the core needs anyway)

It prints the median of each in ms and the ratio core/baseline (target ≤ 1.5). Timing is reported,
never enforced: the exit status is 0 whatever the ratio.

It also checks a correctness property: after ``import facility_apis`` and after importing the core,
no module of ``facility_apis.facilities`` (the package itself or anything under it) may be in
``sys.modules`` — facilities load lazily from the registry. If one is, the script exits 1.

Usage: python bench/import_time.py [--quick] [--repeat N] [--json-out FILE] [--importtime]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

TARGET_RATIO = 1.5
FACILITIES = "facility_apis.facilities"

STATEMENTS = {
    "package": "import facility_apis",
    "core": "import facility_apis.core.registry, facility_apis.core.interface",
    "baseline": "import requests, jsonschema",
}

# Runs inside the child: time the import statement alone, then report what got imported.
CHILD = """\
import json, sys, time
_t0 = time.perf_counter()
{statement}
_t1 = time.perf_counter()
print(json.dumps({{
    "ms": (_t1 - _t0) * 1e3,
    "facility_modules": sorted(
        name for name in sys.modules if name == {facilities!r} or name.startswith({facilities!r} + ".")
    ),
}}))
"""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # No PYTHONPATH games or warnings noise; keep the installed (editable) package resolution.
    env.pop("PYTHONSTARTUP", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.pop("PYTHONWARNINGS", None)
    return env


def measure_once(statement: str, cwd: str, *, importtime: bool = False) -> dict:
    """One fresh interpreter; ``{"ms": float, "facility_modules": [...], "importtime": str}``."""
    argv = [sys.executable]
    if importtime:
        argv += ["-X", "importtime"]
    argv += ["-c", CHILD.format(statement=statement, facilities=FACILITIES)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=_child_env(), timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"`{statement}` failed in a fresh interpreter:\n{done.stderr.strip()}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["importtime"] = done.stderr
    return result


def importtime_top(stderr: str, prefix: str = "facility_apis", top: int = 8) -> list[tuple[int, int, str]]:
    """(self µs, cumulative µs, module) of the slowest modules named ``prefix*`` in -X importtime output."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        try:
            self_us, cumulative_us, name = (part.strip() for part in line[len("import time:") :].split("|"))
            rows.append((int(self_us), int(cumulative_us), name))
        except ValueError:
            continue
    mine = [row for row in rows if row[2].strip().startswith(prefix)]
    return sorted(mine, key=lambda row: row[0], reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=None, help="fresh interpreters per statement (default 15)")
    parser.add_argument("--quick", action="store_true", help="3 repetitions (smoke test)")
    parser.add_argument("--json-out", help="also write the figures to this JSON file")
    parser.add_argument("--importtime", action="store_true", help="also show -X importtime for facility_apis modules")
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 15)

    # A neutral working directory, so `''` on sys.path cannot shadow the installed package.
    cwd = tempfile.mkdtemp(prefix="fa-bench-import-")
    times: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    leaks: dict[str, set[str]] = {name: set() for name in STATEMENTS}

    # Warm-up: byte-compile everything once, untimed.
    for statement in STATEMENTS.values():
        measure_once(statement, cwd)
    for _ in range(repeat):
        for name, statement in STATEMENTS.items():  # interleaved rounds
            result = measure_once(statement, cwd)
            times[name].append(result["ms"])
            leaks[name].update(result["facility_modules"])

    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["core"] / medians["baseline"]
    package_ratio = medians["package"] / medians["baseline"]

    print(f"import time, median of {repeat} fresh interpreters ({sys.executable}, Python {sys.version.split()[0]})")
    for name, statement in STATEMENTS.items():
        values = times[name]
        print(
            f"  {name:<9} {medians[name]:8.1f} ms   (min {min(values):.1f}, max {max(values):.1f})   {statement}"
        )
    met = ratio <= TARGET_RATIO
    print(f"ratio core/baseline: {ratio:.2f}  (target ≤ {TARGET_RATIO})  {'MET' if met else 'MISSED'}")
    print(f"ratio package/baseline: {package_ratio:.3f}  (informational)")

    if args.importtime:
        result = measure_once(STATEMENTS["core"], cwd, importtime=True)
        print("  -X importtime, facility_apis modules by self time (µs self | µs cumulative | module):")
        for self_us, cumulative_us, module in importtime_top(result["importtime"]):
            print(f"    {self_us:8d} | {cumulative_us:8d} | {module}")
    shutil.rmtree(cwd, ignore_errors=True)

    ok = True
    for name in ("package", "core"):
        leaked = sorted(leaks[name])
        if leaked:
            ok = False
            print(f"FAIL: after `{STATEMENTS[name]}`, facility module(s) imported: {', '.join(leaked)}")
        else:
            print(f"ok: after `{STATEMENTS[name]}`, no {FACILITIES} module in sys.modules")

    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "benchmark": "import_time",
                    "repeat": repeat,
                    "median_ms": medians,
                    "ratio": ratio,
                    "ratio_name": "core/baseline",
                    "target": f"≤ {TARGET_RATIO}",
                    "target_met": met,
                    "no_facility_modules": ok,
                },
                handle,
                indent=2,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
