"""IPAC's ZTF forced photometry service (ZFPS) on loopback.

What it speaks (IPAC's example request script ``ztf_ForcedPhotometryRequestExample.py``,
SkyPortal's ``ztf.py`` and ``facility_queue``, the ZFPS paper, Masci et al. 2023):

- HTTP Basic authentication with the service's shared login on every path (401 otherwise);
- ``GET /cgi-bin/requestForcedPhotometry.cgi?ra=&dec=&jdstart=&jdend=&email=&userpass=`` queues a
  job and answers an HTML page whose table echoes RA, Dec, JD start and JD end;
- ``GET /cgi-bin/getForcedPhotometryRequests.cgi?email=&userpass=&option=All+recent+jobs&
  action=Query+Database`` answers the account's jobs of the last 30 days as an HTML table
  (``reqId, ra, dec, startJD, endJD, created, started, ended, exitcode, status, lightcurve``), or
  ``Zero records returned``. The list is a snapshot taken once per ``list_period`` (an hour, on
  the hour): a job appears, starts and ends in it only at the refresh after it did so;
- ``GET <lightcurve path>`` serves the light curve (``ipac_files.py``);
- "Error: database is busy; try again a minute later." on demand (:meth:`busy_next`), and a
  refusal once an account holds ``max_pending`` unfinished jobs (about 100 at IPAC);
- exit codes: 65 for a window ending before the survey start (2018-03-17), 62 when the start was
  reset to it, 63 when the window holds no exposure, 0 otherwise; :meth:`exit_next` forces one.

Not documented by IPAC, so chosen here: the name of the job list's tenth column (``status``; the
facility does not read it), the words of the refusals (bad account, missing parameter, pending
limit), and the page layouts around the tables.
"""

from __future__ import annotations

import base64
import html
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .ipac_files import epochs_between, light_curve
from .server import LoopbackHandler, LoopbackServer

SURVEY_START_JD = 2458194.5
JD_UNIX_EPOCH = 2440587.5
BUSY_TEXT = "Error: database is busy; try again a minute later."
ZERO_TEXT = "Zero records returned"
LIST_COLUMNS = ("reqId", "ra", "dec", "startJD", "endJD", "created", "started", "ended", "exitcode", "status", "lightcurve")
RETENTION = 30 * 86400.0


def jd_of(unix_time: float) -> float:
    return unix_time / 86400.0 + JD_UNIX_EPOCH


def _stamp(unix_time: float) -> str:
    return datetime.fromtimestamp(unix_time, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _page(title: str, body: str) -> str:
    return f"<html>\n<head><title>{html.escape(title)}</title></head>\n<body>\n{body}\n</body>\n</html>\n"


@dataclass
class IPACJob:
    """One job: what was asked (as received), when, and how it ends."""

    req_id: int
    email: str
    ra: str
    dec: str
    jdstart: str
    jdend: str
    created: float
    started: float
    ended: float
    exitcode: int
    lightcurve_path: str | None
    lightcurve: str | None


class IPACEmulator(LoopbackServer):
    """The service at ``url``. ``http_login`` is the shared Basic login, ``accounts`` maps account
    e-mails to their passwords. Jobs wait ``queue_time`` seconds, run ``run_time`` seconds; the
    job list is refreshed every ``list_period`` seconds. ``clock`` gives the time (UNIX seconds);
    :meth:`advance` moves it forward."""

    def __init__(
        self,
        *,
        http_login: tuple[str, str] = ("ztffps-test", "shared-pw"),
        accounts: dict[str, str] | None = None,
        queue_time: float = 0.0,
        run_time: float = 0.0,
        list_period: float = 3600.0,
        max_pending: int = 100,
        epoch_spacing: float = 1.3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.http_login = http_login
        self.accounts = dict(accounts if accounts is not None else {"observer@example.org": "account-pw"})
        self.queue_time, self.run_time, self.list_period = queue_time, run_time, list_period
        self.max_pending, self.epoch_spacing = max_pending, epoch_spacing
        self._clock, self._offset = clock, 0.0
        self._lock = threading.Lock()
        self._jobs: list[IPACJob] = []
        self._ids = itertools.count(1001)
        self._busy = 0
        self._exits: list[int] = []
        #: The service's clock at each read of the job list (busy answers included).
        self.list_reads: list[float] = []

    def routes(self) -> list[Any]:
        return [
            (r"/cgi-bin/requestForcedPhotometry\.cgi", _RequestHandler),
            (r"/cgi-bin/getForcedPhotometryRequests\.cgi", _ListHandler),
            (r"(/ztf/ops/fp/.+)", _LightCurveHandler),
        ]

    # -- knobs -----------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the service's clock forward (jobs progress, the list refreshes)."""
        with self._lock:
            self._offset += seconds

    def busy_next(self, count: int = 1) -> None:
        """The next ``count`` calls to either CGI answer that the database is busy."""
        with self._lock:
            self._busy += count

    def exit_next(self, code: int) -> None:
        """The next job queued ends with exit code ``code`` (no light curve for 63, 64, 65, 255)."""
        with self._lock:
            self._exits.append(code)

    @property
    def jobs(self) -> list[IPACJob]:
        with self._lock:
            return list(self._jobs)

    def list_refreshed_at(self) -> float:
        """When the job list was last refreshed (the snapshot it shows)."""
        return (self.now() // self.list_period) * self.list_period

    # -- the service -------------------------------------------------------------------------------

    def take_busy(self) -> bool:
        with self._lock:
            if self._busy:
                self._busy -= 1
                return True
        return False

    def queue(self, email: str, values: dict[str, str]) -> IPACJob | str:
        """Queue a job; the refusal text instead when it cannot be queued."""
        try:
            ra, dec, jdstart, jdend = (float(values[name]) for name in ("ra", "dec", "jdstart", "jdend"))
        except (KeyError, ValueError):
            return "Error: ra, dec, jdstart and jdend must be numbers."
        if not (0 <= ra < 360 and -90 <= dec <= 90) or jdend <= jdstart:
            return "Error: invalid position or JD range."
        now = self.now()
        with self._lock:
            pending = sum(1 for job in self._jobs if job.email == email and job.ended > now)
            if pending >= self.max_pending:
                return f"Error: you have reached the maximum of {self.max_pending} pending requests; try again once some have completed."
            req_id = next(self._ids)
            forced = self._exits.pop(0) if self._exits else None
        start = max(jdstart, SURVEY_START_JD)
        jds = epochs_between(start, min(jdend, jd_of(now)), spacing=self.epoch_spacing)
        if forced is not None:
            code = forced
        elif jdend < SURVEY_START_JD:
            code = 65
        elif not jds:
            code = 63
        else:
            code = 62 if jdstart < SURVEY_START_JD else 0
        path = text = None
        if code not in (63, 64, 65, 255):
            day = datetime.fromtimestamp(now, UTC).strftime("%Y/%m/%d")
            path = f"/ztf/ops/fp/{day}/field{req_id % 1000:06d}/forcedphotometry_req{req_id:08d}_lc.txt"
            text = light_curve(req_id, ra, dec, start, jdend, jds)
        started = now + self.queue_time
        job = IPACJob(req_id, email, values["ra"], values["dec"], values["jdstart"], values["jdend"], now, started, started + self.run_time, code, path, text)
        with self._lock:
            self._jobs.append(job)
        return job

    def listed(self, email: str) -> list[dict[str, str]]:
        """The account's rows as the last refresh shows them."""
        snapshot = self.list_refreshed_at()
        rows = []
        for job in self.jobs:
            if job.email != email or not (snapshot - RETENTION <= job.created <= snapshot):
                continue
            ended = job.ended <= snapshot
            rows.append(
                {
                    "reqId": str(job.req_id),
                    "ra": f"{float(job.ra):.7f}",
                    "dec": f"{float(job.dec):.7f}",
                    "startJD": f"{float(job.jdstart):.6f}",
                    "endJD": f"{float(job.jdend):.6f}",
                    "created": _stamp(job.created),
                    "started": _stamp(job.started) if job.started <= snapshot else "",
                    "ended": _stamp(job.ended) if ended else "",
                    "exitcode": str(job.exitcode) if ended else "",
                    "status": "done" if ended else ("running" if job.started <= snapshot else "pending"),
                    "lightcurve": (job.lightcurve_path or "") if ended else "",
                }
            )
        return rows

    def light_curve_at(self, path: str) -> str | None:
        snapshot = self.list_refreshed_at()
        return next((job.lightcurve for job in self.jobs if job.lightcurve_path == path and job.ended <= snapshot), None)


class _IPACHandler(LoopbackHandler):
    @property
    def ipac(self) -> IPACEmulator:
        return self.server  # type: ignore[return-value]

    async def prepare(self) -> None:
        await super().prepare()
        if self._finished:
            return
        header = self.request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(":".join(self.ipac.http_login).encode()).decode()
        if header != expected:
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Basic realm="ZTF Forced Photometry"')
            self.finish(_page("401 Unauthorized", "<h1>Unauthorized</h1>\n<p>This server could not verify that you are authorized.</p>"))

    def html(self, title: str, body: str) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(_page(title, body))

    def plain(self, text: str) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(text + "\n")

    def account(self) -> str | None:
        """The account's e-mail if its password is right, else ``None`` (after answering)."""
        email, userpass = self.get_query_argument("email", ""), self.get_query_argument("userpass", "")
        if not email or self.ipac.accounts.get(email) != userpass:
            self.html("ZTF Forced Photometry Service", "<p>Error: the e-mail address or user password is not valid.</p>")
            return None
        return email


class _RequestHandler(_IPACHandler):
    def get(self) -> None:
        if self.ipac.take_busy():
            return self.plain(BUSY_TEXT)
        email = self.account()
        if email is None:
            return None
        values = {name: self.get_query_argument(name, "") for name in ("ra", "dec", "jdstart", "jdend")}
        job = self.ipac.queue(email, values)
        if isinstance(job, str):
            return self.html("ZTF Forced Photometry Service", f"<p>{html.escape(job)}</p>")
        cells = "".join(f"<td>{float(value):.{7 if name in ('ra', 'dec') else 6}f}</td>" for name, value in values.items())
        return self.html(
            "ZTF Forced Photometry Service",
            "<p>Your request has been submitted. The job status page is updated once an hour, on the hour.</p>\n"
            f"<table border=\"1\">\n<tr><th>RA</th><th>Dec</th><th>JD start</th><th>JD end</th></tr>\n<tr>{cells}</tr>\n</table>",
        )


class _ListHandler(_IPACHandler):
    def get(self) -> None:
        self.ipac.list_reads.append(self.ipac.now())
        if self.ipac.take_busy():
            return self.plain(BUSY_TEXT)
        email = self.account()
        if email is None:
            return None
        rows = self.ipac.listed(email)
        if not rows:
            return self.plain(ZERO_TEXT)
        header = "<tr>" + "".join(f"<th>{name}</th>" for name in LIST_COLUMNS) + "</tr>"
        lines = ["<tr>" + "".join(f"<td>{html.escape(row[name])}</td>" for name in LIST_COLUMNS) + "</tr>" for row in rows]
        table = "\n".join(['<table border="1">', header, *lines, "</table>"])
        return self.html("ZTF Forced Photometry Service: recent jobs", f"<h3>Jobs of the last 30 days</h3>\n{table}")


class _LightCurveHandler(_IPACHandler):
    def get(self, path: str) -> None:
        text = self.ipac.light_curve_at(path)
        if text is None:
            self.set_status(404)
            return self.html("404 Not Found", "<h1>Not Found</h1>")
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        return self.finish(text)
