"""Light-curve files as IPAC's ZTF forced photometry service writes them, for the emulator.

Layout (the ZFPS documentation; the column list as IPAC's files and SkyPortal's parser have it):
``#`` comment lines with the requested position and window, then one line naming the 40
columns separated by ", ", then one row per epoch, values separated by spaces, ``null`` where a
value is missing. The generated epochs are a transient rising and fading in g, r and i over a
flat baseline, with the things real files hold: flagged epochs (procstatus 56, 57, 58, 61, and
a comma-separated ``56,57``), epochs whose flux is ``null``, one without ``diffmaglim``. The same
job always gets the same file.
"""

from __future__ import annotations

import math
import random

COLUMNS = (
    "index", "field", "ccdid", "qid", "filter", "pid", "infobitssci", "sciinpseeing", "scibckgnd", "scisigpix",
    "zpmaginpsci", "zpmaginpsciunc", "zpmaginpscirms", "clrcoeff", "clrcoeffunc", "ncalmatches", "exptime",
    "adpctdif1", "adpctdif2", "diffmaglim", "zpdiff", "programid", "jd", "rfid", "forcediffimflux",
    "forcediffimfluxunc", "forcediffimsnr", "forcediffimchisq", "forcediffimfluxap", "forcediffimfluxuncap",
    "forcediffimsnrap", "aperturecorr", "dnearestrefsrc", "nearestrefmag", "nearestrefmagunc", "nearestrefchi",
    "nearestrefsharp", "refjdstart", "refjdend", "procstatus",
)  # fmt: skip
FILTERS = ("ZTF_g", "ZTF_r", "ZTF_i")
#: procstatus by epoch position: most epochs are clean, a few carry the service's flags.
_FLAG_EVERY = {7: "56", 11: "57", 13: "61", 17: "58", 19: "56,57"}


def epochs_between(jdstart: float, jdend: float, *, spacing: float = 1.3) -> list[float]:
    """The JDs of the emulated exposures in a window (one every ``spacing`` days)."""
    if jdend <= jdstart:
        return []
    count = int((jdend - jdstart) / spacing)
    return [round(jdstart + spacing * (i + 0.5), 6) for i in range(count)]


def light_curve(req_id: int, ra: float, dec: float, jdstart: float, jdend: float, jds: list[float]) -> str:
    """The text of job ``req_id``'s light curve with one row per JD in ``jds``."""
    rng = random.Random(req_id)
    peak = jds[len(jds) // 2] if jds else jdstart
    lines = [
        f"# Requested input R.A. = {ra:.7f} degrees",
        f"# Requested input Dec. = {dec:.7f} degrees",
        f"# Requested JD start = {jdstart:.6f} days",
        f"# Requested JD end = {jdend:.6f} days",
        "# Authenticated program IDs = 1,2,3",
        "#",
        "# Forced-photometry on ZTF difference images (forcediffimflux in DN; mag = zpdiff - 2.5 log10(flux)).",
        "# Missing values are written as null. See the ZFPS documentation for every column.",
        "#",
        " " + ", ".join(COLUMNS),
    ]
    for index, jd in enumerate(jds):
        band = FILTERS[index % 3 if index % 5 else 1]
        zpdiff = 26.2 + rng.uniform(-0.15, 0.15)
        unc = rng.uniform(40.0, 90.0)
        flux = 4000.0 * math.exp(-(((jd - peak) / 15.0) ** 2)) + rng.gauss(0.0, unc)
        limit = 20.4 + rng.uniform(-0.4, 0.4)
        status = _FLAG_EVERY.get(index % 23, "0")
        values: dict[str, object] = {
            "index": index, "field": 599 + index % 2, "ccdid": 3, "qid": 2, "filter": band,
            "pid": 1_800_000_000 + req_id * 1000 + index, "infobitssci": 0, "sciinpseeing": f"{rng.uniform(1.6, 3.2):.3f}",
            "scibckgnd": f"{rng.uniform(80, 300):.3f}", "scisigpix": f"{rng.uniform(5, 15):.3f}", "zpmaginpsci": f"{zpdiff:.4f}",
            "zpmaginpsciunc": "0.00002", "zpmaginpscirms": "0.03", "clrcoeff": "-0.04", "clrcoeffunc": "0.00001",
            "ncalmatches": 900, "exptime": 30, "adpctdif1": "0.06", "adpctdif2": "0.08", "diffmaglim": f"{limit:.3f}",
            "zpdiff": f"{zpdiff:.4f}", "programid": 1, "jd": f"{jd:.6f}", "rfid": 599120000 + index % 2,
            "forcediffimflux": f"{flux:.4f}", "forcediffimfluxunc": f"{unc:.4f}", "forcediffimsnr": f"{flux / unc:.4f}",
            "forcediffimchisq": f"{rng.uniform(0.8, 1.3):.4f}", "forcediffimfluxap": f"{flux * 1.02:.4f}",
            "forcediffimfluxuncap": f"{unc * 1.4:.4f}", "forcediffimsnrap": f"{flux / unc / 1.4:.4f}", "aperturecorr": "1.05",
            "dnearestrefsrc": "0.4", "nearestrefmag": "19.1", "nearestrefmagunc": "0.05", "nearestrefchi": "1.1",
            "nearestrefsharp": "0.01", "refjdstart": "2458200.7", "refjdend": "2458400.9", "procstatus": status,
        }  # fmt: skip
        if index % 29 == 5:  # a failed measurement: no flux
            values.update(forcediffimflux="null", forcediffimfluxunc="null", forcediffimsnr="null", forcediffimchisq="null")
        if index % 31 == 9:  # no limiting magnitude
            values["diffmaglim"] = "null"
        lines.append(" " + " ".join(str(values[name]) for name in COLUMNS))
    return "\n".join(lines) + "\n"
