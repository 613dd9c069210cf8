"""Run every benchmark in ``bench/`` and print a summary table of ratios against their baselines.

A script may report more than one figure (``more`` in its JSON: the drain's CPU per task and its
other databases, the throttled drain's 429s, the parse's memory): each is a row of its own.

Each benchmark runs as its own process (its full output is shown first), so one cannot warm the
other up. Exit status: non-zero when a benchmark fails (e.g. ``import facility_apis`` imported a
facility module, or the gateway lost a task); missed timing targets are reported, not failed.
The full run takes about 25 minutes (the gateway benchmarks: ~3.5 min drain with its worker
processes, ~4.5 min throttled, ~1.5 min memory, ~4 min intake, 10 min steady load); ``--quick``
one to two minutes.

Usage: python bench/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    # script, label of the measured figure, label of its baseline, keys in median_ms (None: the
    # script writes its figures as text, "measured" and "baseline" in its JSON)
    ("import_time.py", "import core", "import requests, jsonschema", ("core", "baseline")),
    ("atlas_parse.py", "ATLAS read+parse_results", "pandas.read_csv+conversion", ("ours", "pandas")),
    ("gateway_drain.py", "worker+Deliverer drain", "one-at-a-time loop", None),
    ("gateway_throttled.py", "reads/min under 429s", "allowed reads/min", None),
    ("gateway_memory.py", "RSS growth, job backlog", "RSS before the worker", None),
    ("gateway_intake.py", "intake p99 during a drain", "idle intake p99", None),
    ("gateway_steady.py", "RSS after steady load", "RSS after warm-up", None),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and rows (smoke test)")
    args = parser.parse_args(argv)

    rows = []
    status = 0
    with tempfile.TemporaryDirectory(prefix="fa-bench-") as scratch:
        for script, ours_label, base_label, keys in BENCHMARKS:
            out = os.path.join(scratch, script + ".json")
            command = [sys.executable, str(HERE / script), "--json-out", out] + (["--quick"] if args.quick else [])
            print(f"$ {' '.join(command[1:2] + command[4:])}", flush=True)
            code = subprocess.call(command)
            print(flush=True)
            if code != 0:
                status = status or code
            if not os.path.exists(out):  # skipped (e.g. no pandas) or failed before reporting
                rows.append((script, ours_label, base_label, "-", "-", "-", "-", "-", "skipped" if code == 0 else f"FAILED ({code})"))
                continue
            with open(out, encoding="utf-8") as handle:
                figures = json.load(handle)
            verdict = "met" if figures["target_met"] else "MISSED"
            if code != 0:
                verdict += f", FAILED ({code})"
            if "measured" in figures:
                value, base_value = figures["measured"], figures["baseline"]
            else:
                medians = figures["median_ms"]
                value, base_value = f"{medians[keys[0]]:.1f} ms", f"{medians[keys[1]]:.1f} ms"
            rows.append(
                (
                    script,
                    ours_label,
                    base_label,
                    value,
                    base_value,
                    f"{figures['ratio']:.2f}",
                    figures.get("ratio_name", ""),
                    figures["target"],
                    verdict,
                )
            )
            for more in figures.get("more", ()):  # the script's other figures, each against its own baseline
                ratio = f"{more['ratio']:.2f}" if isinstance(more["ratio"], float) else str(more["ratio"])
                verdict = "-" if more["target_met"] is None else "met" if more["target_met"] else "MISSED"  # None: informational
                rows.append(("", more["label"], more["base_label"], more["value"], more["baseline"], ratio, more["ratio_name"], more["target"], verdict))

    header = ("benchmark", "measured", "baseline", "value", "baseline value", "ratio", "ratio of", "target", "result")
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    print("summary (figures of the same run; 'ratio of' names each ratio)" + (" [--quick]" if args.quick else ""))
    for row in (header, *rows):
        print("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return status


if __name__ == "__main__":
    sys.exit(main())
