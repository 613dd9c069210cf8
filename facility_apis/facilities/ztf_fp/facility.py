"""ZTF forced photometry at IPAC (ZFPS): queue a job, find it in the hourly job list, fetch its
light curve.

Protocol (IPAC's example request script; SkyPortal's ``ztf.py`` and ``facility_queue``; the ZFPS
paper, Masci et al. 2023):

- ``GET <base>/cgi-bin/requestForcedPhotometry.cgi?ra=&dec=&jdstart=&jdend=&email=&userpass=``
  with HTTP Basic authentication (the service's shared login) queues one job and answers an HTML
  page echoing RA, Dec, JD start and JD end; no job id. "Error: database is busy; try again a
  minute later." means nothing was queued; an account may hold about 100 pending jobs.
- ``GET <base>/cgi-bin/getForcedPhotometryRequests.cgi?email=&userpass=&option=All recent jobs&
  action=Query Database`` lists the account's jobs of the last 30 days as an HTML table, or says
  "Zero records returned". The list is refreshed once an hour, on the hour: it is never asked
  for more often than it can change.
- A finished job has an ``exitcode`` (``codes.py``) and, when it produced one, a ``lightcurve``
  path on the same server, fetched with the same Basic authentication.

The account (``email``, ``userpass``) travels in query strings: both are altdata secrets, masked
in every recorded URL, status and log line.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ...core.answers import expect
from ...core.egress import Origin
from ...core.errors import ConfigurationError, PayloadError, RemoteError, Throttled
from ...core.interface import Facility, FollowupRequest, Kind, Target, common_config_keys
from ...core.outcome import Outcome, State
from ...core.timeutil import iso_date, to_mjd, utcnow
from ...core.transport import HTTPCall, Transport
from . import position
from .codes import FAILED_EXITS, NO_DATA_EXITS, SURVEY_START_JD, meaning
from .lightcurve import JD_MJD, parse_lightcurve
from .listing import Job, JobKey, Tolerance, find_job, parse_confirmation, parse_job_list, what_ipac_said

DEFAULT_BASE_URL = "https://ztfweb.ipac.caltech.edu"
REQUEST_PATH = "/cgi-bin/requestForcedPhotometry.cgi"
LIST_PATH = "/cgi-bin/getForcedPhotometryRequests.cgi"
SERVICE = "IPAC"
BUSY = "database is busy"
ZERO_RECORDS = "Zero records returned"
#: SkyPortal's queue waits 2 minutes after IPAC's "try again a minute later".
BUSY_WAIT = 120.0
SURVEY_START = "2018-03-17"


def _limit_reached(text: str) -> bool:
    """Whether an answer without a confirmation says the account's pending-job limit is reached.
    IPAC documents the limit (about 100 pending requests) but not the words of the refusal: any
    page that speaks of a limit (or maximum, or too many) and of requests or jobs counts."""
    lowered = text.lower()
    return any(word in lowered for word in ("limit", "maximum", "too many")) and any(word in lowered for word in ("request", "job"))


class ZTFForcedPhotometryFacility(Facility):
    """ZTF forced photometry through IPAC's forced photometry service (ZFPS).

    Configuration (deployment-wide): ``base_url`` (default ``https://ztfweb.ipac.caltech.edu``),
    ``list_period`` (seconds between refreshes of IPAC's job list: 3600, on the hour),
    ``list_delay`` (seconds after a refresh before looking: 300), ``match_degrees`` and
    ``match_days`` (how close a listed job's position and JDs must be to the request's: 1e-5),
    ``busy_wait`` (seconds before asking again after "database is busy": 120).
    """

    name: ClassVar[str] = "ztf_fp"
    title: ClassVar[str] = "ZTF forced photometry (IPAC)"
    kind: ClassVar[Kind] = Kind.FORCED_PHOTOMETRY
    skyportal_class: ClassVar[str] = "ZTFAPI"
    setup_url: ClassVar[str] = "https://irsa.ipac.caltech.edu/data/ZTF/docs/ztf_zfps_userguide.pdf"
    #: The window's first and last night, in any spelling of ``DATE_PATTERN`` (SkyPortal's request
    #: form fills them as "YYYY-MM-DD HH:MM:SS"), read as UTC dates.
    date_fields: ClassVar[tuple[str, ...]] = ("start_date", "end_date")
    example_remote_id: ClassVar[str] = "ra=280.8058788&dec=45.2077645&jdstart=2458231.891227&jdend=2458345.025359"
    config_keys: ClassVar[Mapping[str, str]] = {
        **common_config_keys("base_url"),
        "list_period": "seconds between refreshes of IPAC's job list (default 3600)",
        "list_delay": "seconds after a refresh before the job list is read (default 300)",
        "match_degrees": "how close a listed job's RA and Dec must be to the request's, degrees (default 1e-5)",
        "match_days": "how close a listed job's JD start and end must be, days (default 1e-5)",
        "busy_wait": "seconds before asking again after IPAC's 'database is busy' (default 120)",
    }
    base_url_key: ClassVar[str | None] = "base_url"

    #: The wall clock (UNIX seconds): when the job list is next worth asking for. Tests replace it.
    clock = staticmethod(time.time)

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        reason = self.egress.refusal(self.base_url, secret=True)
        if reason is not None:
            raise ConfigurationError(f"the configured ZTF forced photometry base_url is refused: {reason}")
        try:
            self.list_period = float(self.config.get("list_period", 3600.0))
            self.list_delay = float(self.config.get("list_delay", 300.0))
            self.tolerance = Tolerance(float(self.config.get("match_degrees", 1e-5)), float(self.config.get("match_days", 1e-5)))
            self.busy_wait = float(self.config.get("busy_wait", BUSY_WAIT))
        except (TypeError, ValueError):
            raise ConfigurationError("ztf_fp: list_period, list_delay, match_degrees, match_days and busy_wait must be numbers") from None
        if not (self.list_period > 0 and 0 <= self.list_delay < self.list_period and min(self.tolerance.degrees, self.tolerance.days, self.busy_wait) >= 0):
            raise ConfigurationError("ztf_fp: list_period must be positive, list_delay in [0, list_period), the others not negative")

    @property
    def base_url(self) -> str:
        return str(self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    # -- the form ------------------------------------------------------------------------------

    def request_defaults(self) -> dict[str, Any]:
        today = utcnow()
        return {"start_date": iso_date(today - timedelta(days=30)), "end_date": iso_date(today)}

    def check_payload(self, payload: dict[str, Any]) -> None:
        if payload["end_date"] < payload["start_date"]:
            raise PayloadError.single("$.end_date", "must not be before start_date")
        if payload["end_date"] < SURVEY_START:
            raise PayloadError.single("$.end_date", f"must be on or after {SURVEY_START}, when the ZTF survey started")
        given = [key for key in ("centroid_ra", "centroid_dec") if key in payload]
        if given and not position.wants_centroid(payload["position"]):
            raise PayloadError.single(f"$.{given[0]}", "is set only with a flux weighted centroid position")
        if len(given) == 1:
            missing = "centroid_dec" if given == ["centroid_ra"] else "centroid_ra"
            raise PayloadError.single(f"$.{missing}", f"is required when {given[0]} is given")

    def uses_host_photometry(self, payload: Mapping[str, Any]) -> bool:
        return position.wants_centroid(payload.get("position")) and "centroid_ra" not in payload

    def fill_from_target(self, payload: dict[str, Any], target: Target) -> dict[str, Any]:
        chosen = payload["position"]
        if not position.wants_centroid(chosen) or "centroid_ra" in payload:
            return payload
        found = position.flux_weighted_centroid(target.photometry, chosen)
        if found is None:
            raise PayloadError.single("$.position", f"no photometry of the source qualifies for a centroid ({position.rule(chosen)})")
        payload["centroid_ra"], payload["centroid_dec"] = round(found[0], 7), round(found[1], 7)
        return payload

    # -- the calls -----------------------------------------------------------------------------

    def _auth(self, altdata: Mapping[str, Any]) -> dict[str, str]:
        login = f"{altdata['ipac_http_user']}:{altdata['ipac_http_password']}".encode()
        return {"Authorization": "Basic " + base64.b64encode(login).decode("ascii")}

    def _key(self, request: FollowupRequest) -> JobKey:
        """What is asked for: the position (the centroid when one was chosen) and the window as
        JDs, from 00:00 UTC of the start date (not before the survey start) to 24:00 UTC of the
        end date."""
        payload, target = request.payload, request.target
        if position.wants_centroid(payload.get("position")):
            if "centroid_ra" not in payload:
                raise PayloadError.single("$.position", "a centroid needs the source's photometry, which was not given: choose the source's coordinates")
            ra, dec = float(payload["centroid_ra"]), float(payload["centroid_dec"])
        else:
            ra, dec = target.ra, target.dec
        jdstart = max(to_mjd(payload["start_date"]) + JD_MJD, SURVEY_START_JD)
        jdend = to_mjd(payload["end_date"]) + 1.0 + JD_MJD
        return JobKey(round(ra, 7), round(dec, 7), round(jdstart, 6), round(jdend, 6))

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        altdata = request.allocation.altdata
        query = self._key(request).query() | {"email": altdata["ipac_email"], "userpass": altdata["ipac_userpass"]}
        # A GET that queues a job: never repeated once it may have arrived.
        return HTTPCall("GET", self.base_url + REQUEST_PATH, headers=self._auth(altdata), params=query, repeatable=False)

    def _next_look(self) -> tuple[float, str]:
        """Seconds until the job list is next worth asking for (``list_delay`` after its next
        refresh), and that time as ``HH:MM UTC``."""
        now = self.clock()
        at = (math.floor((now - self.list_delay) / self.list_period) + 1) * self.list_period + self.list_delay
        return at - now, datetime.fromtimestamp(at, UTC).strftime("%H:%M UTC")

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        key = self._key(request)
        response = expect(transport.send(self.prepare(request)), 200, service=SERVICE)
        text = response.text or ""
        if BUSY in text:
            raise Throttled(self.busy_wait, "IPAC's forced photometry database is busy (it asks to try again a minute later); nothing was queued")
        echoed = parse_confirmation(text)
        if echoed is None:
            if _limit_reached(text):
                wait, at = self._next_look()
                said = what_ipac_said(text)
                raise Throttled(wait, f"IPAC refused the request: the account's limit of pending jobs (about 100) is reached ({said}); trying again at {at}")
            unsure = f"IPAC's answer does not confirm the request ({what_ipac_said(text)}); it may or may not have been queued"
            return Outcome(State.FAILED, f"{unsure}: check IPAC's job list before submitting again", maybe_sent=True)
        wait, at = self._next_look()
        where = " (flux-weighted centroid)" if position.wants_centroid(request.payload.get("position")) else ""
        detail = f"IPAC queued a job for {echoed.describe()}{where}; first look at {at}, after IPAC next refreshes its job list"
        if not self.tolerance.matches(Job(None, echoed.ra, echoed.dec, echoed.jdstart, echoed.jdend), key):
            detail += f" (IPAC echoed other values than the {key.describe()} sent; followed as echoed)"
        return Outcome(State.SUBMITTED, detail, remote_id=echoed.text, poll_after=wait)

    def _job_list(self, request: FollowupRequest, transport: Transport) -> list[Job]:
        altdata = request.allocation.altdata
        params = {"email": altdata["ipac_email"], "userpass": altdata["ipac_userpass"], "option": "All recent jobs", "action": "Query Database"}
        response = expect(transport.request("GET", self.base_url + LIST_PATH, headers=self._auth(altdata), params=params), 200, service=SERVICE)
        text = response.text or ""
        if BUSY in text:
            raise Throttled(self.busy_wait, "IPAC's forced photometry database is busy (it asks to try again a minute later)")
        if ZERO_RECORDS in text:
            return []
        jobs = parse_job_list(text)
        if jobs is None:
            raise RemoteError(f"IPAC's job list answer holds no job table ({what_ipac_said(text)})")
        return jobs

    def get(self, request: FollowupRequest, transport: Transport) -> Outcome:
        key = JobKey.parse(request.remote_id)
        job = find_job(self._job_list(request, transport), key, self.tolerance)
        wait, at = self._next_look()
        if job is None:
            if key.req_id is not None:
                return Outcome(State.FAILED, f"IPAC no longer lists job {key.req_id} (its list covers the last 30 days)", remote_id=request.remote_id)
            detail = f"not in IPAC's job list yet; next look at {at}, after its next refresh"
            return Outcome(State.SUBMITTED, detail, remote_id=request.remote_id, poll_after=wait)
        remote_id = key.with_req_id(job.req_id).text
        name = f"IPAC job {job.req_id}" if job.req_id is not None else "the IPAC job"
        if not job.ended:
            if job.started:
                return Outcome(State.RUNNING, f"{name} started at {job.started[:40]}; next look at {at}", remote_id=remote_id, poll_after=wait)
            created = f" (created {job.created[:40]})" if job.created else ""
            return Outcome(State.QUEUED, f"{name} is queued{created}; next look at {at}", remote_id=remote_id, poll_after=wait)
        return self._ended(request, job, name, remote_id, transport)

    def _ended(self, request: FollowupRequest, job: Job, name: str, remote_id: str, transport: Transport) -> Outcome:
        code = job.exitcode
        if code in NO_DATA_EXITS:
            return Outcome(State.NO_DATA, f"{name} ended with exit {meaning(code)}", remote_id=remote_id)
        if code in FAILED_EXITS:
            return Outcome(State.FAILED, f"{name} ended with exit {meaning(code)}; submit a new request", remote_id=remote_id)
        if not job.lightcurve:
            return Outcome(State.FAILED, f"{name} ended without a light curve (exit {meaning(code)})", remote_id=remote_id)
        photometry = self._light_curve(request, job.lightcurve, transport)
        notes = list(photometry.notes)
        if code not in (0, None):
            notes.insert(0, f"IPAC: exit {meaning(code)}")
        if not len(photometry):
            return Outcome(State.NO_DATA, "; ".join([f"{name}: no epoch kept", *notes]), remote_id=remote_id, photometry=photometry)
        detail = "; ".join([f"{photometry.summary()} from {name}", *notes])
        return Outcome(State.COMPLETED, detail, remote_id=remote_id, photometry=photometry)

    def _light_curve(self, request: FollowupRequest, path: str, transport: Transport):
        """The job's light curve, fetched from IPAC's own server only (the listed path is
        server-relative; a full URL elsewhere is never called, as the logins would go with it)."""
        origin = Origin.of(self.base_url)
        parts = urlsplit(path)
        if parts.scheme or parts.netloc:
            if Origin.of(path) != origin:
                raise RemoteError(f"IPAC listed a light curve on {Origin.of(path).host or 'another host'}, off its own server: not fetched", permanent=True)
            url = path
        elif path.startswith("/"):
            base = urlsplit(self.base_url)
            url = f"{base.scheme}://{base.netloc}{path}"
        else:
            raise RemoteError("IPAC listed a light curve path that is not a path on its server", permanent=True)
        response = expect(transport.request("GET", url, headers=self._auth(request.allocation.altdata)), 200, service=SERVICE)
        payload = request.payload
        return parse_lightcurve(response.text, snr_threshold=float(payload.get("snr_threshold", 3.0)), keep_flagged=bool(payload.get("keep_flagged", False)))
