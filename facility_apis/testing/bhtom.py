"""A BHTOM stand-in on loopback: the target, photometry and reduced-data endpoints of BHTOM's REST API.

Source: BHTOM's API guide (``Documentation/DocumentationAPI.md`` of BHTOM-Team/bhtom2) for the
endpoints and bodies, and the service's views where the guide is silent (answers and statuses):

- ``POST /api/token-auth/`` ``{"username", "password"}`` -> ``{"token"}``; bad credentials 400
  ``{"non_field_errors": [...]}``. Every other endpoint needs ``Authorization: Token <token>``
  (401 ``{"detail": ...}`` otherwise).
- ``POST /targets/getTargetList/``: filters ``name`` (exact), ``coneSearchRaDecRadius``
  (``"ra,dec,radius"`` in degrees; an unreadable one is ignored, as BHTOM does), ``raMin``/
  ``raMax``/``decMin``/``decMax``, ``importanceMin``/``importanceMax``, ``classification``;
  200 targets a page, oldest first; ``{"count", "num_pages", "current_page", "data"}``; a page past
  the end answers the last page, a page that is not a number the first.
- ``POST /targets/createTarget/``: 201 with the target; field errors answered with **404**
  (unknown fields, a taken or forbidden name, coordinates out of range, a class not in the list);
  a target within 3 arcsec of another: 400.
- ``PATCH /targets/updateTarget/<name>/``: 201 ``{"Status": "updated"}``; field errors 404; an
  unknown name: Django's HTML "Server Error (500)" page.
- ``DELETE /targets/deleteTarget/`` ``{"name"}``: ``{"status": "deleted"}``; unknown: the 500 page.
- ``POST /targets/download-photometry/`` ``{"name"}``: the light curve as a semicolon-separated
  file (``MJD;Magnitude;Error;Facility;Filter;Observer``, sorted by MJD, active magnitude points
  only); no name: 400 ``{"Error": ...}``; unknown target: the 500 page.
- ``POST /common/api/reducedDatum/`` ``{"target_name"|"target_id", "page"}``: the target's reduced
  data, 500 a page (1000 for staff users); a page out of range 400 ``{"error": ...}``.

The telescope network is simulated: with ``network_interval`` (seconds), every target whose
importance is above 0 gains one point per ``network_filters`` entry each interval (every fourth
visit a limit, error -1), so the photometry changes over time; ``upload`` adds points as an
observer's late upload would. BHTOM is also said to answer some failures with an error object and
HTTP 200: ``error_next`` makes the next matching call do exactly that.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import tornado.web

from ..core.coordinates import separation_deg
from .atlas import TokenAuthHandler  # DRF's obtain-auth-token view, as ATLAS serves it too
from .server import LoopbackHandler, LoopbackServer

PAGE_SIZE = 200
REDUCED_PAGE_SIZE = 500
REDUCED_PAGE_SIZE_STAFF = 1000
DUPLICATE_RADIUS_DEG = 3.0 / 3600.0
CLASSIFICATIONS = frozenset({
    "Unknown", "Be-star outburst", "AGN", "BL Lac", "CV", "CEPH", "EB", "Galaxy", "LPV", "LBV", "M-dwarf flare",
    "Microlensing Event", "Nova", "Peculiar Supernova", "QSO", "RCrB", "RR Lyrae Variable", "SSO", "Star", "SN",
    "Supernova imposter", "Symbiotic star", "TDE", "Variable star-other", "XRB", "YSO",
})  # fmt: skip
WRITABLE = ("name", "ra", "dec", "epoch", "description", "classification", "discovery_date", "importance", "cadence")
FORBIDDEN_NAME_CHARS = set("()/\\:")
SERVER_ERROR_PAGE = (
    '<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n</head>\n'
    "<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"
)
CSV_HEADER = "MJD;Magnitude;Error;Facility;Filter;Observer"
MJD_UNIX_EPOCH = 40587.0


def mjd_now(now: float | None = None) -> float:
    return MJD_UNIX_EPOCH + (time.time() if now is None else now) / 86400.0


@dataclass
class Datum:
    """A ``ReducedDatum``: one magnitude point of a target."""

    id: int
    mjd: float
    value: float
    error: float
    facility: str
    filter: str
    observer: str
    active: bool = True

    def csv_line(self) -> str:
        return ";".join((repr(self.mjd), repr(self.value), repr(self.error), self.facility, self.filter, self.observer))


@dataclass
class Target:
    id: int
    name: str
    ra: float
    dec: float
    epoch: float = 2000.0
    classification: str = "Unknown"
    description: str | None = None
    discovery_date: str | None = None
    importance: float = 9.98
    cadence: float = 1.0
    created: float = field(default_factory=time.time)
    owner: str = ""
    data: list[Datum] = field(default_factory=list)
    next_visit: float = 0.0
    visits: int = 0

    def fields(self) -> dict[str, Any]:
        """The target as ``getTargetList`` lists it (its model fields)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.created)) + "Z"
        last = max(self.data, key=lambda d: d.mjd, default=None)
        return {
            "name": self.name, "type": "SIDEREAL", "ra": self.ra, "dec": self.dec, "epoch": self.epoch,
            "classification": self.classification, "description": self.description, "discovery_date": self.discovery_date,
            "importance": self.importance, "cadence": self.cadence, "priority": round(self.importance * 1.0, 2),
            "mjd_last": last.mjd if last else 0, "mag_last": last.value if last else 100,
            "created": stamp, "modified": stamp, "aliases": [], "groups": [],
        }  # fmt: skip


class Refusal(Exception):
    """An answer other than success: ``status`` and a JSON ``body`` (or ``html``)."""

    def __init__(self, status: int, body: Any = None, html: str | None = None):
        super().__init__(status)
        self.status, self.body, self.html = status, body, html


NOT_FOUND_500 = Refusal(500, html=SERVER_ERROR_PAGE)  # Target.objects.get raising DoesNotExist, uncaught


@dataclass
class User:
    username: str
    password: str
    token: str
    staff: bool = False


class BHTOMEmulator(LoopbackServer):
    """BHTOM on ``127.0.0.1`` (see the module docstring). ``users``: ``{username: (password,
    token)}``; ``network_interval``: seconds between simulated visits of every target with
    importance above 0 (``None``: no visits); ``network_filters``: one point each per visit."""

    def __init__(
        self,
        users: dict[str, tuple[str, str]] | None = None,
        *,
        network_interval: float | None = None,
        network_filters: Iterable[str] = ("V(GaiaSP)", "g(GaiaSP)"),
        staff: Iterable[str] = (),
    ) -> None:
        super().__init__()
        given = users if users is not None else {"observer": ("observer-password", "bhtom-token-0001")}
        self.users = {name: User(name, password, token, name in set(staff)) for name, (password, token) in given.items()}
        self.network_interval = network_interval
        self.network_filters = tuple(network_filters)
        self._lock = threading.RLock()
        self._targets: dict[str, Target] = {}
        self._target_ids = itertools.count(1)
        self._datum_ids = itertools.count(1)

    def routes(self) -> list[Any]:
        return [
            (r"/api/token-auth/", TokenAuthHandler),
            (r"/targets/getTargetList/", TargetListHandler),
            (r"/targets/createTarget/", CreateTargetHandler),
            (r"/targets/updateTarget/([^/]+)/", UpdateTargetHandler),
            (r"/targets/deleteTarget/", DeleteTargetHandler),
            (r"/targets/download-photometry/", DownloadPhotometryHandler),
            (r"/common/api/reducedDatum/", ReducedDatumHandler),
        ]

    @property
    def base_url(self) -> str:
        return self.url

    # -- set-up and inspection ---------------------------------------------------------------

    def add_target(self, name: str, ra: float, dec: float, *, owner: str = "someone-else", **fields: Any) -> None:
        """A target already on BHTOM (someone else's by default)."""
        with self._lock:
            target = Target(next(self._target_ids), name, ra, dec, owner=owner, **fields)
            target.next_visit = target.created + (self.network_interval or 0.0)
            self._targets[name] = target

    def upload(self, name: str, points: Iterable[tuple[float, float, float, str, str, str]]) -> None:
        """Add ``(mjd, magnitude, error, facility, filter, observer)`` points to a target, as an
        upload would (a point already there is not added twice)."""
        with self._lock:
            target = self._targets[name]
            known = {(d.mjd, d.value, d.error, d.facility, d.filter, d.observer) for d in target.data}
            for point in points:
                if tuple(point) not in known:
                    target.data.append(Datum(next(self._datum_ids), *point))
                    known.add(tuple(point))

    def target(self, name: str) -> dict[str, Any] | None:
        """A target's fields (and ``owner``), or ``None``."""
        with self._lock:
            target = self._targets.get(name)
            return None if target is None else target.fields() | {"owner": target.owner}

    def targets(self) -> list[str]:
        with self._lock:
            return list(self._targets)

    def points(self, name: str) -> list[Datum]:
        with self._lock:
            self._visit(time.time())
            return [Datum(**vars(d)) for d in self._targets[name].data]

    def error_next(self, message: str, path_prefix: str | None = None, *, count: int = 1, key: str = "Error") -> None:
        """Answer the next ``count`` matching calls with ``{key: message}`` and HTTP 200."""
        self.faults.add("status", count, path_prefix, status=200, body={key: message})

    # -- the service's rules -----------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> User:
        scheme, _, token = (authorization or "").partition(" ")
        if not authorization:
            raise Refusal(401, {"detail": "Authentication credentials were not provided."})
        if scheme != "Token" or not token:
            raise Refusal(401, {"detail": "Invalid token header. No credentials provided."})
        user = next((u for u in self.users.values() if u.token == token.strip()), None)
        if user is None:
            raise Refusal(401, {"detail": "Invalid token."})
        return user

    def token_for(self, username: str, password: str) -> str | None:
        user = self.users.get(username)
        return user.token if user is not None and user.password == password else None

    def _visit(self, now: float) -> None:
        """The network's visits due by ``now``: one point per filter per visit (lock held)."""
        if not self.network_interval:
            return
        for target in self._targets.values():
            while target.next_visit <= now:
                if target.importance > 0:
                    target.visits += 1
                    mjd = mjd_now(target.next_visit)
                    limit = target.visits % 4 == 0
                    step = self.network_interval / 86400.0 / (len(self.network_filters) + 1)  # one filter after the other
                    for offset, band in enumerate(self.network_filters):
                        value = round(17.0 + 0.05 * target.visits + 0.3 * offset, 3)
                        error = -1.0 if limit else 0.031
                        target.data.append(Datum(next(self._datum_ids), round(mjd + offset * step, 8), value, error, "Bialkow-Andor", band, "bhtom-observer"))
                target.next_visit += self.network_interval

    def list_targets(self, criteria: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            found = sorted(self._targets.values(), key=lambda t: (t.created, t.id))
            try:
                for key, test in (
                    ("name", lambda t, v: t.name == v),
                    ("raMin", lambda t, v: t.ra >= float(v)),
                    ("raMax", lambda t, v: t.ra <= float(v)),
                    ("decMin", lambda t, v: t.dec >= float(v)),
                    ("decMax", lambda t, v: t.dec <= float(v)),
                    ("importanceMin", lambda t, v: t.importance >= float(v)),
                    ("importanceMax", lambda t, v: t.importance <= float(v)),
                    ("classification", lambda t, v: t.classification == v),
                ):
                    if criteria.get(key) is not None:
                        found = [t for t in found if test(t, criteria[key])]
            except (TypeError, ValueError) as exc:
                raise Refusal(400, f"Wrong format: {exc}") from None
            cone = criteria.get("coneSearchRaDecRadius")
            if cone:
                try:
                    ra, dec, radius = (float(x.strip()) for x in str(cone).split(","))
                    found = [t for t in found if separation_deg(ra, dec, t.ra, t.dec) <= radius]
                except ValueError:
                    pass  # BHTOM logs the error and ignores the cone
            self._visit(time.time())
            pages = max(1, math.ceil(len(found) / PAGE_SIZE))
            try:
                page = int(criteria.get("page", 1))
            except (TypeError, ValueError):
                page = 1
            page = pages if page > pages or page < 1 else page
            data = [t.fields() for t in found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]]
            return {"count": len(found), "num_pages": pages, "current_page": page, "data": data}

    def _check_fields(self, data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        """The serializer's checks: every failure is answered with HTTP 404, as BHTOM does."""
        unknown = sorted(set(data) - set(WRITABLE))
        errors: dict[str, list[str]] = {}
        if creating:
            for name in ("name", "ra", "dec"):
                if data.get(name) in (None, ""):
                    errors[name] = ["This field is required."]
        name = data.get("name")
        if isinstance(name, str) and name:
            if len(name) > 100:
                errors["name"] = ["Ensure this field has no more than 100 characters."]
            elif set(name) & FORBIDDEN_NAME_CHARS:
                errors["name"] = ["Target name cannot contain any of: ( ) / \\ :"]
            elif creating and name in self._targets:
                errors["name"] = ["target with this name already exists."]
        for number in ("ra", "dec", "epoch", "importance", "cadence"):
            if number in data and data[number] is not None and (isinstance(data[number], bool) or not isinstance(data[number], (int, float))):
                errors[number] = ["A valid number is required."]
        if "classification" in data and data["classification"] not in CLASSIFICATIONS:
            errors["classification"] = [f'"{data["classification"]}" is not a valid choice.']
        if "description" in data and isinstance(data["description"], str) and len(data["description"]) > 200:
            errors["description"] = ["Ensure this field has no more than 200 characters."]
        if errors:
            raise Refusal(404, errors)
        if unknown:
            raise Refusal(404, {"non_field_errors": [f"Unknown field(s): {', '.join(unknown)}"]})
        ra, dec = float(data.get("ra", 0)), float(data.get("dec", 0))
        if ra < 0 or ra > 360 or dec < -90 or dec > 90:
            raise Refusal(404, {"non_field_errors": ["Coordinates beyond range"]})
        return data

    def create_target(self, data: dict[str, Any], user: User) -> dict[str, Any]:
        with self._lock:
            data = self._check_fields(data, creating=True)
            ra, dec = float(data["ra"]), float(data["dec"])
            if any(separation_deg(ra, dec, t.ra, t.dec) <= DUPLICATE_RADIUS_DEG for t in self._targets.values()):
                raise Refusal(400, ["Source found already at these coordinates (rad 3 arcsec)"])
            values = {key: data[key] for key in WRITABLE if key in data and key not in ("name", "ra", "dec")}
            self.add_target(str(data["name"]), ra, dec, owner=user.username, **values)
            target = self._targets[str(data["name"])]
            return {key: getattr(target, key) for key in WRITABLE} | {"has_optical": True}

    def update_target(self, name: str, data: dict[str, Any]) -> None:
        with self._lock:
            target = self._targets.get(name)
            if target is None:
                raise NOT_FOUND_500
            data = self._check_fields(data, creating=False)
            self._visit(time.time())
            renamed = data.pop("name", name)
            if renamed != name and renamed in self._targets:
                raise Refusal(404, {"name": ["target with this name already exists."]})
            for key, value in data.items():
                setattr(target, key, value)
            target.name = renamed
            self._targets[renamed] = self._targets.pop(name)

    def delete_target(self, name: Any) -> None:
        with self._lock:
            if name not in self._targets:
                raise NOT_FOUND_500
            del self._targets[name]

    def download(self, name: str) -> str:
        with self._lock:
            target = self._targets.get(name)
            if target is None:
                raise NOT_FOUND_500
            self._visit(time.time())
            lines = [d.csv_line() for d in sorted(target.data, key=lambda d: d.mjd) if d.active]
            return "\n".join([CSV_HEADER, *lines]) + "\n"

    def reduced_data(self, data: dict[str, Any], user: User) -> dict[str, Any]:
        target_id, target_name = data.get("target_id"), data.get("target_name")
        if bool(target_id) == bool(target_name):
            raise Refusal(400, {"error": "Provide either 'target_id' or 'target_name', but not both."})
        with self._lock:
            self._visit(time.time())
            target = self._targets.get(target_name) if target_name else next((t for t in self._targets.values() if t.id == target_id), None)
            if target is None:
                raise Refusal(404, {"error": "Target does not exist."})
            size = REDUCED_PAGE_SIZE_STAFF if user.staff else REDUCED_PAGE_SIZE
            pages = max(1, math.ceil(len(target.data) / size))
            try:
                page = int(data.get("page", 1))
            except (TypeError, ValueError):
                raise Refusal(400, {"error": "Invalid page number."}) from None
            if not 1 <= page <= pages:
                raise Refusal(400, {"error": "Invalid page number."})
            rows = [
                {
                    "id": d.id, "target": target.id, "data_product": None, "data_type": "photometry", "source_name": "", "source_location": "",
                    "mjd": d.mjd, "timestamp": None, "observer": d.observer, "observers": [], "facility": d.facility, "value": d.value,
                    "value_list": [], "value_unit": "MAG", "error": d.error, "error_list": [], "filter": d.filter, "wavelengths": [],
                    "extra_data": None, "active_flg": d.active,
                }
                for d in target.data[(page - 1) * size : page * size]
            ]  # fmt: skip
            return {"count": len(target.data), "num_pages": pages, "current_page": page, "data": rows}


def _json_body(handler: LoopbackHandler) -> dict[str, Any]:
    """The request's JSON object, as DRF's parser would refuse it."""
    try:
        data = json.loads(handler.request.body or b"{}")
    except ValueError as exc:
        raise Refusal(400, {"detail": f"JSON parse error - {exc}"}) from None
    if not isinstance(data, dict):
        raise Refusal(400, {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
    return data


class _BHTOMHandler(LoopbackHandler):
    """A DRF ``APIView`` with token authentication; ``Refusal`` becomes the answer."""

    user: User

    @property
    def bhtom(self) -> BHTOMEmulator:
        return self.server  # type: ignore[return-value]

    async def prepare(self) -> None:
        await super().prepare()
        try:
            self.user = self.bhtom.authenticate(self.request.headers.get("Authorization"))
        except Refusal as exc:
            self.refuse(exc)

    def refuse(self, refusal: Refusal) -> NoReturn:
        if refusal.html is not None:
            self.set_status(refusal.status)
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(refusal.html)
        else:
            headers = {"WWW-Authenticate": "Token"} if refusal.status == 401 else None
            self.send_json(refusal.body, refusal.status, headers)
        raise tornado.web.Finish()

    def answer(self, work: Any) -> None:
        try:
            result = work()
        except Refusal as exc:
            self.refuse(exc)
        if isinstance(result, tuple):
            self.send_json(result[1], result[0])
        else:
            self.send_json(result)


class TargetListHandler(_BHTOMHandler):
    def post(self) -> None:
        self.answer(lambda: self.bhtom.list_targets(_json_body(self)))


class CreateTargetHandler(_BHTOMHandler):
    def post(self) -> None:
        self.answer(lambda: (201, self.bhtom.create_target(_json_body(self), self.user)))


class UpdateTargetHandler(_BHTOMHandler):
    def patch(self, name: str) -> None:
        def work() -> tuple[int, dict[str, str]]:
            self.bhtom.update_target(name, _json_body(self))
            return 201, {"Status": "updated"}

        self.answer(work)


class DeleteTargetHandler(_BHTOMHandler):
    def delete(self) -> None:
        def work() -> dict[str, str]:
            self.bhtom.delete_target(_json_body(self).get("name"))
            return {"status": "deleted"}

        self.answer(work)


class DownloadPhotometryHandler(_BHTOMHandler):
    def post(self) -> None:
        try:
            data = _json_body(self)
            name = data.get("name")
            if not isinstance(name, str) or not name:
                raise Refusal(400, {"Error": "Something went wrong"})
            text = self.bhtom.download(name)
        except Refusal as exc:
            self.refuse(exc)
        self.set_header("Content-Type", "text/csv")
        self.set_header("Content-Disposition", f'attachment; filename="target_{name}_photometry.csv"')
        self.finish(text)


class ReducedDatumHandler(_BHTOMHandler):
    def post(self) -> None:
        self.answer(lambda: self.bhtom.reduced_data(_json_body(self), self.user))
