"""Deterministic ATLAS forced photometry result files, in the service's documented format.

Rows alternate at random between the ``c`` and ``o`` filters; every fourth row is a low-SNR
measurement (a non-detection) and every sixth has a negative flux, whose magnitude is computed
from ``|flux|`` and then given a minus sign, as the real files do.
"""

from __future__ import annotations

import math
import random

COLUMNS = ["MJD", "m", "dm", "uJy", "duJy", "F", "err", "chi/N", "RA", "Dec", "x", "y", "maj", "min", "phi", "apfit", "mag5sig", "PA_DEG", "Sky", "Obs"]
ZERO_POINT = 23.9


def header(pa_deg: bool = True) -> str:
    """The header line; ``pa_deg=False`` gives the older column set without ``PA_DEG``."""
    return "###" + " ".join(name for name in COLUMNS if pa_deg or name != "PA_DEG")


def _magnitude(flux: float) -> float:
    """AB magnitude of a flux in microjansky, negative for a negative flux."""
    return math.copysign(ZERO_POINT - 2.5 * math.log10(abs(flux)), flux)


def _flux(rng: random.Random, row: int, base: float, error: float) -> float:
    if row % 6 == 5:
        return -rng.uniform(0.5, 2.5) * error
    if row % 4 == 3:
        return rng.uniform(0.2, 1.5) * error
    return base * rng.uniform(0.8, 1.2)


def result_text(
    task_id: int,
    ra: float | None,
    dec: float | None,
    mjd_min: float,
    mjd_max: float,
    *,
    rows: int = 20,
    pa_deg: bool = True,
) -> str:
    """A result file for a task, the same for the same arguments; MJDs lie in [mjd_min, mjd_max]."""
    rng = random.Random(f"{task_id}:{ra}:{dec}")
    ra = rng.uniform(0.0, 360.0) if ra is None else ra
    dec = rng.uniform(-90.0, 90.0) if dec is None else dec
    base_flux = rng.uniform(100.0, 500.0)
    mjds = sorted(rng.uniform(mjd_min, mjd_max) for _ in range(rows))
    lines = [header(pa_deg)]
    for row, mjd in enumerate(mjds):
        band = rng.choice("co")
        error = rng.uniform(5.0, 25.0)
        flux = round(_flux(rng, row, base_flux, error)) or 1
        values = [
            f"{mjd:.6f}",
            f"{_magnitude(flux):.3f}",
            f"{2.5 / math.log(10) * error / abs(flux):.3f}",
            f"{flux:d}",
            f"{round(error):d}",
            band,
            "0",
            f"{rng.uniform(0.5, 3.0):.2f}",
            f"{ra:.5f}",
            f"{dec:.5f}",
            f"{rng.uniform(10.0, 10550.0):.2f}",
            f"{rng.uniform(10.0, 10550.0):.2f}",
            f"{rng.uniform(2.2, 3.0):.2f}",
            f"{rng.uniform(1.8, 2.2):.2f}",
            f"{rng.uniform(-90.0, 90.0):.1f}",
            f"{rng.uniform(-0.45, -0.35):.3f}",
            f"{rng.uniform(19.0, 20.0):.2f}",
        ]
        if pa_deg:
            values.append(f"{rng.uniform(-180.0, 180.0):.2f}")
        values += [f"{rng.uniform(17.5, 21.0):.2f}", f"0{rng.randint(1, 4)}a{int(mjd)}o{rng.randint(1, 999):04d}{band}"]
        lines.append(" ".join(values))
    return "\n".join(lines) + "\n"
