"""The WINTER observatory's ToO API, shared by its cameras (WINTER and SPRING).

Protocol (the observatory's own client ``winterapi`` (``endpoints.py``, ``base_api.py``,
``messenger.py``, its example notebooks), the request model of ``wintertoo``
(``models/too.py``), and SkyPortal's ``winter/`` classes):

- every call carries HTTP Basic authentication (the user's login) and the query parameters
  ``program_name`` and ``program_api_key``;
- ``POST <base>/too/<camera>?...&submit_trigger=True|False`` with a JSON list of ToO requests, each
  ``{"ra_deg", "dec_deg", "use_field_grid", "filters", "target_priority", "target_name" (at most
  30 characters), "total_exposure_time" (over all dithers), "n_repetitions", "n_dither",
  "dither_distance", "start_time_mjd", "end_time_mjd", "max_airmass"}`` (wintertoo forbids other
  keys; 0.28 to 300 s per dither; an end not in the past). HTTP 200 ``{"msg", "body"}``: with
  ``submit_trigger`` true the ``msg`` names the schedule, ``... Schedule name is '<name>' .``; with
  it false, ``Request passed validation! Triggering was set to False. Schedule was not saved to
  disk and has no assigned name.`` Any other status is a refusal, its body the reason;
- ``DELETE <base>/too/delete?...&schedule_name=<name>``: HTTP 200 ``{"msg": "Deleted <name>"}``;
- ``GET <base>/too/summary`` and ``/too/details`` list the program's schedules (not used here:
  a schedule lives for its whole window, a week by default, longer than the gateway follows a
  request).

The observatory's published address is plain http (``http://winter.caltech.edu:82``); the login
and the program key never travel over plain http here, so a deployment reaches it over https or
through a loopback tunnel it sets up (``core/egress.py``).
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, ClassVar

from ...core.answers import expect, json_object
from ...core.egress import EgressRefused
from ...core.errors import PayloadError, RemoteNotFound
from ...core.interface import Facility, FollowupRequest, Kind, Target, common_config_keys
from ...core.outcome import Outcome, State
from ...core.schemas import load_document, load_schema
from ...core.timeutil import iso_date, to_mjd, utcnow
from ...core.transport import HTTPCall, Transport
from ...notify import Event, Notifier, notification_altdata

DEFAULT_BASE_URL = "http://winter.caltech.edu:82"
SERVICE = "WINTER"
MAX_TARGET_NAME = 30
_SCHEDULE = re.compile(r"Schedule name is '([^']+)'")
VALIDATED_ONLY = "Triggering was set to False"


@dataclasses.dataclass(frozen=True)
class Sequence:
    """A camera's default dithered sequence for one filter: ``n_dither`` exposures of
    ``exposure_time`` seconds."""

    exposure_time: float
    n_dither: int


class WinterToOFacility(Facility, abstract=True):
    """A camera of the WINTER observatory, through its ToO API. A camera declares ``camera`` (the
    path word, ``winter`` or ``spring``), ``defaults`` (its sequence per filter) and
    ``dither_distance`` (its default, arcseconds).

    Configuration (deployment-wide): ``base_url`` (the ToO API; the published one is plain http,
    which credentials never use: configure an https endpoint or a loopback tunnel) and ``notify``
    (the notification settings, see ``docs/notifications.md``).
    """

    kind: ClassVar[Kind] = Kind.OBSERVATION
    setup_url: ClassVar[str] = "https://github.com/winter-telescope/winterapi"
    example_remote_id: ClassVar[str] = "request_2026A000_2026_10_05_12_23_18"
    config_keys: ClassVar[Mapping[str, str]] = common_config_keys("base_url", "notify")
    base_url_key: ClassVar[str | None] = "base_url"
    date_fields: ClassVar[tuple[str, ...]] = ("start_date", "end_date")
    camera: ClassVar[str]
    defaults: ClassVar[Mapping[str, Sequence]]
    dither_distance: ClassVar[float]

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        self.notifier = Notifier(self.config, egress=self.egress)

    @property
    def base_url(self) -> str:
        return str(self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    # -- the forms -----------------------------------------------------------------------------

    @classmethod
    def altdata_schema(cls) -> dict[str, Any]:
        """The observatory's shared allocation form with the notification branch."""
        schema = load_schema("winter_too/altdata", cls.schema_package)
        schema["$id"] = f"facility_apis/{cls.name}/altdata"
        return notification_altdata(schema)

    def check_altdata(self, altdata: dict[str, Any]) -> None:
        self.notifier.check_altdata(altdata, self.altdata_schema())

    def request_document(self) -> dict[str, Any]:
        """The observatory's shared form, with this camera's defaults in words and numbers."""
        schema = load_schema("winter_too/request", self.schema_package)
        schema["$id"] = f"facility_apis/{self.name}/request"
        schema["title"] = f"{self.title} ToO request"
        properties = schema["properties"]
        listed = "; ".join(f"{band}: {seq.n_dither} × {seq.exposure_time:g} s" for band, seq in self.defaults.items())
        for key in ("exposure_time", "n_dither"):
            properties[key]["description"] += f" {self.title}'s defaults: {listed}."
        properties["dither_distance"]["default"] = self.dither_distance
        properties["dither_distance"]["description"] += f" Default {self.dither_distance:g}."
        return schema

    @classmethod
    def ui_schema(cls) -> dict[str, Any]:
        return load_document("winter_too/ui", cls.schema_package)

    def request_defaults(self) -> dict[str, Any]:
        today = utcnow()
        return {"start_date": iso_date(today), "end_date": iso_date(today + timedelta(days=7))}

    def check_payload(self, payload: dict[str, Any]) -> None:
        start, end = date.fromisoformat(payload["start_date"]), date.fromisoformat(payload["end_date"])
        if end < start:
            raise PayloadError.single("$.end_date", "must not be before start_date")
        if end < utcnow().date():
            raise PayloadError.single("$.end_date", "must not be in the past (UTC)")

    def validate_payload(self, payload: Mapping[str, Any], target: Target | None = None) -> dict[str, Any]:
        """As the base class, then the camera's sequence for the chosen filter fills an empty
        ``exposure_time`` or ``n_dither``."""
        filled = super().validate_payload(payload, target)
        sequence = self.defaults[filled["filter"]]
        filled.setdefault("exposure_time", sequence.exposure_time)
        filled.setdefault("n_dither", sequence.n_dither)
        return filled

    # -- the calls -----------------------------------------------------------------------------

    def _auth(self, altdata: Mapping[str, Any]) -> dict[str, str]:
        login = base64.b64encode(f"{altdata['username']}:{altdata['password']}".encode()).decode("ascii")
        return {"Authorization": f"Basic {login}", "Accept": "application/json"}

    @staticmethod
    def _program(altdata: Mapping[str, Any]) -> dict[str, str]:
        return {"program_name": altdata["program_name"], "program_api_key": altdata["program_api_key"]}

    def _too(self, request: FollowupRequest) -> dict[str, Any]:
        """The ToO request (wintertoo's ``RaDecToO`` fields)."""
        payload, target = self.validate_payload(request.payload), request.target
        if len(target.id) > MAX_TARGET_NAME:
            raise PayloadError.single("$", f"the observatory takes target names of at most {MAX_TARGET_NAME} characters; this source's id is longer")
        exposure, dithers = float(payload["exposure_time"]), int(payload["n_dither"])
        return {
            "ra_deg": target.ra,
            "dec_deg": target.dec,
            "use_field_grid": False,
            "filters": [payload["filter"]],
            "target_priority": float(payload["priority"]),
            "target_name": target.id,
            "total_exposure_time": round(exposure * dithers, 6),
            "n_repetitions": 1,
            "n_dither": dithers,
            "dither_distance": float(payload["dither_distance"]),
            "start_time_mjd": round(to_mjd(payload["start_date"]), 6),
            "end_time_mjd": round(to_mjd(payload["end_date"]) + 1.0, 6),
            "max_airmass": float(payload["maximum_airmass"]),
        }

    def prepare(self, request: FollowupRequest, *, trigger: bool | None = None) -> HTTPCall:
        """The ``POST``; ``trigger`` (default: not ``validate_only``) is ``submit_trigger``."""
        altdata = request.allocation.altdata
        if trigger is None:
            trigger = not request.payload.get("validate_only", False)
        params = {**self._program(altdata), "submit_trigger": "True" if trigger else "False"}
        return HTTPCall("POST", f"{self.base_url}/too/{self.camera}", headers=self._auth(altdata), params=params, json=[self._too(request)])

    def _send(self, call: HTTPCall, transport: Transport) -> str:
        """Send ``call`` and return the answer's ``msg``; typed errors for anything else."""
        if self.egress.refusal(call.url, secret=True) is not None:
            raise EgressRefused(
                f"{self.title}'s ToO API is configured at {self.base_url}, where the login and program key cannot go: "
                "they travel only over https (plain http only to a loopback address); set the facility's base_url"
            )
        response = expect(transport.send(call), 200, service=SERVICE)
        message = json_object(response, service=SERVICE, what="the ToO request").get("msg")
        return message if isinstance(message, str) else ""

    def _sequence(self, request: FollowupRequest) -> str:
        too = self._too(request)
        return f"{too['n_dither']} × {too['total_exposure_time'] / too['n_dither']:g} s in {too['filters'][0]}"

    def remote_validate(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """The same ``POST`` with ``submit_trigger`` false: the observatory checks the request and
        queues nothing."""
        message = self._send(self.prepare(request, trigger=False), transport)
        return Outcome(State.PENDING, f"validated by {self.title} only, nothing queued ({self._sequence(request)}): {message}")

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if request.payload.get("validate_only"):
            outcome = self.remote_validate(request, transport)
            return dataclasses.replace(outcome, detail=f"{outcome.detail} (validate only was asked)")
        message = self._send(self.prepare(request), transport)
        found = _SCHEDULE.search(message)
        if found is None:
            if VALIDATED_ONLY in message:
                return Outcome(State.FAILED, f"{self.title} only validated the request and queued nothing: {message}")
            unsure = f"{self.title}'s answer names no schedule ({message or 'no message'}); it may or may not have been queued"
            return Outcome(State.FAILED, f"{unsure}: check the program's queue before submitting again", maybe_sent=True)
        schedule = found.group(1)
        detail = f"{self.title} queued schedule {schedule} ({self._sequence(request)})"
        note, reference = self._notify(request, transport, Event.NEW)
        return Outcome(State.SUBMITTED, detail + note, remote_id=schedule, cursor=reference)

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if not request.remote_id:
            return Outcome(State.DELETED, f"nothing had been sent to {self.title}")
        altdata = request.allocation.altdata
        params = {**self._program(altdata), "schedule_name": request.remote_id}
        call = HTTPCall("DELETE", f"{self.base_url}/too/delete", headers=self._auth(altdata), params=params)
        try:
            message = self._send(call, transport)
            detail = f"{self.title} deleted schedule {request.remote_id}" + (f" ({message})" if message else "")
        except RemoteNotFound:
            detail = f"{self.title} no longer has schedule {request.remote_id} (already deleted, or its window ended)"
        note, _ = self._notify(dataclasses.replace(request, remote_id=request.cursor), transport, Event.CANCELLED)
        return Outcome(State.DELETED, detail + note, remote_id=request.remote_id)

    def _notify(self, request: FollowupRequest, transport: Transport, event: Event) -> tuple[str, str | None]:
        """Announce ``event`` when the allocation asks for it: a note for the detail and the
        notice's reference (kept as the cursor, so the cancellation answers the first notice). A
        failed notice never fails what the observatory did."""
        announced = self.notifier.announce(request, transport, event, facility=self.title, form=self.request_schema())
        return announced.note, announced.reference
