"""Fink's forced photometry API for Rubin objects (``/api/v1/fp``) on loopback.

What it speaks (Fink's documentation, "Forced photometry", and its API code, ``fink-object-api``:
``apps/routes/v1/lsst/fp``, ``apps/utils/utils.py``):

- ``POST /api/v1/fp`` with a JSON body, or ``GET /api/v1/fp?...`` with the same fields as query
  parameters: ``diaObjectId`` (required; a string, one id or several comma-separated),
  ``columns`` (optional, comma-separated; unknown names are ignored; all columns without it),
  ``output-format`` (``json``, the default, ``csv`` or ``parquet``);
- the rows of every object asked for, as ``to_json(orient="records")`` (``application/json``),
  ``to_csv(index=False)`` (``application/csv``) or Parquet (``parquet``); an unknown object adds no
  row, so a query for unknown objects answers ``[]`` (or an empty CSV);
- a refusal is HTTP 400 whose body is the text of a Python dict,
  ``{'status': 'error', 'text': '...'}`` (a missing ``diaObjectId``, an unknown format).

``diaObjectId`` and ``diaForcedSourceId`` are 64-bit integers written as JSON numbers, beyond
2^53: read as floats they lose their last digits. The objects are made with :meth:`add_object`
(deterministic rows in the six bands with NaN fluxes among them). VOTable answers are not served
(HTTP 501), and Fink's own limits, which it does not document, are not emulated: use the fault
knobs for 429 and 5xx.
"""

from __future__ import annotations

import io
import json
import math
import random
import threading
import time
from typing import Any

from .server import LoopbackHandler, LoopbackServer

BANDS = "ugrizy"
ALL_COLUMNS = (
    "r:diaObjectId", "r:diaForcedSourceId", "r:visit", "r:detector", "r:midpointMjdTai", "r:band",
    "r:psfFlux", "r:psfFluxErr", "r:ra", "r:dec",
)  # fmt: skip
CONTENT_TYPES = {"json": "application/json", "csv": "application/csv", "parquet": "parquet"}


def _error(text: str) -> str:
    """Fink's refusal body: ``str()`` of a dict."""
    return str({"status": "error", "text": text})


class FinkEmulator(LoopbackServer):
    """Fink's ``/api/v1/fp`` at ``url``. ``queries`` lists the fields of each query answered, and
    ``query_times`` when each arrived (``time.monotonic()``)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._objects: dict[str, list[dict[str, Any]]] = {}
        self.queries: list[dict[str, str]] = []
        self.query_times: list[float] = []

    def routes(self) -> list[Any]:
        return [(r"/api/v1/fp", _FpHandler)]

    def add_object(self, dia_object_id: str, points: int = 30, *, ra: float = 150.1, dec: float = -30.2, first_mjd: float = 61000.0) -> None:
        """An object with ``points`` forced-photometry rows: a transient rising and fading across
        the six bands over a flat baseline, every seventh flux NaN (no measurement)."""
        rng = random.Random(int(dia_object_id))
        peak = first_mjd + points * 0.6
        rows = []
        for index in range(points):
            mjd = first_mjd + index * 1.2 + rng.uniform(0, 0.01)
            err = rng.uniform(150.0, 400.0)
            flux = 40000.0 * math.exp(-(((mjd - peak) / 8.0) ** 2)) + rng.gauss(0.0, err)
            rows.append(
                {
                    "r:diaObjectId": int(dia_object_id),
                    "r:diaForcedSourceId": int(dia_object_id) * 1000 + index + 1,
                    "r:visit": 2026000000 + index,
                    "r:detector": index % 189,
                    "r:midpointMjdTai": round(mjd, 6),
                    "r:band": BANDS[index % 6],
                    "r:psfFlux": float("nan") if index % 7 == 3 else round(flux, 3),
                    "r:psfFluxErr": round(err, 3),
                    "r:ra": ra + rng.gauss(0, 1e-5),
                    "r:dec": dec + rng.gauss(0, 1e-5),
                }
            )
        with self._lock:
            self._objects[str(int(dia_object_id))] = rows

    def table(self, ids: list[str], columns: list[str] | None) -> list[dict[str, Any]]:
        """The rows Fink would send: every object's, restricted to the known ``columns`` asked for."""
        names = [name for name in columns if name in ALL_COLUMNS] if columns else list(ALL_COLUMNS)
        with self._lock:
            found = [row for dia_id in ids for row in self._objects.get(dia_id.lstrip("0") or "0", [])]
        return [{name: row[name] for name in names} for row in found]


def _json(rows: list[dict[str, Any]]) -> str:
    """``to_json(orient="records")``: NaN as null, integers in full."""
    return json.dumps([{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows])


def _csv(rows: list[dict[str, Any]]) -> str:
    """``to_csv(index=False)``: a header, NaN as an empty cell; no rows and no columns give a newline."""
    if not rows:
        return "\n"
    names = list(rows[0])
    lines = [",".join(names)]
    lines += [",".join("" if isinstance(row[n], float) and math.isnan(row[n]) else str(row[n]) for n in names) for row in rows]
    return "\n".join(lines) + "\n"


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as parquet

    buffer = io.BytesIO()
    parquet.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


class _FpHandler(LoopbackHandler):
    @property
    def fink(self) -> FinkEmulator:
        return self.server  # type: ignore[return-value]

    def get(self) -> None:
        fields = {name: self.get_query_argument(name) for name in self.request.query_arguments}
        if not fields:
            self.finish("Get forced photometry data based on Rubin diaObjectId")
            return
        self._answer(fields)

    def post(self) -> None:
        fields = {name: self.get_query_argument(name) for name in self.request.query_arguments}
        if not fields:
            try:
                fields = json.loads(self.request.body or b"null")
            except ValueError:
                fields = None
            if not isinstance(fields, dict):
                self.set_status(400)
                self.finish("<!doctype html>\n<title>400 Bad Request</title>\n<h1>Bad Request</h1>\n<p>Failed to decode JSON object.</p>\n")
                return
        self._answer(fields)

    def _answer(self, fields: dict[str, Any]) -> None:
        if "diaObjectId" not in fields:
            self.set_status(400)
            self.finish(_error("A value for `diaObjectId` is required. See https://api.fink-portal.org \n"))
            return
        output = str(fields.get("output-format", "json"))
        if output not in CONTENT_TYPES:
            self.set_status(501 if output == "votable" else 400)
            self.finish("VOTable answers are not emulated" if output == "votable" else _error(
                f"Output format `{output}` is not supported. Choose among json, csv, votable, or parquet\n"
            ))  # fmt: skip
            return
        ids = [part.strip() for part in str(fields["diaObjectId"]).split(",") if part.strip()]
        columns = [name for name in str(fields["columns"]).replace(" ", "").split(",") if name] if "columns" in fields else None
        self.fink.queries.append({key: str(value) for key, value in fields.items()})
        self.fink.query_times.append(time.monotonic())
        rows = self.fink.table(ids, columns)
        self.set_header("Content-Type", CONTENT_TYPES[output])
        self.finish({"json": _json, "csv": _csv, "parquet": _parquet}[output](rows))
