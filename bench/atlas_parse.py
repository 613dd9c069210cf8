"""ATLAS result parsing benchmark: ``parse_results`` against what a pandas user would write instead.

Writes a deterministic (seeded) ATLAS forced photometry result file — by default 100,000 rows with
the columns of a current ATLAS file (``###MJD m dm uJy duJy F err chi/N RA Dec x y maj min phi
apfit mag5sig PA_DEG Sky Obs``), a mix of ``c``/``o`` points, many low-SNR points, negative fluxes
and a few ``NaN`` — to a temporary file, then times, in this one process and interleaved round by
round:

- ours:   read the file + ``facility_apis.facilities.atlas.results.parse_results(text)``, i.e. read,
          parse and conversion to SkyPortal photometry (detections, upper limits, filters);
- pandas: ``pandas.read_csv(path, sep=r"\\s+", usecols=...)`` (the columns the conversion needs)
          + a vectorised numpy conversion by the same rules to the same ``Photometry`` columns
          (``pandas_photometry``): the same work, as a pandas user would write it;
- read:   ``pandas.read_csv`` alone, as above (informational: the part of the baseline that reads).

It prints the median (and best) of each, the ratio ours/pandas (target ≤ 1.0: ours no slower),
and the peak traced memory (``tracemalloc``) of one read + parse of ours, also as a multiple of the
file's size (target ≤ 3). Correctness: every point of ours is compared, bit for bit, with a plain
row-by-row conversion of the file by the same rules (``reference``), and with the baseline's (so
both do the same work); a difference exits 1. Timing and memory are reported, never enforced.
Without pandas it says so and exits 0.

Usage: python bench/atlas_parse.py [--quick] [--rows N] [--repeat N] [--seed S] [--keep FILE]
                                   [--json-out FILE] [--profile]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import statistics
import struct
import sys
import tempfile
import time
import tracemalloc

TARGET_RATIO = 1.0
TARGET_MEMORY = 3.0  # peak traced memory of read + parse, in file sizes
HEADER = (
    "###MJD", "m", "dm", "uJy", "duJy", "F", "err", "chi/N", "RA", "Dec", "x", "y",
    "maj", "min", "phi", "apfit", "mag5sig", "PA_DEG", "Sky", "Obs",
)  # fmt: skip


def generate(rows: int, seed: int = 20240601) -> str:
    """The text of a realistic ATLAS result file of ``rows`` measurements (deterministic)."""
    rng = random.Random(seed)
    ra0, dec0 = 150.123456, -20.654321
    true_ujy = {"c": 220.0, "o": 170.0}  # a faint transient: many points are low SNR
    lines = ["  ".join(HEADER)]
    mjd = 57230.0
    for n in range(rows):
        mjd += rng.uniform(0.0005, 0.02) if n % 4 else rng.uniform(0.3, 2.5)  # 4 exposures a visit
        band = "o" if rng.random() < 0.6 else "c"
        sky = rng.gauss(19.8 if band == "o" else 20.3, 0.5)
        mag5sig = sky - rng.uniform(0.9, 1.6)
        duJy = max(1, round(10 ** (-0.4 * (mag5sig - 23.9)) / 5.0 * rng.uniform(0.9, 1.1)))
        uJy = round(rng.gauss(true_ujy[band] if rng.random() < 0.5 else 0.0, duJy))
        if rng.random() < 0.02:  # outliers / bad subtractions
            uJy = round(rng.gauss(0, 20 * duJy))
        if uJy != 0:
            # ATLAS convention: a negative flux gets a negative magnitude of |flux|.
            m = math.copysign(-2.5 * math.log10(abs(uJy)) + 23.9, uJy)
            dm = min(9.999, 1.0857 * duJy / abs(uJy))
        else:
            m, dm = float("nan"), float("nan")
        chi_n = abs(rng.gauss(1.2, 0.6)) if rng.random() > 0.01 else rng.uniform(10, 200)
        ra = ra0 + rng.gauss(0, 1e-5)
        dec = dec0 + rng.gauss(0, 1e-5)
        x, y = rng.uniform(0, 10560), rng.uniform(0, 10560)
        maj = rng.uniform(1.6, 4.5)
        mn = maj * rng.uniform(0.8, 1.0)
        phi = rng.uniform(-90, 90)
        apfit = rng.uniform(-0.6, -0.3)
        pa = rng.uniform(-180, 180)
        camera = "01a" if band == "o" and rng.random() < 0.5 else "02a"
        obs = f"{camera}{int(mjd)}{band}{rng.randrange(10000):04d}{band}"
        values = [
            f"{mjd:.6f}", f"{m:.3f}", f"{dm:.3f}", f"{uJy:d}", f"{duJy:d}", band, "0", f"{chi_n:.2f}",
            f"{ra:.5f}", f"{dec:.5f}", f"{x:.2f}", f"{y:.2f}", f"{maj:.2f}", f"{mn:.2f}", f"{phi:.1f}",
            f"{apfit:.3f}", f"{mag5sig:.2f}", f"{pa:.2f}", f"{sky:.2f}", obs,
        ]  # fmt: skip
        values = ["NaN" if value == "nan" else value for value in values]  # ATLAS spells it NaN
        r = rng.random()
        if r < 0.001:  # a few NaN where ATLAS writes them: limits, or the whole flux fit
            values[16] = "NaN"
        elif r < 0.002:
            values[1] = values[2] = values[3] = "NaN"
        lines.append(" ".join(values))
    return "\n".join(lines) + "\n"


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def reference(text: str) -> list[tuple]:
    """The points of an ATLAS file converted row by row, plainly, by the rules of
    ``facility_apis.facilities.atlas.results`` (SNR ≥ 3, ``chi/N`` ≤ 10, ``m`` ≤ ``mag5sig``,
    the 3-sigma limit when ``mag5sig`` is not a number): what the parser must give, bit for bit."""
    lines = text.splitlines()
    column = {name: index for index, name in enumerate(lines[0].lstrip("#").split())}
    points = []
    for line in lines[1:]:
        row = line.split()
        band = {"c": "atlasc", "o": "atlaso"}.get(row[column["F"]]) if row else None
        if band is None:
            continue
        mjd, m, dm, f, df, chi_n, ra, dec, lim = (_number(row[column[name]]) for name in ("MJD", "m", "dm", "uJy", "duJy", "chi/N", "RA", "Dec", "mag5sig"))
        if not math.isfinite(lim):
            lim = -2.5 * math.log10(3.0 * df) + 23.9 if df > 0 and math.isfinite(df) else float("nan")
        if not (math.isfinite(mjd) and math.isfinite(lim)):
            continue
        finite = all(math.isfinite(v) for v in (f, m, dm))
        detected = df > 0 and finite and f / df >= 3.0 and not chi_n > 10.0 and not m > lim
        position = (ra if math.isfinite(ra) else None, dec if math.isfinite(dec) else None)
        points.append((mjd, m if detected else None, dm if detected else None, lim, band, *position))
    return points


OBJ_ID, INSTRUMENT_ID, GROUP_IDS = "ZTF26aatlasbench", 11, [1, 2]
#: The columns the conversion reads (the header names MJD ``###MJD``).
NEEDED = ("MJD", "m", "dm", "uJy", "duJy", "F", "chi/N", "RA", "Dec", "mag5sig")


def pandas_photometry(path: str, pandas, numpy, snr_threshold: float = 3.0):
    """The baseline: what a pandas user would write instead of ``parse_results`` — read the needed
    columns with ``pandas.read_csv``, convert them with vectorised numpy by the same rules, and
    give the same ``Photometry`` columns (NaN where there is no value)."""
    from facility_apis.core.photometry import Photometry

    frame = pandas.read_csv(path, sep=r"\s+", usecols=lambda name: name.lstrip("#") in NEEDED)
    frame.columns = [name.lstrip("#") for name in frame.columns]
    frame = frame[frame["F"].isin(("c", "o"))]
    numbers = ("MJD", "m", "dm", "uJy", "duJy", "chi/N", "RA", "Dec", "mag5sig")
    mjd, m, dm, flux, error, chi_n, ra, dec, limit = (frame[name].to_numpy(numpy.float64) for name in numbers)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        limit = numpy.where(numpy.isfinite(limit), limit, numpy.where(error > 0, -2.5 * numpy.log10(3.0 * error) + 23.9, numpy.nan))
        keep = numpy.isfinite(mjd) & numpy.isfinite(limit)
        mjd, m, dm, flux, error, chi_n, ra, dec, limit = (column[keep] for column in (mjd, m, dm, flux, error, chi_n, ra, dec, limit))
        finite = numpy.isfinite(flux) & numpy.isfinite(m) & numpy.isfinite(dm)
        detected = (error > 0) & finite & (flux / error >= snr_threshold) & ~(chi_n > 10.0) & ~(m > limit)
    band = numpy.where(frame["F"].to_numpy()[keep] == "c", "atlasc", "atlaso").tolist()
    nan = numpy.nan
    return Photometry(mjd, numpy.where(detected, m, nan), numpy.where(detected, dm, nan), limit, band, ra, dec, origin="fp")


def json_uploads(photometry, numpy, obj_id: str, instrument_id: int, group_ids: list[int], rows: int = 10_000) -> list[bytes]:
    """The baseline's upload bodies: the columns as lists (``None`` for NaN), by ``json.dumps``,
    in uploads of ``rows`` points (what ``requests``' ``json=`` sends for such a body)."""
    columns = {"mjd": photometry.mjd, "mag": photometry.mag, "magerr": photometry.magerr, "limiting_mag": photometry.limiting_mag}
    columns |= {"filter": numpy.asarray(photometry.filter, dtype=object), "ra": photometry.ra, "dec": photometry.dec}
    fixed = {"obj_id": obj_id, "instrument_id": instrument_id, "magsys": "ab", "origin": "fp", "group_ids": group_ids}
    bodies = []
    for start in range(0, len(photometry), rows):
        body = dict(fixed)
        for name, values in columns.items():
            part = values[start : start + rows]
            if part.dtype == numpy.float64:
                part = numpy.where(numpy.isnan(part), None, part)
            body[name] = part.tolist()
        bodies.append(json.dumps(body).encode())
    return bodies


def bits(value: float | str | None) -> bytes | str | None:
    """A value as its exact bits (floats), to compare results bit for bit."""
    return struct.pack("<d", value) if isinstance(value, float) else value


def points_of(photometry) -> list[tuple]:
    """The points of ``photometry`` as ``reference`` gives them."""
    columns = [photometry.values(name) for name in ("mjd", "mag", "magerr", "limiting_mag", "filter", "ra", "dec")]
    return list(zip(*columns, strict=True))


def differences(photometry, points: list[tuple]) -> int:
    """How many points of ``photometry`` differ from ``points`` in any bit (or are missing)."""
    ours = points_of(photometry)
    different = sum(1 for a, b in zip(ours, points, strict=False) if [bits(v) for v in a] != [bits(v) for v in b])
    return different + abs(len(ours) - len(points))


def _peak(function) -> int:
    """The peak traced memory (bytes) of one call of ``function``."""
    gc.collect()
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def _timed(function) -> float:
    gc.collect()
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="rows in the generated file (default 100000)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs of each (default 7)")
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 3 runs (smoke test)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--keep", help="write the generated file here and keep it")
    parser.add_argument("--json-out", help="also write the figures to this JSON file")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one read + parse")
    args = parser.parse_args(argv)
    rows = args.rows or (10_000 if args.quick else 100_000)
    repeat = args.repeat or (3 if args.quick else 7)

    try:
        import numpy
        import pandas
    except ImportError:
        print("pandas is not installed (pip install -e '.[bench]'): ATLAS parse benchmark skipped")
        return 0
    from facility_apis.facilities.atlas.results import parse_results

    text = generate(rows, args.seed)
    if args.keep:
        path, cleanup = args.keep, False
    else:
        handle, path = tempfile.mkstemp(prefix="atlas-bench-", suffix=".txt")
        os.close(handle)
        cleanup = True
    try:
        with open(path, "w", encoding="ascii") as out:
            out.write(text)
        size_mb = os.path.getsize(path) / 1e6
        expected = reference(text)
        del text

        def ours():
            with open(path, encoding="ascii") as source:
                return parse_results(source.read())

        def theirs():
            return pandas_photometry(path, pandas, numpy)

        def read():
            return pandas.read_csv(path, sep=r"\s+", usecols=lambda name: name.lstrip("#") in NEEDED)

        def ours_uploads():
            return ours().uploads(OBJ_ID, INSTRUMENT_ID, GROUP_IDS)

        def theirs_uploads():
            return json_uploads(theirs(), numpy, OBJ_ID, INSTRUMENT_ID, GROUP_IDS)

        # Warm-up (and sanity): pandas reads every row, ours gives every value exactly, and the
        # baseline gives ours (the same work).
        photometry, frame = ours(), read()
        if len(frame) != rows:
            raise SystemExit(f"pandas read {len(frame)} rows of {rows}")
        del frame
        wrong = differences(photometry, expected)
        del expected
        unlike = differences(photometry, points_of(theirs()))
        # The bodies sent: the same values (repr: exact, -0.0 apart from 0.0), however written.
        bodies_differ = repr([json.loads(body) for body in ours_uploads()]) != repr([json.loads(body) for body in theirs_uploads()])

        times: dict[str, list[float]] = {"ours": [], "pandas": [], "read": [], "ours_uploads": [], "pandas_uploads": []}
        for _ in range(repeat):  # interleaved rounds
            times["ours"].append(_timed(ours))
            times["pandas"].append(_timed(theirs))
            times["read"].append(_timed(read))
            times["ours_uploads"].append(_timed(ours_uploads))
            times["pandas_uploads"].append(_timed(theirs_uploads))

        peak, peak_uploads = _peak(ours), _peak(ours_uploads)

        medians = {name: statistics.median(values) for name, values in times.items()}
        ratio = medians["ours"] / medians["pandas"]
        met = ratio <= TARGET_RATIO
        print(
            f"ATLAS parse: {rows:,} rows, {size_mb:.1f} MB, median of {repeat} runs "
            f"(Python {sys.version.split()[0]}, pandas {pandas.__version__})"
        )
        print(f"  result: {photometry.summary()}; notes: {list(photometry.notes)}")
        labels = (
            ("ours", "read + parse_results (read, parse, convert)"),
            ("pandas", "pandas.read_csv(sep=r'\\s+', usecols) + numpy conversion (same result)"),
            ("read", "pandas.read_csv alone (the baseline's reading; informational)"),
            ("ours_uploads", "the same + Photometry.uploads (the encoded bodies of PUT /api/photometry)"),
            ("pandas_uploads", "the baseline + json.dumps of the same bodies (columns as lists)"),
        )
        for name, label in labels:
            values = times[name]
            print(f"  {name:<15}{medians[name] * 1e3:9.1f} ms   (best {min(values) * 1e3:.1f}, max {max(values) * 1e3:.1f})   {label}")
        print(f"ratio ours/pandas: {ratio:.2f}  (target ≤ {TARGET_RATIO} (ours no slower))  {'MET' if met else 'MISSED'}")
        to_skyportal = medians["ours_uploads"] / medians["pandas_uploads"]
        print(f"ratio ours/pandas, file to upload bodies: {to_skyportal:.2f}  (informational)")
        print(f"  peak traced memory of read + parse_results: {peak / 1e6:.1f} MB ({peak / rows:.0f} B/row; file {size_mb:.1f} MB)")
        memory = peak / 1e6 / size_mb
        print(f"peak memory / file size: {memory:.1f}  (target ≤ {TARGET_MEMORY:g})  {'MET' if memory <= TARGET_MEMORY else 'MISSED'}")
        print(f"points differing from the row-by-row reference in any bit: {wrong}  (must be 0)")
        print(f"points differing from the pandas baseline's in any bit: {unlike}  (must be 0: the same work)")
        memory_uploads = peak_uploads / 1e6 / size_mb
        print(f"  peak traced memory of read + parse_results + uploads: {peak_uploads / 1e6:.1f} MB ({memory_uploads:.1f} file sizes; informational)")
        print(f"upload bodies differing from the baseline's in any value: {int(bodies_differ)}  (must be 0)")

        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(ours)
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(12)

        if args.json_out:
            with open(args.json_out, "w", encoding="utf-8") as handle:
                json.dump(
                    {
                        "benchmark": "atlas_parse",
                        "rows": rows,
                        "repeat": repeat,
                        "median_ms": {name: value * 1e3 for name, value in medians.items()},
                        "best_ms": {name: min(values) * 1e3 for name, values in times.items()},
                        "ratio": ratio,
                        "ratio_name": "ours/pandas (read_csv + conversion)",
                        "target": f"≤ {TARGET_RATIO}",
                        "target_met": met,
                        "peak_memory_mb": peak / 1e6,
                        "peak_memory_per_file_size": memory,
                        "more": [
                            {"label": "peak memory, read+parse", "base_label": "file size", "value": f"{peak / 1e6:.1f} MB",
                             "baseline": f"{size_mb:.1f} MB", "ratio": memory, "ratio_name": "peak/file size",
                             "target": f"≤ {TARGET_MEMORY:g}", "target_met": memory <= TARGET_MEMORY},
                            {"label": "file to upload bodies", "base_label": "pandas + json.dumps",
                             "value": f"{medians['ours_uploads'] * 1e3:.1f} ms", "baseline": f"{medians['pandas_uploads'] * 1e3:.1f} ms",
                             "ratio": to_skyportal, "ratio_name": "ours/baseline", "target": "informational", "target_met": None},
                            {"label": "peak memory, read+parse+uploads", "base_label": "file size", "value": f"{peak_uploads / 1e6:.1f} MB",
                             "baseline": f"{size_mb:.1f} MB", "ratio": memory_uploads, "ratio_name": "peak/file size",
                             "target": "informational", "target_met": None},
                        ],
                        "differing_points": wrong,
                        "differing_from_baseline": unlike,
                        "failures": [f"{wrong} points differ from the reference"] * bool(wrong)
                        + [f"{unlike} points differ from the pandas baseline"] * bool(unlike)
                        + ["the upload bodies differ from the baseline's"] * bodies_differ,
                    },
                    handle,
                    indent=2,
                )
    finally:
        if cleanup:
            os.unlink(path)
    if wrong:
        print(f"FAIL: {wrong} points differ from the row-by-row reference")
    if unlike:
        print(f"FAIL: {unlike} points differ from the pandas baseline's: the comparison is not of the same work")
    if bodies_differ:
        print("FAIL: the upload bodies differ from the baseline's")
    return 1 if wrong or unlike or bodies_differ else 0


if __name__ == "__main__":
    sys.exit(main())
