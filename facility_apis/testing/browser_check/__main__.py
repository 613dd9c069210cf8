"""``python -m facility_apis.testing.browser_check``: run the check, print what it found, exit 0
(nothing unexpected), 1 (failures) or 2 (cannot run here)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ...core.errors import UnknownFacility
from . import SCREENSHOTS, Report, missing_tools, run


def _print(report: Report) -> None:
    print("browser check: " + ", ".join(f"{name} {version}" for name, version in report.versions.items()))
    for form in report.forms:
        untouched = form["untouched"] or {}
        print(
            f"  {form['facility']:<12} {form['form']:<8} {form['mode']:<10} {form['submissions']:>4} submissions, "
            f"{form['agreed']:>4} agreed; untouched: browser {untouched.get('browser')}, python {untouched.get('python')}"
        )
    for finding in report.expected:
        print(f"  expected: {finding}")
    for name, state in report.screenshots.items():
        if state != "unchanged":
            print(f"  screenshot {state}: docs/_static/forms/{name} (commit it)")
    print(
        f"browser check: {len({f['facility'] for f in report.forms})} facilities, {len(report.forms)} forms x modes, "
        f"{sum(f['submissions'] for f in report.forms)} submissions, {len(report.expected)} expected disagreements, "
        f"{len(report.failures)} failures in {report.seconds:.1f} s "
        f"(browser {report.browser_seconds:.1f} s, {report.workers} page{'s' if report.workers != 1 else ''} at once)"
    )
    for failure in report.failures:
        print(f"FAIL {failure}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m facility_apis.testing.browser_check",
        description="Render and submit every facility form in SkyPortal's form renderer; compare with the package (docs/browser-check.md).",
    )
    parser.add_argument("--facility", action="append", metavar="NAME", help="check only this facility (repeatable)")
    parser.add_argument("--report", type=Path, metavar="FILE", help="also write the whole report as JSON")
    parser.add_argument("--no-screenshots", action="store_true", help="take no pictures")
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        print("browser check: cannot run here, missing " + "; ".join(missing), file=sys.stderr)
        return 2
    try:
        report = run(names=args.facility, screenshots=None if args.no_screenshots else SCREENSHOTS)
    except UnknownFacility as exc:
        print(f"browser check: {exc}", file=sys.stderr)
        return 2
    if args.report:
        args.report.write_text(json.dumps(report.as_json(), indent=1))
    _print(report)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
