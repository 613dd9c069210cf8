"""The Observation Portal client every LCO and SOAR instrument shares.

Protocol (the portal's source, ``observatorycontrolsystem/observation-portal``:
``requestgroups/viewsets.py``, ``serializers.py``, ``models.py``, ``filters.py``,
``common/state_changes.py``; LCO's examples, ``LCOGT/observation-portal-api-examples``). Every
call carries ``Authorization: Token <API_TOKEN>`` and goes to ``<base_url>/api/``:

- ``POST requestgroups/`` with the request group (below) answers 201 with the stored group
  (``id``, ``state``, ``requests`` each with its ``id`` and ``state``); 400 with Django REST
  framework's nested field errors; 401/403 for a refused token; 429 when throttled.
- ``POST requestgroups/validate/`` checks a group without storing it and answers 200 with
  ``{"request_durations": {...}, "errors": {...}}`` (no errors: it would be accepted).
- ``GET requestgroups/<id>/`` shows a group; its ``state`` is PENDING, COMPLETED,
  WINDOW_EXPIRED, FAILURE_LIMIT_REACHED or CANCELED (aggregated from its requests' states).
- ``GET requests/<id>/observations/`` lists a request's scheduled observations, each PENDING,
  IN_PROGRESS, NOT_ATTEMPTED, COMPLETED, CANCELED, ABORTED, FAILED or BAD_DATA.
- ``GET requestgroups/?proposal=&name=&created_after=`` lists groups (``name`` matches
  substrings: the exact name is checked here), paged as ``{"count", "next", "results"}``.
- ``POST requestgroups/<id>/cancel/`` cancels a PENDING group (200, the group); a group in
  another state answers 400 ``{"errors": ["Cannot transition from request state ..."]}``, an
  already canceled one 200 again.

A request group here is one request (``operator`` SINGLE): the instrument's configurations, one
window, the telescope class (and site, where the form picks one), the ICRS target (epoch 2000)
and the constraints. Its ``name`` is the source's id and the follow-up request's, so a submission
whose answer was lost (a 504, a timeout) is looked up by name before anything is sent again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from ...core.answers import expect, json_body, json_object
from ...core.errors import ConfigurationError, CredentialsRefused, FacilityError, FacilityUnavailable, Rejected, RemoteError, RemoteNotFound
from ...core.frames import frames_summary
from ...core.interface import Facility, FollowupRequest, Kind, common_config_keys
from ...core.outcome import Outcome, State
from ...core.schemas import load_schema
from ...core.timeutil import parse_utc, utcnow
from ...core.transport import HTTPCall, Transport
from . import forms
from .archive import list_frames

DEFAULT_BASE_URL = "https://observe.lco.global"
DEFAULT_ARCHIVE_URL = "https://archive-api.lco.global"
DEFAULT_POLL_INTERVAL = 300.0
#: How long after completion the archive may still be reducing the frames (hours).
DEFAULT_ARCHIVE_WAIT_HOURS = 6.0
#: The archive's reduction level of the BANZAI pipelines' reduced frames.
DEFAULT_REDUCTION_LEVEL = 91
SERVICE = "LCO Observation Portal"
#: A group's or target's name is at most this long (the portal's models).
NAME_LENGTH = 50
#: How far before the lost submission a group found by name may have been created (clock skew).
LOOKUP_MARGIN = timedelta(minutes=10)

#: An observation's state, while its request is still PENDING, in words.
_OBSERVATION_WORDS = {
    "NOT_ATTEMPTED": "was not attempted",
    "FAILED": "failed",
    "ABORTED": "was aborted",
    "BAD_DATA": "gave bad data",
    "COMPLETED": "completed too little of the request",
}


def _moment(value: Any) -> str:
    """An ISO time of the portal's as ``2026-11-21 10:00 UTC`` (the text itself if unreadable)."""
    try:
        return parse_utc(value).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        return str(value)


class ObservationPortalFacility(Facility, abstract=True):
    """Base of the LCO and SOAR instruments: one Observation Portal client.

    An instrument declares ``name``, ``title``, ``skyportal_class``, ``instrument_type``,
    ``telescope_class``, ``network`` (``"lco"``, whose allocations may hold an archive token, or
    ``"soar"``) and ``configurations(request)``; its form fields beyond the shared ones map back
    from the portal's errors through ``form_fields``.

    Configuration (deployment-wide): ``base_url`` (the portal, default
    ``https://observe.lco.global``), ``archive_url`` (default ``https://archive-api.lco.global``),
    ``poll_interval`` (seconds between polls, default 300), ``archive_wait_hours`` (how long after
    completion to wait for reduced frames, default 6), ``reduction_level`` (default 91).
    """

    kind: ClassVar[Kind] = Kind.OBSERVATION
    setup_url: ClassVar[str] = "https://observe.lco.global/accounts/profile/"
    example_remote_id: ClassVar[str] = "1234567"
    config_keys: ClassVar[Mapping[str, str]] = {
        **common_config_keys("base_url", "archive_url", "poll_interval"),
        "archive_wait_hours": "hours after completion to wait for reduced frames before reporting none (default 6)",
        "reduction_level": "the archive's reduction level of the frames listed (default 91, BANZAI's reduced frames)",
    }
    base_url_key: ClassVar[str | None] = "base_url"
    #: The window: a date and time each (SkyPortal's form sends "YYYY-MM-DD HH:MM:SS"), read in
    #: any spelling of ``INSTANT_PATTERN`` and sent to the portal as ``2026-11-21T18:00:00Z``.
    instant_fields: ClassVar[tuple[str, ...]] = ("start_date", "end_date")
    network: ClassVar[str]
    instrument_type: ClassVar[str]
    telescope_class: ClassVar[str]
    #: The instrument's own form fields, as the portal's error paths name them.
    form_fields: ClassVar[Mapping[tuple[str, ...], str]] = {}

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        for key in ("base_url", "archive_url"):
            url = self.config.get(key)
            reason = self.egress.refusal(url, secret=True) if url else None
            if reason is not None:
                raise ConfigurationError(f"the configured {self.name} {key} is refused: {reason}")

    # -- settings ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return str(self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    @property
    def archive_url(self) -> str:
        return str(self.config.get("archive_url") or DEFAULT_ARCHIVE_URL).rstrip("/")

    @property
    def poll_interval(self) -> float:
        return float(self.config.get("poll_interval", DEFAULT_POLL_INTERVAL))

    # -- forms -----------------------------------------------------------------------------------

    @classmethod
    def altdata_schema(cls) -> dict[str, Any]:
        """The allocation form of the instrument's network (``schemas/observation_portal/altdata_<network>.json``)."""
        return load_schema(f"observation_portal/altdata_{cls.network}", cls.schema_package)

    def request_document(self) -> dict[str, Any]:
        return forms.merged_form(load_schema(f"{self.name}/request", self.schema_package), self.schema_package)

    def request_defaults(self) -> dict[str, Any]:
        return forms.window_defaults()

    def check_payload(self, payload: dict[str, Any]) -> None:
        forms.check_window(payload)

    # -- the request group -----------------------------------------------------------------------

    def configurations(self, request: FollowupRequest) -> list[dict[str, Any]]:
        """The instrument's configurations, in the order they are observed."""
        raise NotImplementedError

    def location(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The telescope class, and the site when the form picked one."""
        site = payload.get("site")
        return {"telescope_class": self.telescope_class, **({"site": site} if site and site != "any" else {})}

    @staticmethod
    def target(request: FollowupRequest) -> dict[str, Any]:
        """The source, ICRS at epoch 2000; its name cut to the portal's 50 characters."""
        target = request.target
        return {"name": target.id[:NAME_LENGTH], "type": "ICRS", "ra": target.ra, "dec": target.dec, "epoch": 2000}

    @staticmethod
    def constraints(payload: Mapping[str, Any]) -> dict[str, Any]:
        return {"max_airmass": payload["maximum_airmass"], "min_lunar_distance": payload["minimum_lunar_distance"]}

    def configuration(
        self,
        request: FollowupRequest,
        kind: str,
        instrument_configs: list[dict[str, Any]],
        *,
        instrument_type: str | None = None,
        acquisition: dict[str, Any] | None = None,
        guiding: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One configuration of ``kind`` (EXPOSE, SPECTRUM, ARC, LAMP_FLAT) on the request's target;
        empty acquisition and guiding configurations take the instrument's defaults."""
        return {
            "type": kind,
            "instrument_type": instrument_type or self.instrument_type,
            "target": self.target(request),
            "constraints": self.constraints(request.payload),
            "acquisition_config": acquisition or {},
            "guiding_config": guiding or {},
            "instrument_configs": instrument_configs,
        }

    @staticmethod
    def exposures(payload: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
        """An instrument configuration of the form's exposure time and count, with ``fields``."""
        return {"exposure_time": payload["exposure_time"], "exposure_count": int(payload["exposure_counts"]), **fields}

    def per_filter(self, payload: Mapping[str, Any], **fields: Any) -> list[dict[str, Any]]:
        """An imager's instrument configurations: one per filter chosen, in the form's order."""
        return [self.exposures(payload, **fields, optical_elements={"filter": name}) for name in payload["observation_choices"]]

    @staticmethod
    def bracketed(science: dict[str, Any], calibrations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``calibrations``, the science configuration, then the calibrations again in reverse order."""
        return [*calibrations, science, *reversed(calibrations)]

    @staticmethod
    def group_name(request: FollowupRequest) -> str:
        """The source's id and the follow-up request's, within the portal's 50 characters."""
        suffix = f"_{request.id}" if request.id is not None else ""
        return request.target.id[: NAME_LENGTH - len(suffix)] + suffix

    def request_group(self, request: FollowupRequest) -> dict[str, Any]:
        payload = request.payload
        start, end = forms.window(payload)
        return {
            "name": self.group_name(request),
            "proposal": request.allocation.altdata["PROPOSAL_ID"],
            "ipp_value": payload["priority"],
            "operator": "SINGLE",
            "observation_type": payload["observation_mode"],
            "requests": [
                {
                    "configurations": self.configurations(request),
                    "windows": [{"start": forms.portal_time(start), "end": forms.portal_time(end)}],
                    "location": self.location(payload),
                }
            ],
        }

    # -- calls -------------------------------------------------------------------------------------

    def _headers(self, request: FollowupRequest) -> dict[str, str]:
        return {"Authorization": f"Token {request.allocation.altdata['API_TOKEN']}", "Accept": "application/json"}

    def _get(self, request: FollowupRequest, transport: Transport, path: str, what: str, params: dict[str, Any] | None = None) -> Any:
        response = expect(transport.request("GET", f"{self.base_url}/api/{path}", headers=self._headers(request), params=params), 200, service=SERVICE)
        return json_body(response, service=SERVICE, what=what)

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        return HTTPCall("POST", f"{self.base_url}/api/requestgroups/", headers=self._headers(request), json=self.request_group(request))

    def remote_validate(self, request: FollowupRequest, transport: Transport) -> Outcome:
        call = self.prepare(request)
        response = transport.request("POST", f"{call.url}validate/", headers=call.headers, json=call.json)
        answer = json_object(expect(response, 200, service=SERVICE), service=SERVICE, what="the validation")
        if "errors" not in answer or not isinstance(answer.get("request_durations"), (dict, type(None))):
            raise RemoteError(f"{SERVICE} sent a validation answer without errors or request_durations", permanent=True)
        errors = forms.field_errors(answer["errors"], {**forms.FORM_FIELDS, **self.form_fields})
        if errors:
            raise Rejected(f"{SERVICE} would refuse it: " + "; ".join(map(str, errors)))
        duration = (answer.get("request_durations") or {}).get("duration")
        hours = f": {duration / 3600:.2f} h of telescope time" if isinstance(duration, (int, float)) and not isinstance(duration, bool) else ""
        return Outcome(State.PENDING, f"{SERVICE} would accept it{hours}")

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        call = self.prepare(request)
        sent_at = utcnow()
        try:
            response = transport.send(call)
        except FacilityUnavailable as exc:
            if not exc.sent:
                raise
            return self._find_lost(request, call, sent_at, transport, str(exc))
        try:
            expect(response, 201, service=SERVICE)
            return self._accepted(json_object(response, service=SERVICE, what="the new request group"))
        except RemoteError as exc:
            if 300 <= response.status_code < 500:
                raise  # a redirect or a 404: nothing was stored
            # A 5xx or an unreadable 2xx: the group may have been stored. Find it, never resend.
            return self._find_lost(request, call, sent_at, transport, str(exc))

    def _accepted(self, group: dict[str, Any], found: str = "") -> Outcome:
        number = group.get("id")
        if isinstance(number, bool) or not isinstance(number, int):
            raise RemoteError(f"{SERVICE} named no request group id", permanent=True)
        return Outcome(State.SUBMITTED, f"Observation Portal request group {number}{found}", remote_id=str(number), poll_after=self.poll_interval)

    def _find_lost(self, request: FollowupRequest, call: HTTPCall, sent_at: Any, transport: Transport, reason: str) -> Outcome:
        """A submission that may have reached the portal: find its group by name, never send it
        again. Found once: submitted. Otherwise failed, with no retry and a detail saying what to
        check before submitting again."""
        name, proposal = call.json["name"], call.json["proposal"]
        params = {"proposal": proposal, "name": name, "created_after": forms.portal_time(sent_at - LOOKUP_MARGIN), "limit": 50}
        try:
            listing = self._get(request, transport, "requestgroups/", "the request group list", params)
            results = listing.get("results") if isinstance(listing, dict) else None
            if not isinstance(results, list):
                raise RemoteError(f"{SERVICE} sent a request group list without results")
        except FacilityError as exc:
            detail = f"{reason}; looking it up by name failed ({exc}): check the portal for request group {name!r} before submitting again"
            return Outcome(State.FAILED, detail, maybe_sent=True)
        matches = [g for g in results if isinstance(g, dict) and g.get("name") == name and isinstance(g.get("id"), int) and not isinstance(g.get("id"), bool)]
        if len(matches) == 1:
            return self._accepted(matches[0], f" (found by name after: {reason})")
        if not matches:
            detail = f"{reason}; no request group named {name!r} was found at the portal yet: check it before submitting again"
            return Outcome(State.FAILED, detail, maybe_sent=True)
        numbers = ", ".join(str(group["id"]) for group in matches)
        detail = f"{reason}; the portal holds several request groups named {name!r} ({numbers}): check them before submitting again"
        return Outcome(State.FAILED, detail, maybe_sent=True)

    # -- following -----------------------------------------------------------------------------------

    def get(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if not request.remote_id:
            return Outcome(State.PENDING, "not submitted to the Observation Portal yet")
        group = self._group(request, transport)
        if group is None:
            gone = f"the portal no longer shows request group {request.remote_id} (deleted, or not visible to this token)"
            return Outcome(State.CANCELED, gone, remote_id=request.remote_id)
        return self._follow(request, group, transport)

    def _follow(self, request: FollowupRequest, group: dict[str, Any], transport: Transport, *, recheck: bool = True) -> Outcome:
        """The outcome of a group's state. ``recheck``: a PENDING group whose newest observation
        has ended is read once more, since the group may have ended between the two reads."""
        remote_id = request.remote_id
        state, ids = group["state"], [r["id"] for r in group["requests"]]
        if state == "PENDING":
            outcome, newest = self._pending(request, ids[0], transport)
            if recheck and newest in _OBSERVATION_WORDS:  # it ended: the group may have ended with it
                fresh = self._group(request, transport)
                if fresh is not None and fresh["state"] != "PENDING":
                    return self._follow(request, fresh, transport, recheck=False)
            return outcome
        if state == "COMPLETED":
            return self._completed(request, group, ids, transport)
        ended = {
            "WINDOW_EXPIRED": (State.NO_DATA, "the window ended before the request could be observed"),
            "FAILURE_LIMIT_REACHED": (State.NO_DATA, "the portal stopped trying after too many failed observations"),
            "CANCELED": (State.CANCELED, f"request group {remote_id} was canceled at the portal"),
        }
        if state in ended:
            return Outcome(*ended[state], remote_id=remote_id)
        raise RemoteError(f"{SERVICE} reported request group {remote_id} in an unknown state {state!r}")

    def _group(self, request: FollowupRequest, transport: Transport) -> dict[str, Any] | None:
        """The group, checked to have a state and requests with ids; ``None`` on 404."""
        try:
            group = self._get(request, transport, f"requestgroups/{request.remote_id}/", "the request group")
        except RemoteNotFound:
            return None
        requests_ = group.get("requests") if isinstance(group, dict) else None
        if not (isinstance(group, dict) and isinstance(group.get("state"), str) and isinstance(requests_, list) and requests_):
            raise RemoteError(f"{SERVICE} sent request group {request.remote_id} without a state or requests")
        if not all(isinstance(r, dict) and isinstance(r.get("id"), int) and not isinstance(r.get("id"), bool) for r in requests_):
            raise RemoteError(f"{SERVICE} sent request group {request.remote_id} with a request without an id")
        return group

    def _pending(self, request: FollowupRequest, request_number: int, transport: Transport) -> tuple[Outcome, str | None]:
        """Waiting at the portal: what its newest observation says (scheduled, observing, not
        attempted), and that observation's state (``None`` when there is none)."""
        observations = self._get(request, transport, f"requests/{request_number}/observations/", "the observations", {"exclude_canceled": "true"})
        if not isinstance(observations, list) or not all(isinstance(o, dict) for o in observations):
            raise RemoteError(f"{SERVICE} sent observations that are not a list of objects")
        poll = {"remote_id": request.remote_id, "poll_after": self.poll_interval}
        if not observations:
            return Outcome(State.QUEUED, "waiting to be scheduled", **poll), None
        last = observations[-1]
        where = " ".join(str(last[key]) for key in ("site", "telescope") if last.get(key))
        state, start = last.get("state"), _moment(last.get("start"))
        if state == "PENDING":
            return Outcome(State.QUEUED, f"scheduled at {where} for {start}", **poll), state
        if state == "IN_PROGRESS":
            return Outcome(State.RUNNING, f"observing at {where} since {start}", **poll), state
        words = _OBSERVATION_WORDS.get(state, f"ended as {state}")
        return Outcome(State.QUEUED, f"the observation at {where} on {start} {words}; waiting to be scheduled again", **poll), state

    def _completed(self, request: FollowupRequest, group: dict[str, Any], request_ids: list[int], transport: Transport) -> Outcome:
        remote_id = request.remote_id
        done = f"request group {remote_id} observed"
        token = request.allocation.altdata.get("API_ARCHIVE_TOKEN")
        if self.network != "lco":
            return Outcome(State.COMPLETED, done, remote_id=remote_id)
        if not token:
            return Outcome(State.COMPLETED, f"{done}; frames not listed (the allocation has no API_ARCHIVE_TOKEN)", remote_id=remote_id)
        level = int(self.config.get("reduction_level", DEFAULT_REDUCTION_LEVEL))
        try:
            frames = list_frames(transport, archive_url=self.archive_url, token=token, request_ids=request_ids, reduction_level=level)
        except CredentialsRefused as exc:
            return Outcome(State.COMPLETED, f"{done}; frames not listed: {exc}", remote_id=remote_id)
        if frames:
            summary = frames_summary(frames, "reduced frame")
            return Outcome(State.COMPLETED, f"{done}: {summary} in the LCO archive", remote_id=remote_id, frames=frames)
        wait = timedelta(hours=float(self.config.get("archive_wait_hours", DEFAULT_ARCHIVE_WAIT_HOURS)))
        try:
            recent = utcnow() - parse_utc(group.get("modified")) < wait
        except (TypeError, ValueError):
            recent = False
        if recent:
            return Outcome(State.RUNNING, f"{done}; waiting for its reduced frames in the LCO archive", remote_id=remote_id, poll_after=self.poll_interval)
        return Outcome(State.COMPLETED, f"{done}; the LCO archive lists no reduced frames for it", remote_id=remote_id)

    # -- cancelling ----------------------------------------------------------------------------------

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        remote_id = request.remote_id
        if not remote_id:
            return Outcome(State.DELETED, "nothing had been sent to the Observation Portal")
        url = f"{self.base_url}/api/requestgroups/{remote_id}/cancel/"
        try:
            expect(transport.request("POST", url, headers=self._headers(request)), 200, service=SERVICE)
        except RemoteNotFound:
            return Outcome(State.DELETED, f"the portal does not show request group {remote_id} (deleted, or not visible to this token)", remote_id=remote_id)
        except Rejected as exc:
            return self._not_canceled(request, transport, exc)
        return Outcome(State.DELETED, f"request group {remote_id} canceled at the portal", remote_id=remote_id)

    def _not_canceled(self, request: FollowupRequest, transport: Transport, refusal: Rejected) -> Outcome:
        """The portal refused the cancel: say why in its terms, from the group's state."""
        group = self._group(request, transport)
        state = group["state"] if group is not None else None
        if state in (None, "PENDING"):
            raise refusal
        return Outcome(State.FAILED, f"request group {request.remote_id} is already {state} at the portal and cannot be canceled", remote_id=request.remote_id)

