"""Reading Fink's ``/api/v1/fp`` answers: JSON, CSV or Parquet rows, and its error texts.

Source: Fink's API (``fink-object-api``, ``apps/utils/utils.py``): a table is sent as
``to_json(orient="records")`` (``application/json``), ``to_csv(index=False)``
(``application/csv``) or ``to_parquet()`` (``parquet``); a refusal is HTTP 400 with the text of a
Python dict, ``{'status': 'error', 'text': '...'}``.

``diaObjectId`` is a 64-bit integer, beyond the 2^53 a double holds exactly, so it never goes
through a float: JSON integers are read as text (``parse_int=str``), CSV cells are text, and
Parquet's int64 becomes a Python int, written out in full.
"""

from __future__ import annotations

import ast
import csv
import io
import json
from typing import Any

from ...core.answers import one_line
from ...core.errors import RemoteError

PARQUET_MAGIC = b"PAR1"
#: Fink's error texts are short; a longer body is not parsed as a Python literal.
ERROR_TEXT_LIMIT = 10_000

Row = dict[str, Any]


def fink_error(text: str) -> str | None:
    """The ``text`` of Fink's ``{'status': 'error', 'text': ...}`` answer, else ``None``."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")) or len(text) > ERROR_TEXT_LIMIT:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, dict) and value.get("status") == "error" and isinstance(value.get("text"), str):
        return one_line(value["text"])
    return None


def answer_format(content_type: str, content: bytes, asked: str) -> str:
    """``json``, ``csv`` or ``parquet``: by the answer's ``Content-Type``, else by its first bytes,
    else the format asked for."""
    kind = content_type.split(";")[0].strip().lower()
    if "parquet" in kind or content.startswith(PARQUET_MAGIC):
        return "parquet"
    if kind.endswith("json"):
        return "json"
    if kind.endswith("csv"):
        return "csv"
    return asked


def _json_rows(content: bytes) -> list[Row]:
    try:
        body = json.loads(content.decode("utf-8"), parse_int=str)
    except (UnicodeDecodeError, ValueError):
        raise RemoteError("Fink sent malformed JSON for the forced photometry") from None
    if body == {}:
        return []
    if not isinstance(body, list) or not all(isinstance(row, dict) for row in body):
        raise RemoteError("Fink sent JSON that is not a list of rows for the forced photometry", permanent=True)
    return body


def _csv_rows(content: bytes) -> list[Row]:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteError("Fink sent a CSV answer that is not UTF-8 text") from None
    if not text.strip():
        return []
    found = []
    for number, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        if None in row:  # DictReader files values beyond the header under the key None
            raise RemoteError(f"Fink's CSV line {number} has more values than its header names")
        found.append({key: (None if value in ("", None) else value) for key, value in row.items()})
    return found


def _parquet_rows(content: bytes) -> list[Row]:
    try:
        import pyarrow.parquet as parquet  # the "fink" extra: only deployments that ask for Parquet need it
    except ImportError:
        raise RemoteError("Fink answered in Parquet, which needs pyarrow: install facility-apis[fink]", permanent=True) from None
    try:
        return parquet.read_table(io.BytesIO(content)).to_pylist()
    except Exception:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
        raise RemoteError("Fink sent a Parquet answer that cannot be read") from None


def rows(content: bytes, kind: str) -> list[Row]:
    """The rows of an answer in format ``kind``; ``RemoteError`` when it cannot be read."""
    return {"json": _json_rows, "csv": _csv_rows, "parquet": _parquet_rows}[kind](content)
