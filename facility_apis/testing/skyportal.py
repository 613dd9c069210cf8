"""A SkyPortal stand-in on loopback that answers ``/api/facility``, ``/api/photometry``,
``/api/sources/<obj_id>`` and ``/api/sources/<obj_id>/offsets`` the way SkyPortal 1.4.0 does
(texts, statuses and envelope included).

Tokens carry ACLs; a facility message needs ``Post from <ListenerClassName>`` on the token, and
the listener's own ``refusal`` (e.g. facility_apis's ``SEDMListener`` takes only SEDM's requests)
is applied as SkyPortal applies it inside ``process_message``. A repeated ``POST`` of stored
photometry is an error while ``PUT`` is idempotent, as in SkyPortal; an upload of more than
10,000 points is refused, as SkyPortal refuses it.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, NamedTuple

import jsonschema
import tornado.web
from tornado.httputil import responses

from ..core.photometry import MAX_UPLOAD_ROWS
from ..skyportal.listener import FacilityMessageListener, Listener
from .server import LoopbackHandler, LoopbackServer

VERSION = "1.4.0"
ZERO_POINT = 23.9
DETECTION_SIGMA = 5.0
SYSTEM_ADMIN = "System admin"
MAG_FIELDS = {"mjd", "mag", "magerr", "limiting_mag", "magsys", "filter"}
OPTIONAL_FIELDS = {"origin", "ra", "dec", "ra_unc", "dec_unc", "alert_id", "assignment_id", "altdata"}
LIST_FIELDS = {"group_ids", "stream_ids"}
KNOWN_FIELDS = {"obj_id", "instrument_id"} | MAG_FIELDS | OPTIONAL_FIELDS | LIST_FIELDS
MAGSYSTEMS = {"ab", "vega"}


class Refused(Exception):
    """SkyPortal answers ``{"status": "error", "message": ...}`` with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Instrument:
    name: str
    filters: set[str]
    api_classname: str | None = None


@dataclass
class _Request:
    listener: str
    obj_id: str
    instrument_id: int
    allocation_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    statuses: list[str] = field(default_factory=list)

    def as_dict(self, request_id: int) -> dict[str, Any]:
        status = self.statuses[-1] if self.statuses else "pending submission"
        return {"id": request_id, "obj_id": self.obj_id, "allocation_id": self.allocation_id, "payload": self.payload, "status": status}


class Accepted(NamedTuple):
    """One message the stub accepted: ``kind`` ``"status"`` (``detail``: the new status, with
    ``followup_request_id``) or ``"photometry"`` (``detail``: the upload's number of points of
    ``obj_id``)."""

    kind: str
    obj_id: str
    detail: str | int
    followup_request_id: int | None = None


def _mag_space_error(errors: dict[str, list[str]]) -> Refused:
    return Refused(f'Invalid input format: Tried to parse data in mag space, got: "{errors}."')


def _points(body: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per point, scalars broadcast to the length of the list columns."""
    errors = {name: ["Unknown field."] for name in body if name not in KNOWN_FIELDS}
    errors |= {name: ["Missing data for required field."] for name in ({"obj_id", "instrument_id"} | MAG_FIELDS) - set(body)}
    if errors:
        raise _mag_space_error(errors)
    columns = {name: value for name, value in body.items() if name not in LIST_FIELDS}
    lengths = {len(value) for value in columns.values() if isinstance(value, list)}
    if len(lengths) > 1:
        raise Refused('Unable to coerce passed JSON to a series of packets. Error was: "All arrays must be of the same length"')
    count = lengths.pop() if lengths else 1
    points = [{name: value[i] if isinstance(value, list) else value for name, value in columns.items()} for i in range(count)]
    for point in points:
        _check_point(point)
    return points


def _check_point(point: dict[str, Any]) -> None:
    def number(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _mag_space_error({name: ["Not a valid number."]})

    number("mjd", point["mjd"])
    number("limiting_mag", point["limiting_mag"])
    if (point["mag"] is None) != (point["magerr"] is None):
        raise Refused("Photometry points must have both mag and magerr, or neither.")
    if point["mag"] is not None:
        number("mag", point["mag"])
        number("magerr", point["magerr"])
    if str(point["magsys"]).lower() not in MAGSYSTEMS:
        raise _mag_space_error({"magsys": [f"Invalid magsys {point['magsys']!r}."]})


def _flux(point: dict[str, Any]) -> tuple[float | None, float]:
    """Flux and flux error (zero point 23.9) as SkyPortal stores a magnitude-space point."""
    if point["mag"] is None:
        return None, 10 ** (-0.4 * (point["limiting_mag"] - ZERO_POINT)) / DETECTION_SIGMA
    flux = 10 ** (-0.4 * (point["mag"] - ZERO_POINT))
    return flux, point["magerr"] * flux * math.log(10) / 2.5


def _dedup_key(point: dict[str, Any]) -> tuple[Any, ...]:
    flux, fluxerr = _flux(point)
    rounded = None if flux is None else round(flux, 9)
    return (point["obj_id"], int(point["instrument_id"]), point.get("origin"), round(point["mjd"], 9), rounded, round(fluxerr, 9))


class SEDMListener(FacilityMessageListener):
    """SkyPortal's stock SEDMListener, the only listener an unchanged SkyPortal ships:
    ``followup_request_id`` and ``new_status``, nothing else, for any request on an instrument
    naming it; the gateway's statuses reach an unchanged SkyPortal through it. A SkyPortal with
    facility_apis plugged in uses :class:`facility_apis.skyportal.SEDMListener` instead, which
    takes only SEDM's requests: pass ``listeners={"SEDMListener": that class, ...}``."""


class SkyPortalStub(LoopbackServer):
    """SkyPortal for facility tests: tokens with ACLs, follow-up requests, sources, photometry.

    ``tokens`` maps each token to its ACLs (``"System admin"`` grants all); ``listeners`` maps
    listener class names to :class:`~facility_apis.skyportal.listener.Listener` classes.
    """

    def __init__(
        self,
        *,
        tokens: dict[str, Iterable[str]] | None = None,
        listeners: dict[str, type[Listener]] | None = None,
    ) -> None:
        super().__init__()
        default_acl = FacilityMessageListener.get_acl_id()
        self.tokens = {token: set(acls) for token, acls in (tokens if tokens is not None else {"skyportal-token": {default_acl}}).items()}
        self.listeners = dict(listeners or {"FacilityMessageListener": FacilityMessageListener, "SEDMListener": SEDMListener})
        self._lock = threading.Lock()
        self._requests_by_id: dict[int, _Request] = {}
        self._instruments: dict[int, _Instrument] = {}
        self._offset_stars: dict[str, list[dict[str, Any]]] = {}
        self._sources: dict[str, dict[str, Any]] = {}
        self._points: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._point_ids = itertools.count(1)
        self._accepted: list[Accepted] = []

    def routes(self) -> list[Any]:
        return [
            (r"/api/facility", FacilityHandler),
            (r"/api/photometry", PhotometryHandler),
            (r"/api/sources/([^/]+)", SourceHandler),
            (r"/api/sources/([^/]+)/offsets", OffsetsHandler),
            (r"/api/followup_request", FollowupRequestListHandler),
        ]

    # -- set-up -----------------------------------------------------------------------------

    def add_source(self, obj_id: str, ra: float, dec: float, alias: Iterable[str] | None = None) -> None:
        """A source, with its other names (``alias``: SkyPortal's list, or null)."""
        with self._lock:
            self._sources[obj_id] = {"id": obj_id, "ra": ra, "dec": dec, "alias": None if alias is None else list(alias)}

    def add_instrument(self, instrument_id: int, filters: Iterable[str], name: str = "ATLAS", api_classname: str | None = None) -> None:
        with self._lock:
            self._instruments[instrument_id] = _Instrument(name, set(filters), api_classname)

    def add_offset_stars(self, obj_id: str, stars: Iterable[dict[str, Any]]) -> None:
        """The offset stars ``GET /api/sources/<obj_id>/offsets`` lists for a known source
        (``{"name", "ra", "dec", "mag"}`` each, degrees and Gaia RP magnitudes), nearest first."""
        with self._lock:
            self._offset_stars[obj_id] = [dict(star) for star in stars]

    def add_request(
        self,
        followup_request_id: int,
        *,
        listener: str = "FacilityMessageListener",
        obj_id: str = "ZTF21aaaaaaa",
        instrument_id: int = 1,
        instrument_filters: Iterable[str] = ("atlasc", "atlaso"),
        instrument_name: str = "ATLAS",
        allocation_id: int | None = None,
        payload: dict[str, Any] | None = None,
        api_classname: str | None = None,
    ) -> None:
        """A follow-up request on ``obj_id``; (re)defines its instrument with ``instrument_filters``
        and ``api_classname`` (the instrument's facility class; ``listener`` is its listener)."""
        self.add_instrument(instrument_id, instrument_filters, instrument_name, api_classname)
        with self._lock:
            self._requests_by_id[followup_request_id] = _Request(listener, obj_id, instrument_id, allocation_id, dict(payload or {}))

    # -- what the stub received -------------------------------------------------------------

    def statuses(self, followup_request_id: int) -> list[str]:
        """Every status accepted for a request, oldest first."""
        with self._lock:
            request = self._requests_by_id.get(followup_request_id)
            return list(request.statuses) if request else []

    def accepted(self) -> list[Accepted]:
        """Every message the API accepted (answered with success), in the order it accepted them:
        a status (``POST /api/facility``) or a photometry upload (``POST``/``PUT``, one entry per
        object in it, counting its points, stored anew or already stored). A message delivered
        twice shows twice; one refused or faulted, not at all."""
        with self._lock:
            return list(self._accepted)

    def photometry(self, obj_id: str) -> list[dict[str, Any]]:
        """The stored points of an object, by id."""
        with self._lock:
            return sorted((dict(p) for p in self._points.values() if p["obj_id"] == obj_id), key=lambda p: p["id"])

    # -- the API ----------------------------------------------------------------------------

    def acls(self, authorization: str | None) -> set[str]:
        scheme, _, token = (authorization or "").strip().partition(" ")
        if not token:
            raise Refused("Authentication required: send 'Authorization: token <token>'.", 401)
        if scheme.lower() != "token" or token.strip() not in self.tokens:
            raise Refused("Invalid token.", 401)
        return self.tokens[token.strip()]

    def facility_message(self, data: Any, acls: set[str]) -> None:
        """Apply a ``POST /api/facility`` message (SkyPortal's checks, in its order)."""
        if not isinstance(data, dict) or "followup_request_id" not in data:
            raise Refused('Missing required key "followup_request_id".')
        try:
            request_id = int(data["followup_request_id"])
        except (TypeError, ValueError):
            raise Refused("Invalid followup_request_id.") from None
        with self._lock:
            request = self._requests_by_id.get(request_id)
        if request is None:
            raise Refused(f"Cannot find FollowupRequest with ID: {request_id}")
        listener = self.listeners.get(request.listener)
        if listener is None:
            raise Refused(f"The instrument of FollowupRequest {request_id} has no listener {request.listener}.")
        if SYSTEM_ADMIN not in acls and listener.get_acl_id() not in acls:
            raise Refused("Insufficient permissions.")
        try:
            jsonschema.validate(data, listener.complete_schema())
        except jsonschema.ValidationError as exc:  # uncaught in SkyPortal: a 500
            raise Refused(str(exc), 500) from None
        reason = listener.refusal(self._model_view(request_id, request))
        if reason is not None:
            raise Refused(reason)
        with self._lock:
            request.statuses.append(data["new_status"])
            self._accepted.append(Accepted("status", request.obj_id, data["new_status"], followup_request_id=request_id))

    def _model_view(self, request_id: int, request: _Request) -> Any:
        """The request as SkyPortal's models show it to a listener: ``id``, ``allocation`` (``id``,
        ``instrument_id``, ``instrument``: ``id``, ``name``, ``api_classname``,
        ``listener_classname``)."""
        with self._lock:
            known = self._instruments.get(request.instrument_id)
        instrument = SimpleNamespace(
            id=request.instrument_id,
            name=known.name if known else None,
            api_classname=known.api_classname if known else None,
            listener_classname=request.listener,
        )
        allocation = SimpleNamespace(id=request.allocation_id, instrument_id=request.instrument_id, instrument=instrument)
        return SimpleNamespace(id=request_id, allocation=allocation)

    def store_photometry(self, body: Any, *, idempotent: bool) -> dict[str, Any]:
        """Store points of a ``POST`` (duplicates refused) or ``PUT`` (duplicates reused)."""
        if not isinstance(body, dict):
            raise Refused("Invalid input format: expected a JSON object.")
        points = _points(body)
        if len(points) > MAX_UPLOAD_ROWS:
            raise Refused(
                f"Maximum number of photometry rows to post exceeded: {len(points)} > {MAX_UPLOAD_ROWS}. "
                "Please break up the data into smaller sets and try again"
            )
        upload_id = str(uuid.uuid4())
        with self._lock:
            for point in points:
                if not self._known_object(point["obj_id"]):
                    raise Refused(f"Invalid object ID: {point['obj_id']}")
                instrument = self._instruments.get(point["instrument_id"])
                if instrument is None:
                    raise Refused(f"Invalid instrument ID: {point['instrument_id']}")
                if point["filter"] not in instrument.filters:
                    raise Refused(f"Instrument {instrument.name} has no filter {point['filter']}.")
            keys = [_dedup_key(point) for point in points]
            existing = [self._points[key]["id"] for key in keys if key in self._points]
            if existing and not idempotent:
                raise Refused(f"The following photometry already exists in the database: {existing}.")
            ids = []
            for key, point in zip(keys, points, strict=True):
                if key not in self._points:
                    flux, fluxerr = _flux(point)
                    stored = point | {"id": next(self._point_ids), "flux": flux, "fluxerr": fluxerr, "upload_id": upload_id}
                    self._points[key] = stored | {"group_ids": body.get("group_ids", [])}
                ids.append(self._points[key]["id"])
            per_object = Counter(point["obj_id"] for point in points)
            self._accepted += [Accepted("photometry", obj_id, count) for obj_id, count in per_object.items()]
        return {"ids": ids, "upload_id": upload_id}

    def _known_object(self, obj_id: str) -> bool:
        return obj_id in self._sources or any(r.obj_id == obj_id for r in self._requests_by_id.values())

    def followup_requests(self, obj_id: str | None) -> dict[str, Any]:
        """``GET /api/followup_request?sourceID=``: the requests on a source, oldest first."""
        with self._lock:
            found = [r.as_dict(i) for i, r in sorted(self._requests_by_id.items()) if obj_id is None or r.obj_id == obj_id]
        return {"followup_requests": found, "totalMatches": len(found)}

    def source(self, obj_id: str) -> dict[str, Any]:
        with self._lock:
            source = self._sources.get(obj_id)
        if source is None:
            raise Refused(f"Source {obj_id} not found")
        return dict(source)

    def offsets(self, obj_id: str, num_offset_stars: int) -> dict[str, Any]:
        """``GET /api/sources/<obj_id>/offsets``, shaped as SkyPortal answers it: ``starlist_info``
        holds the source itself first (``str``, ``ra``, ``dec``, ``name``), then up to
        ``num_offset_stars`` offset stars (``str``, ``ra``, ``dec``, ``name``, ``dras``, ``ddecs``,
        ``mag``, ``pa``). The stars are the ones given with :meth:`add_offset_stars` (SkyPortal
        queries Gaia for them)."""
        source = self.source(obj_id)
        with self._lock:
            stars = self._offset_stars.get(obj_id, [])[:num_offset_stars]
        starlist = [{"str": f"{obj_id} source", "ra": source["ra"], "dec": source["dec"], "name": obj_id}]
        for number, star in enumerate(stars, 1):
            # As SkyPortal gives them: the offsets from the star to the source, and the source's
            # position angle seen from the star (flat-sky approximation, fine over arcminutes).
            east = (source["ra"] - star["ra"]) * 3600.0 * math.cos(math.radians(source["dec"]))
            north = (source["dec"] - star["dec"]) * 3600.0
            starlist.append(
                {
                    "str": f"{obj_id}_o{number} offset star",
                    "ra": star["ra"],
                    "dec": star["dec"],
                    "name": star.get("name", f"{obj_id}_o{number}"),
                    "dras": f'{abs(east):.3f}" {"E" if east > 0 else "W"}',
                    "ddecs": f'{abs(north):.3f}" {"N" if north > 0 else "S"}',
                    "mag": star["mag"],
                    "pa": math.degrees(math.atan2(east, north)) % 360.0,
                }
            )
        return {
            "facility": "Keck",
            "starlist_str": "\n".join(entry["str"] for entry in starlist),
            "starlist_info": starlist,
            "ra": source["ra"],
            "dec": source["dec"],
            "queries_issued": 1,
            "noffsets": len(stars),
            "query": "(Gaia query)",
        }


class _SkyPortalHandler(LoopbackHandler):
    """Token authentication and SkyPortal's JSON envelope."""

    acls: set[str]

    @property
    def skyportal(self) -> SkyPortalStub:
        return self.server  # type: ignore[return-value]

    async def prepare(self) -> None:
        await super().prepare()
        try:
            self.acls = self.skyportal.acls(self.request.headers.get("Authorization"))
        except Refused as exc:
            self.error(exc)
            raise tornado.web.Finish() from None

    def body(self) -> Any:
        try:
            return json.loads(self.request.body or b"{}")
        except ValueError:
            raise Refused("Malformed JSON data") from None

    def success(self, data: Any) -> None:
        self.send_json({"status": "success", "data": data, "version": VERSION})

    def error(self, exc: Refused) -> None:
        self.send_json({"status": "error", "message": str(exc), "data": {}, "version": VERSION}, exc.status)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.error(Refused(responses.get(status_code, "Error"), status_code))


class FacilityHandler(_SkyPortalHandler):
    def post(self) -> None:
        try:
            self.skyportal.facility_message(self.body(), self.acls)
        except Refused as exc:
            return self.error(exc)
        self.success({})


class PhotometryHandler(_SkyPortalHandler):
    def _store(self, idempotent: bool) -> None:
        try:
            data = self.skyportal.store_photometry(self.body(), idempotent=idempotent)
        except Refused as exc:
            return self.error(exc)
        self.success(data)

    def post(self) -> None:
        self._store(idempotent=False)

    def put(self) -> None:
        self._store(idempotent=True)


class SourceHandler(_SkyPortalHandler):
    def get(self, obj_id: str) -> None:
        try:
            self.success(self.skyportal.source(obj_id))
        except Refused as exc:
            self.error(exc)


class OffsetsHandler(_SkyPortalHandler):
    def get(self, obj_id: str) -> None:
        try:
            count = int(self.get_query_argument("num_offset_stars", "3"))
        except ValueError:
            return self.error(Refused("Invalid num_offset_stars"))
        try:
            self.success(self.skyportal.offsets(obj_id, max(0, min(count, 10))))
        except Refused as exc:
            self.error(exc)


class FollowupRequestListHandler(_SkyPortalHandler):
    def get(self) -> None:
        self.success(self.skyportal.followup_requests(self.get_query_argument("sourceID", None)))
