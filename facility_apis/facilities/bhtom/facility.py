"""BHTOM: ask the BHTOM network to observe a target, and bring its photometry back.

Protocol: BHTOM's public API guide (``Documentation/DocumentationAPI.md`` of BHTOM-Team/bhtom2),
checked against the service's code where the guide is silent:

- ``POST <base>/api/token-auth/`` ``{"username", "password"}`` answers ``{"token": ...}``; every
  other call sends ``Authorization: Token <token>`` and a JSON body.
- ``POST /targets/getTargetList/`` filters by ``name`` (exact) or ``coneSearchRaDecRadius``
  (``"ra,dec,radius"``, degrees) and answers ``{"count", "num_pages", "current_page", "data"}``,
  200 targets a page; a page past the end answers the last page again.
- ``POST /targets/createTarget/`` ``{name, ra, dec, epoch, classification, importance, cadence,
  description}`` answers 201 with the target; field errors come back with HTTP 404 (and a target
  within 3" of another is refused). Names may not contain ``( ) / \\ :``, web addresses or query
  strings.
- ``PATCH /targets/updateTarget/<name>/`` (the last slash required) answers 201
  ``{"Status": "updated"}``; ``DELETE /targets/deleteTarget/`` ``{"name"}`` answers
  ``{"status": "deleted"}``. Neither accepts ``priority``: BHTOM computes a target's observing
  priority itself from its importance and cadence.
- ``POST /targets/download-photometry/`` ``{"name"}`` answers the light curve (``light_curve.py``).
- Importance runs from 0 (no follow-up needed) to 10 (observe now); cadence is in days (BHTOM's
  target model). The request form asks for hours.
- Failures may come back as an error object (``{"Error": ...}``, ``{"error": ...}``) with HTTP
  200: such an answer is a failure, never read as data.

The remote id is the target's name on BHTOM. What a request did to the target and which points it
delivered travel between calls in its cursor (``progress.py``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from ...core.answers import body_line, expect, is_html, json_object
from ...core.coordinates import separation_deg
from ...core.errors import AltdataError, CredentialsRefused, PayloadError, Rejected, RemoteError, RemoteNotFound
from ...core.interface import Facility, FollowupRequest, Kind, common_config_keys
from ...core.outcome import Outcome, State
from ...core.timeutil import utcnow
from ...core.transport import HTTPCall, Transport
from .light_curve import parse_download, to_photometry
from .progress import Progress

DEFAULT_BASE_URL = "https://bh-tom2.astrouw.edu.pl"
SERVICE = "BHTOM"
#: BHTOM refuses to create a target within 3 arcsec of another (its createTarget serializer).
CONE_ARCSEC = 3.0
#: A target found by name farther than this from the object is another object of the same name.
NAME_MATCH_ARCSEC = 5.0
#: Pages of a listing walked before giving up (200 targets a page).
MAX_PAGES = 500
#: BHTOM's rule for target names (createTarget serializer).
FORBIDDEN_NAME = re.compile(r"[()/\\:]")
ADDRESS_LIKE = re.compile(r"(?i)\b(?:https?://|ftp://|www\.|javascript:|data:|file:|vbscript:|[a-z0-9-]+(?:\.[a-z0-9-]+)+)\b|(?:\?|&)[^=\s]{1,100}=|%(?:2f|5c|3a|3f|26|3d|28|29)")
NAME_RULE = "BHTOM accepts names of at most 100 characters without ( ) / \\ : and without web addresses or query strings"
ERROR_KEYS = {"error", "errors", "detail", "non_field_errors"}


def name_problem(name: str) -> str | None:
    """Why BHTOM would refuse ``name`` as a target name, or ``None``."""
    if not name.strip() or len(name) > 100 or FORBIDDEN_NAME.search(name) or ADDRESS_LIKE.search(name):
        return NAME_RULE
    return None


def error_object(body: Any) -> str | None:
    """The message of a BHTOM error object (``{"Error": ...}``, ``{"error": ...}``, DRF's
    ``detail``/``non_field_errors``; keys compared without case or spaces), else ``None``."""
    if isinstance(body, dict) and any(str(key).strip().lower() in ERROR_KEYS for key in body):
        parts = [f"{value}" for key, value in body.items() if str(key).strip().lower() in ERROR_KEYS]
        return "; ".join(" ".join(str(v) for v in part) if isinstance(part, list) else str(part) for part in parts)
    return None


def separation_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Angular distance (haversine), arcseconds; degrees in."""
    return separation_deg(ra1, dec1, ra2, dec2) * 3600.0


def _hours(days: Any) -> float:
    return round(float(days or 0.0) * 24.0, 6)


def _days(hours: float) -> float:
    return round(hours / 24.0, 6)


def raised(before: tuple[float, float], asked: tuple[float, float]) -> tuple[float, float]:
    """``(importance, cadence in hours)`` for a target someone else put on BHTOM: the higher
    importance and the shorter cadence of the two (a cadence of 0 means none was set)."""
    return max(before[0], asked[0]), min(before[1], asked[1]) if before[1] > 0 else asked[1]


def _fmt(value: float) -> str:
    return f"{value:g}"


class BHTOMFacility(Facility):
    """BHTOM, the Black Hole TOM's network of telescopes.

    Config (deployment-wide; an allocation's ``base_url`` wins): ``base_url`` (default the public
    service) and ``poll_interval`` (seconds between photometry downloads; default the request's
    cadence).
    """

    name: ClassVar[str] = "bhtom"
    title: ClassVar[str] = "BHTOM"
    kind: ClassVar[Kind] = Kind.OBSERVATION
    returns_photometry: ClassVar[bool] = True  # the network's light curve, brought back on the cadence
    skyportal_class: ClassVar[str] = "BHTOMAPI"
    setup_url: ClassVar[str] = "https://about.bhtom.space"
    example_remote_id: ClassVar[str] = "Gaia22bpl"
    config_keys: ClassVar[Mapping[str, str]] = {
        **common_config_keys("base_url"),
        "poll_interval": "seconds between downloads of a listed target's photometry (default: its cadence)",
    }
    base_url_key: ClassVar[str | None] = "base_url"

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        configured = self.config.get("base_url")
        if configured:
            self.refuse_unusable_url("BHTOM base_url", configured)

    # -- validation and credentials ------------------------------------------------------------

    def check_altdata(self, altdata: dict[str, Any]) -> None:
        self.check_url(altdata, "base_url")
        if "api_token" not in altdata and "password" not in altdata:
            raise AltdataError.single("$.api_token", "is required, unless a username and password are given to exchange for it")

    def check_payload(self, payload: dict[str, Any]) -> None:
        name = payload.get("bhtom_name")
        if name and name_problem(name):
            raise PayloadError.single("$.bhtom_name", NAME_RULE)

    def exchange_altdata(self, altdata: dict[str, Any], transport: Transport) -> dict[str, Any]:
        """A username and password traded for the account's API token (``/api/token-auth/``);
        the result keeps the token and the username, never the password."""
        if "password" not in altdata:
            return altdata
        call = {"username": altdata["username"], "password": altdata["password"]}
        response = transport.request("POST", f"{self.base_url(altdata)}/api/token-auth/", headers={"Accept": "application/json"}, json=call)
        try:
            body = json_object(expect(response, 200, service=SERVICE), service=SERVICE, what="the token")
        except (Rejected, CredentialsRefused) as exc:
            raise AltdataError.single("$.password", f"BHTOM refused the username and password ({exc})") from None
        token = body.get("token")
        if not isinstance(token, str) or not re.fullmatch(r"[\x21-\x7e]{1,256}", token):
            refusal = error_object(body)
            raise AltdataError.single("$.password", f"BHTOM gave no token for the username and password ({refusal or 'no token in its answer'})")
        kept = {key: value for key, value in altdata.items() if key != "password"}
        return kept | {"api_token": token}

    # -- the remote calls ----------------------------------------------------------------------

    def base_url(self, altdata: Mapping[str, Any]) -> str:
        return str(altdata.get("base_url") or self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    def _headers(self, altdata: Mapping[str, Any]) -> dict[str, str]:
        token = altdata.get("api_token")
        if not token:
            raise AltdataError.single(
                "$.api_token",
                "is missing: the username and password are exchanged for it when the allocation is saved; save the allocation again",
            )
        return {"Authorization": f"Token {token}", "Accept": "application/json"}

    def _call(self, transport: Transport, request: FollowupRequest, method: str, path: str, body: dict[str, Any]) -> requests.Response:
        altdata = request.allocation.altdata
        return transport.request(method, f"{self.base_url(altdata)}{path}", headers=self._headers(altdata), json=body)

    def _answer(self, response: requests.Response, *statuses: int, what: str) -> dict[str, Any]:
        """The JSON object of an answer, or the error: BHTOM's error objects count as failures
        whatever their HTTP status; field errors answered with 404 are a refusal."""
        try:
            expect(response, *statuses, service=SERVICE)
        except RemoteNotFound as not_found:
            try:
                refused = response.json()
            except ValueError:
                refused = None
            if not isinstance(refused, dict):
                raise not_found from None
            raise Rejected(body_line(response), http_status=404) from None
        body = json_object(response, service=SERVICE, what=what)
        refusal = error_object(body)
        if refusal is not None:
            raise RemoteError(f"BHTOM answered HTTP {response.status_code} with an error instead of {what}: {refusal}")
        return body

    def _targets(self, transport: Transport, request: FollowupRequest, criteria: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every target matching ``criteria``, page after page to the last one."""
        page, pages = 1, 1
        while page <= pages:
            if page > MAX_PAGES:
                raise RemoteError(f"BHTOM's target list ran past {MAX_PAGES} pages; the search was not narrowed as asked")
            body = self._answer(self._call(transport, request, "POST", "/targets/getTargetList/", {**criteria, "page": page}), 200, what="a target list")
            data, pages = body.get("data"), body.get("num_pages")
            if not isinstance(data, list) or not isinstance(pages, int) or body.get("current_page", page) != page:
                raise RemoteError("BHTOM's target list answer lacks data, num_pages or the page asked for")
            yield from (target for target in data if isinstance(target, dict))
            page += 1

    def _by_name(self, transport: Transport, request: FollowupRequest, name: str) -> dict[str, Any] | None:
        return next((t for t in self._targets(transport, request, {"name": name}) if t.get("name") == name), None)

    def _distance(self, request: FollowupRequest, target: dict[str, Any]) -> float:
        try:
            return separation_arcsec(request.target.ra, request.target.dec, float(target["ra"]), float(target["dec"]))
        except (KeyError, TypeError, ValueError):
            return math.inf

    def _find(self, transport: Transport, request: FollowupRequest, name: str) -> tuple[dict[str, Any] | None, float]:
        """The target BHTOM already has for this object: by name, else the nearest within
        ``CONE_ARCSEC``; with its distance in arcsec. A name held by a far object is a refusal."""
        named = self._by_name(transport, request, name)
        if named is not None:
            distance = self._distance(request, named)
            if distance > NAME_MATCH_ARCSEC:
                where = "at an unknown position" if math.isinf(distance) else f"{distance:.1f} arcsec away"
                raise Rejected(f"BHTOM already has a different target named {name!r} ({where}); give another name on BHTOM")
            return named, distance
        cone = f"{request.target.ra!r},{request.target.dec!r},{CONE_ARCSEC / 3600.0!r}"
        near = [(self._distance(request, t), t) for t in self._targets(transport, request, {"coneSearchRaDecRadius": cone})]
        near = [(d, t) for d, t in near if d <= CONE_ARCSEC and isinstance(t.get("name"), str)]
        if not near:
            return None, math.inf
        distance, target = min(near, key=lambda pair: pair[0])
        return target, distance

    def _patch(self, transport: Transport, request: FollowupRequest, name: str, body: dict[str, Any]) -> None:
        path = f"/targets/updateTarget/{quote(name, safe='')}/"
        self._answer(self._call(transport, request, "PATCH", path, body), 200, 201, what="the update")

    # -- the operations ------------------------------------------------------------------------

    def bhtom_name(self, request: FollowupRequest) -> str:
        """The target's name on BHTOM: the form's ``bhtom_name``, else the SkyPortal object id."""
        name = str(request.payload.get("bhtom_name") or request.target.id)
        if name_problem(name):
            raise PayloadError.single("$.bhtom_name", f"{NAME_RULE}; the SkyPortal object id cannot be used as it is, give a name here")
        return name

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        """The creation of the target (what ``submit`` sends when BHTOM does not have it yet)."""
        payload, altdata = request.payload, request.allocation.altdata
        body: dict[str, Any] = {
            "name": self.bhtom_name(request),
            "ra": request.target.ra,
            "dec": request.target.dec,
            "epoch": 2000.0,
            "classification": payload.get("classification", "Unknown"),
            "importance": float(payload["importance"]),
            "cadence": _days(float(payload["cadence_hours"])),
        }
        if payload.get("description"):
            body["description"] = payload["description"]
        return HTTPCall("POST", f"{self.base_url(altdata)}/targets/createTarget/", headers=self._headers(altdata), json=body)

    def window_end(self, payload: Mapping[str, Any]) -> datetime | None:
        """BHTOM observes the target for ``follow_days`` days from the submission."""
        return utcnow() + timedelta(days=float(payload["follow_days"]))

    def _poll_after(self, cadence_hours: float, progress: Progress) -> float:
        wait = float(self.config.get("poll_interval") or cadence_hours * 3600.0)
        if progress.until is not None:
            wait = min(wait, max(1.0, progress.until - utcnow().timestamp()))
        return wait

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        payload = request.payload
        name = self.bhtom_name(request)
        importance, cadence = float(payload["importance"]), float(payload["cadence_hours"])
        until = utcnow().timestamp() + float(payload["follow_days"]) * 86400.0
        found, distance = self._find(transport, request, name)
        if found is None:
            created = self._answer(transport.send(self.prepare(request)), 201, what="the new target")
            remote = str(created.get("name") or name)
            progress = Progress(created=True, set=(importance, cadence), until=until)
            detail = f"target {remote} created on BHTOM with importance {_fmt(importance)}, cadence {_fmt(cadence)} h"
            return Outcome(State.SUBMITTED, detail, remote_id=remote, poll_after=self._poll_after(cadence, progress), cursor=progress.encode())
        remote = str(found["name"])
        before = (float(found.get("importance") or 0.0), _hours(found.get("cadence")))
        wanted = raised(before, (importance, cadence))
        where = f"as {remote}" + ("" if remote == name else f", {distance:.1f} arcsec from this object")
        had = f"BHTOM already had this target {where} (importance {_fmt(before[0])}, cadence {_fmt(before[1])} h)"
        if wanted != before:
            self._patch(transport, request, remote, {"importance": wanted[0], "cadence": _days(wanted[1])})
            detail = f"{had}: raised to importance {_fmt(wanted[0])}, cadence {_fmt(wanted[1])} h instead of creating a duplicate"
        else:
            detail = f"{had}, already at least what was asked: left as it is, no duplicate created"
        progress = Progress(created=False, before=before, set=wanted, until=until)
        return Outcome(State.SUBMITTED, detail, remote_id=remote, poll_after=self._poll_after(wanted[1], progress), cursor=progress.encode())

    def get(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if not request.remote_id:
            return Outcome(State.PENDING, "not submitted to BHTOM yet")
        name, progress = request.remote_id, Progress.decode(request.cursor)
        target = self._by_name(transport, request, name)
        if target is None:
            return Outcome(State.CANCELED, f"the target {name} is no longer on BHTOM", remote_id=name)
        response = self._call(transport, request, "POST", "/targets/download-photometry/", {"name": name})
        points, unreadable = parse_download(self._download_text(response))
        new, progress, again = progress.new_points(points)
        photometry, kept_out = to_photometry(new, request.allocation.filters)
        progress = progress.counted(len(photometry), kept_out)
        importance, cadence = float(target.get("importance") or 0.0), _hours(target.get("cadence"))
        notes = [f"{again} of them delivered again with their night's late additions"] if again and len(photometry) else []
        notes += [f"{count} point{'s' if count > 1 else ''} kept out so far: {reason}" for reason, count in sorted(progress.kept_out.items())]
        if unreadable:
            notes.append(f"{unreadable} unreadable line{'s' if unreadable > 1 else ''} in BHTOM's download skipped")
        brought = f"{progress.delivered} point{'s' if progress.delivered != 1 else ''} brought back"
        if progress.until is not None and utcnow().timestamp() >= progress.until:
            released = self._release(transport, request, name, target, progress)
            detail = "; ".join([f"follow-up window over: {brought}", released, *notes])
            return Outcome(State.COMPLETED, detail, remote_id=name, photometry=photometry or None, cursor=progress.encode())
        state = State.RUNNING if progress.delivered else State.QUEUED
        detail = "; ".join([f"on BHTOM's list at importance {_fmt(importance)}, cadence {_fmt(cadence)} h: {brought}", *notes])
        poll_after = self._poll_after(cadence or (progress.set or (0.0, 24.0))[1] or 24.0, progress)
        return Outcome(state, detail, remote_id=name, poll_after=poll_after, photometry=photometry or None, cursor=progress.encode())

    def _download_text(self, response: requests.Response) -> str:
        """The download's text; an error object, an HTML page or another status is a failure."""
        expect(response, 200, service=SERVICE)
        text = response.text or ""
        if text.lstrip().startswith(("{", "[")):
            try:
                body = response.json()
            except ValueError:
                body = None
            refusal = error_object(body)
            raise RemoteError(f"BHTOM answered HTTP 200 with {'an error' if refusal else 'JSON'} instead of photometry: {refusal or body_line(response)}")
        if is_html(text):
            raise RemoteError(f"BHTOM answered HTTP 200 with {body_line(response)} instead of photometry")
        return text

    def update(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if not request.remote_id:
            raise Rejected("the request was never placed on BHTOM: submit it instead")
        payload = self.validate_payload(request.payload)
        name, progress = request.remote_id, Progress.decode(request.cursor)
        if self._by_name(transport, request, name) is None:
            return Outcome(State.CANCELED, f"the target {name} is no longer on BHTOM: nothing to update", remote_id=name)
        asked = (float(payload["importance"]), float(payload["cadence_hours"]))
        owned = progress.created is not False  # created by this request, or unknown: the observer's values
        wanted = asked if owned or progress.before is None else raised(progress.before, asked)
        body: dict[str, Any] = {"importance": wanted[0], "cadence": _days(wanted[1])}
        if owned and payload.get("description"):
            body["description"] = payload["description"]
        self._patch(transport, request, name, body)
        progress = dataclasses.replace(progress, set=wanted)
        detail = f"updated on BHTOM: {name} at importance {_fmt(wanted[0])}, cadence {_fmt(wanted[1])} h"
        if not owned and wanted != asked:
            detail += " (not below what the target had before this request)"
        return Outcome(State.SUBMITTED, detail, remote_id=name, poll_after=self._poll_after(wanted[1], progress), cursor=progress.encode())

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if not request.remote_id:
            return Outcome(State.DELETED, "nothing had been sent to BHTOM")
        name, progress = request.remote_id, Progress.decode(request.cursor)
        target = self._by_name(transport, request, name)
        if target is None:
            return Outcome(State.DELETED, f"the target {name} was already gone from BHTOM", remote_id=name)
        return Outcome(State.DELETED, self._release(transport, request, name, target, progress), remote_id=name)

    def _release(self, transport: Transport, request: FollowupRequest, name: str, target: dict[str, Any], progress: Progress) -> str:
        """Undo what this request did to the target; says what was done."""
        if progress.created or not progress.known:
            if progress.created and request.allocation.altdata.get("allow_target_removal"):
                body = self._answer(self._call(transport, request, "DELETE", "/targets/deleteTarget/", {"name": name}), 200, what="the removal")
                if str(body.get("status", "")).lower() != "deleted":
                    raise RemoteError(f"BHTOM did not confirm the removal of {name} (no status 'deleted' in its answer)")
                return f"target {name} removed from BHTOM (this request had created it)"
            self._patch(transport, request, name, {"importance": 0.0})
            why = "the allocation does not allow removing targets" if progress.created else "what this request changed is not known"
            return f"importance of {name} lowered to 0 on BHTOM ({why})"
        current = (float(target.get("importance") or 0.0), _hours(target.get("cadence")))
        if progress.set == progress.before:
            return f"{name} left as it was on BHTOM: this request had not changed it"
        unchanged = progress.set is not None and all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(current, progress.set, strict=True))
        if progress.before is None or not unchanged:
            return f"{name} left as it is on BHTOM: its importance or cadence changed since this request set them"
        before = progress.before
        self._patch(transport, request, name, {"importance": before[0], "cadence": _days(before[1])})
        return f"importance and cadence of {name} restored to {_fmt(before[0])} and {_fmt(before[1])} h on BHTOM, as they were before this request"
