"""Reading IPAC's HTML answers: the request CGI's confirmation and the account's job list.

Sources: IPAC's example request script (``ztf_ForcedPhotometryRequestExample.py``) and
SkyPortal's ``facility_queue``. The request CGI answers an HTML page whose table echoes the queued
job's RA, Dec, JD start and JD end (in that order, as ``<td>`` cells). The job list
(``getForcedPhotometryRequests.cgi``) is an HTML table of the account's jobs of the last 30 days,
with a header row naming its columns (``reqId``, ``ra``, ``dec``, ``startJD``, ``endJD``,
``created``, ``started``, ``ended``, ``exitcode``, ..., ``lightcurve``). Jobs carry no id of
ours: a job is found by the four values it was asked for, within an explicit tolerance.

Parsing is by column name, case-insensitive (``startJD`` or ``jdstart``), with HTML entities
decoded, unclosed cells tolerated, and rows of the wrong width or with unreadable numbers skipped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode

from ...core.answers import html_line, is_html, one_line
from ...core.errors import RemoteError

#: A cell's text and whether it was a header cell (``<th>``).
Cell = tuple[str, bool]


class _TableReader(HTMLParser):
    """Every ``<table>`` of a page as rows of cells; nested tables are read as tables of their own."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[Cell]]] = []
        self._open: list[list[list[Cell]]] = []
        self._cell: list[str] | None = None
        self._header = False

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "table":
            self._close_cell()
            table: list[list[Cell]] = []
            self.tables.append(table)
            self._open.append(table)
        elif tag == "tr" and self._open:
            self._close_cell()
            self._open[-1].append([])
        elif tag in ("td", "th") and self._open:
            self._close_cell()
            if not self._open[-1]:
                self._open[-1].append([])
            self._cell, self._header = [], tag == "th"
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th", "tr"):
            self._close_cell()
        elif tag == "table" and self._open:
            self._close_cell()
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def _close_cell(self) -> None:
        if self._cell is not None and self._open and self._open[-1]:
            self._open[-1][-1].append((one_line("".join(self._cell)), self._header))
        self._cell = None


def html_tables(text: str) -> list[list[list[Cell]]]:
    """The tables of an HTML page: rows of ``(text, is_header)`` cells, empty rows left out."""
    reader = _TableReader()
    reader.feed(text)
    reader.close()
    reader._close_cell()
    return [[row for row in table if row] for table in reader.tables]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _integer(text: str) -> int | None:
    value = _number(text)
    return int(value) if value is not None and value == int(value) else None


def _text(value: str) -> str | None:
    """A cell's text, ``None`` for an empty cell or one that says there is nothing."""
    return None if value.strip().lower() in ("", "null", "none", "nan", "-") else value.strip()


@dataclass(frozen=True)
class JobKey:
    """What identifies a job at IPAC: the four values it was asked for (as IPAC echoed them) and,
    once the job list has shown it, IPAC's ``reqId``. Its text form is the request's remote id:
    ``ra=280.8058788&dec=45.2077645&jdstart=2458231.891227&jdend=2458345.025359[&reqId=123]``."""

    ra: float
    dec: float
    jdstart: float
    jdend: float
    req_id: int | None = None

    def query(self) -> dict[str, str]:
        """The four values as they are sent and kept: 7 decimals in degrees (0.4 mas), 6 in JD (0.1 s)."""
        return {"ra": f"{self.ra:.7f}", "dec": f"{self.dec:.7f}", "jdstart": f"{self.jdstart:.6f}", "jdend": f"{self.jdend:.6f}"}

    @property
    def text(self) -> str:
        fields = self.query()
        if self.req_id is not None:
            fields["reqId"] = str(self.req_id)
        return urlencode(fields)

    @classmethod
    def parse(cls, remote_id: str | None) -> JobKey:
        """The key in a remote id; a permanent ``RemoteError`` for anything else."""
        fields = dict(parse_qsl(remote_id or "", keep_blank_values=True))
        values = {name: _number(fields.get(name, "")) for name in ("ra", "dec", "jdstart", "jdend")}
        req_id = _integer(fields["reqId"]) if "reqId" in fields else None
        if any(value is None for value in values.values()) or ("reqId" in fields and req_id is None):
            raise RemoteError("the request's remote id is not a ZTF forced photometry job key (ra, dec, jdstart, jdend)", permanent=True)
        return cls(**values, req_id=req_id)  # type: ignore[arg-type]

    def with_req_id(self, req_id: int | None) -> JobKey:
        return self if req_id is None else replace(self, req_id=req_id)

    def describe(self) -> str:
        return f"ra {self.ra:.7f}, dec {self.dec:.7f}, JD {self.jdstart:.6f} to {self.jdend:.6f}"


@dataclass(frozen=True)
class Tolerance:
    """How close a listed job's values must be to a key's: degrees on the sky (RA differences
    wrap at 360) and days in JD. IPAC's example script uses 1e-5 for all four."""

    degrees: float = 1e-5
    days: float = 1e-5

    def matches(self, job: Job, key: JobKey) -> bool:
        ra = abs(job.ra - key.ra) % 360.0
        return (
            min(ra, 360.0 - ra) <= self.degrees
            and abs(job.dec - key.dec) <= self.degrees
            and abs(job.jdstart - key.jdstart) <= self.days
            and abs(job.jdend - key.jdend) <= self.days
        )


@dataclass(frozen=True)
class Job:
    """One row of the job list. Times are IPAC's text; ``None`` where the cell is empty."""

    req_id: int | None
    ra: float
    dec: float
    jdstart: float
    jdend: float
    created: str | None = None
    started: str | None = None
    ended: str | None = None
    exitcode: int | None = None
    lightcurve: str | None = None


_REQUIRED = {"ra": ("ra",), "dec": ("dec",), "jdstart": ("startjd", "jdstart"), "jdend": ("endjd", "jdend")}
_OPTIONAL = {name: (name,) for name in ("created", "started", "ended", "exitcode", "lightcurve")} | {"req_id": ("reqid",)}


def _columns(header: list[str]) -> dict[str, int] | None:
    """Where each field is, by the header's names; ``None`` unless the four values are there."""
    names = {name.lower().replace(" ", ""): index for index, name in enumerate(header)}
    found: dict[str, int] = {}
    for field, spellings in (_REQUIRED | _OPTIONAL).items():
        index = next((names[s] for s in spellings if s in names), None)
        if index is not None:
            found[field] = index
    return found if all(field in found for field in _REQUIRED) else None


def _job(cells: list[str], where: dict[str, int]) -> Job | None:
    values = {field: _number(cells[where[field]]) for field in _REQUIRED}
    if any(value is None for value in values.values()):
        return None
    optional = {field: _text(cells[index]) for field, index in where.items() if field in _OPTIONAL}
    exitcode = optional.pop("exitcode", None)
    req_id = optional.pop("req_id", None)
    return Job(
        req_id=_integer(req_id) if req_id else None,
        exitcode=_integer(exitcode) if exitcode else None,
        **values,  # type: ignore[arg-type]
        **optional,
    )


def parse_job_list(text: str) -> list[Job] | None:
    """The jobs of a job-list page; ``None`` when the page holds no job table (an error page, a
    maintenance notice, an empty body)."""
    for table in html_tables(text):
        if not table:
            continue
        header_at = next((i for i, row in enumerate(table) if all(is_header for _, is_header in row)), 0)
        where = _columns([cell for cell, _ in table[header_at]])
        if where is None:
            continue
        width = len(table[header_at])
        jobs = [_job([cell for cell, _ in row], where) for row in table[header_at + 1 :] if len(row) == width]
        return [job for job in jobs if job is not None]
    return None


def parse_confirmation(text: str) -> JobKey | None:
    """The values the request CGI echoed for the job it queued: the first table row whose first
    four cells are numbers (RA, Dec, JD start, JD end). ``None`` when the page has none."""
    for table in html_tables(text):
        for row in table:
            values = [_number(cell) for cell, is_header in row[:4] if not is_header]
            if len(values) == 4 and all(value is not None for value in values):
                ra, dec, jdstart, jdend = values
                return JobKey(ra, dec, jdstart, jdend)  # type: ignore[arg-type]
    return None


def find_job(jobs: list[Job], key: JobKey, tolerance: Tolerance) -> Job | None:
    """The job ``key`` names: by ``reqId`` once it is known, else the newest (highest ``reqId``)
    whose four values match within ``tolerance``."""
    if key.req_id is not None:
        return next((job for job in jobs if job.req_id == key.req_id), None)
    matching = [job for job in jobs if tolerance.matches(job, key)]
    return max(matching, key=lambda job: -1 if job.req_id is None else job.req_id, default=None)


_TITLE = re.compile(r"<title[^>]*>.*?</title>", re.IGNORECASE | re.DOTALL)


def what_ipac_said(text: str, limit: int = 200) -> str:
    """An answer of IPAC's in one short line: the first visible text of an HTML page (its title
    is the service's name, not the message), else the first line; ``an empty body``."""
    if not text.strip():
        return "an empty body"
    line = html_line(_TITLE.sub("", text)) if is_html(text) else next(line for line in text.splitlines() if line.strip())
    return one_line(line, limit) or "an HTML page without text"
