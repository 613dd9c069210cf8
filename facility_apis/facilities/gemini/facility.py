"""Gemini North and South: trigger ToO template observations through each site's ToO servlet.

One request triggers one or more template observations of the allocation's program (the
program id's ``GN-``/``GS-`` prefix picks the site): one ``POST <server>/too`` per template (see
``trigger.py`` for the parameters and answers), each answer kept. The servlet offers nothing to
follow, change or withdraw a trigger: requests end at ``submitted``, and the new observations are
watched in the Observing Tool.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from ...core.egress import EgressRefused
from ...core.errors import (
    AltdataError,
    ConfigurationError,
    CredentialsRefused,
    FacilityUnavailable,
    PayloadError,
    Rejected,
    RemoteError,
    RemoteNotFound,
    Throttled,
)
from ...core.interface import Facility, FollowupRequest, Kind
from ...core.outcome import Outcome, State
from ...core.timeutil import DATE_PATTERN, parse_utc, utcnow
from ...core.transport import HTTPCall, Transport
from .guide_star import OffsetStarService
from .sites import PRODUCTION, TEST, Site, instrument_site, program_site
from .trigger import GuideStar, observation_id, parameters

#: Altdata names accepted for the current ones: SkyPortal's legacy ``user_password``, and the
#: names SkyPortal's follow-up guide gives (``email``, ``password``, ``progid``).
LEGACY_NAMES = {"user_password": "user_key", "password": "user_key", "email": "user_email", "progid": "programid"}
MAX_TEMPLATES = 20
DEFAULT_WINDOW = timedelta(hours=24)
WINDOW_FIELDS = ("start_date", "end_date")
_NUMBERS = re.compile(r"[0-9]+")


def current_names(altdata: Any) -> Any:
    """``altdata`` with the legacy names (``LEGACY_NAMES``) moved to the current ones, blank
    legacy values dropped, and ``template_ids`` given as a list of integers (as SkyPortal's own
    class stores it) written as the form's comma-separated text. ``AltdataError`` when a legacy
    name and its current name are both given with different values."""
    if not isinstance(altdata, Mapping):
        return altdata
    renamed = dict(altdata)
    for legacy, current in LEGACY_NAMES.items():
        value = renamed.pop(legacy, None)
        if value in (None, ""):
            continue
        if renamed.get(current) not in (None, "", value):
            raise AltdataError.single(f"$.{legacy}", f"is the legacy name of {current}: give one of them, not both")
        renamed[current] = value
    templates = renamed.get("template_ids")
    if isinstance(templates, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in templates):
        renamed["template_ids"] = ",".join(str(n) for n in templates)
    return renamed


def template_numbers(text: str) -> list[int]:
    """The template numbers of a comma-separated list (already checked by its pattern), each once,
    in the order given."""
    return list(dict.fromkeys(int(number) for number in _NUMBERS.findall(text)))


def repeated_templates(text: str) -> list[int]:
    """The template numbers a comma-separated list names more than once, in the order given."""
    numbers = [int(number) for number in _NUMBERS.findall(text)]
    return list(dict.fromkeys(n for n in numbers if numbers.count(n) > 1))


def _moment(payload: Mapping[str, Any], key: str) -> datetime:
    try:
        return parse_utc(payload[key]).replace(second=0, microsecond=0)
    except (TypeError, ValueError):
        raise PayloadError.single(f"$.{key}", "must be a UTC date and time, YYYY-MM-DD HH:MM") from None


def window_of(payload: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """The timing window (UTC, to the minute); ``PayloadError`` unless it ends after it starts."""
    start, end = _moment(payload, "start_date"), _moment(payload, "end_date")
    if end <= start:
        raise PayloadError.single("$.end_date", "must be after start_date (to the minute)")
    return start, end


@dataclass(frozen=True)
class Triggered:
    """One template's answer: ``observation`` (its new id) when created; else ``refused`` (the
    servlet's reason: nothing was made) or ``unknown`` (no proof either way)."""

    template: int
    observation: str | None = None
    refused: str | None = None
    unknown: str | None = None


class GeminiFacility(Facility):
    """Gemini North and South ToO triggers.

    Deployment settings: ``north_url``/``south_url`` (the ToO servers, default the production
    ``https://gnodb.gemini.edu:8443`` and ``https://gsodb.gemini.edu:8443``), ``test_servers``
    (``true`` selects Gemini's test servers instead; never by default), ``offset_stars`` (the
    host's offset-star service for guide stars, see ``guide_star.py``). Unknown keys are refused.
    """

    name: ClassVar[str] = "gemini"
    title: ClassVar[str] = "Gemini ToO"
    kind: ClassVar[Kind] = Kind.OBSERVATION
    skyportal_class: ClassVar[str] = "GEMINIAPI"
    setup_url: ClassVar[str] = "https://www.gemini.edu/observing/phase-ii/ot/ot-description/menu-bar#Keychain"
    example_remote_id: ClassVar[str] = "GN-2026B-Q-101-23"
    #: Two sites, two servers: no single ``base_url``.
    config_keys: ClassVar[Mapping[str, str]] = {
        "north_url": "Gemini North's ToO server (default https://gnodb.gemini.edu:8443), held to the egress rule",
        "south_url": "Gemini South's ToO server (default https://gsodb.gemini.edu:8443), held to the egress rule",
        "test_servers": "true selects Gemini's test servers for the URLs not given (default false)",
        "offset_stars": "the host's offset-star service for guide stars: url, token or token_file, probe",
    }

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        test = self.config.get("test_servers", False)
        if not isinstance(test, bool):
            raise ConfigurationError("gemini: test_servers must be true or false")
        self.servers: dict[Site, str] = {}
        for site in Site:
            url = str(self.config.get(f"{site.value}_url") or (TEST if test else PRODUCTION)[site]).rstrip("/")
            self.refuse_unusable_url(f"gemini {site.value}_url", url)
            self.servers[site] = url
        self.offset_stars = OffsetStarService.from_config(self.config.get("offset_stars"), egress=self.egress)

    # -- altdata -----------------------------------------------------------------------------

    @classmethod
    def secret_fields(cls) -> set[str]:
        """``user_key`` and its legacy names (masked wherever they travel)."""
        return super().secret_fields() | {legacy for legacy, current in LEGACY_NAMES.items() if current == "user_key"}

    @classmethod
    def normalise_altdata(cls, altdata: dict[str, Any]) -> dict[str, Any]:
        """The legacy names moved to the current ones (:func:`current_names`): what is stored
        carries only the current names."""
        return current_names(altdata)

    def check_altdata(self, altdata: dict[str, Any]) -> None:
        if "template_ids" in altdata and not template_numbers(altdata["template_ids"]):
            raise AltdataError.single("$.template_ids", "must list template numbers separated by commas")

    def check_instrument(self, altdata: dict[str, Any], instrument_name: str) -> None:
        """The program's site must be the site the instrument's name names (see
        ``sites.instrument_site``); an instrument named without a site leaves it to the program."""
        site = instrument_site(instrument_name)
        program = program_site(altdata["programid"])
        if site is not None and site is not program:
            rule = f"must be a {site.title} program ({site.prefix}-...): the allocation's instrument {instrument_name} is at {site.title}"
            raise AltdataError.single("$.programid", rule)

    # -- the request form --------------------------------------------------------------------

    def request_document(self) -> dict[str, Any]:
        document = super().request_document()
        for key in WINDOW_FIELDS:
            document["properties"][key]["pattern"] = DATE_PATTERN
        return document

    def request_defaults(self) -> dict[str, Any]:
        now = utcnow().replace(second=0, microsecond=0)
        return {"start_date": now.strftime("%Y-%m-%d %H:%M"), "end_date": (now + DEFAULT_WINDOW).strftime("%Y-%m-%d %H:%M")}

    def check_payload(self, payload: dict[str, Any]) -> None:
        window_of(payload)
        repeated = repeated_templates(payload.get("template_ids", ""))
        if repeated:
            # One trigger makes one observation: a repeat is a typo or a second copy wanted, and
            # the package cannot tell which, so it asks rather than trigger once or twice.
            which = ", ".join(map(str, repeated))
            rule = f"names template{'s' if len(repeated) > 1 else ''} {which} more than once: name each template once (another request triggers another copy)"
            raise PayloadError.single("$.template_ids", rule)
        if len(template_numbers(payload.get("template_ids", ""))) > MAX_TEMPLATES:
            raise PayloadError.single("$.template_ids", f"must list at most {MAX_TEMPLATES} templates")
        if payload["l_elmin"] >= payload["l_elmax"]:
            raise PayloadError.single("$.l_elmax", "must be above the minimum airmass")

    # -- the triggers ------------------------------------------------------------------------

    def _templates(self, request: FollowupRequest) -> list[int]:
        """The templates to trigger: those the request names, else the allocation's only one;
        ``PayloadError`` for one the allocation does not allow, or for none named when the
        allocation does not have exactly one."""
        wanted = template_numbers(request.payload.get("template_ids", ""))
        permitted = template_numbers(request.allocation.altdata.get("template_ids", ""))
        listed = ", ".join(map(str, permitted))
        if not wanted:
            if len(permitted) == 1:
                return permitted
            which = f"this allocation allows several ({listed})" if permitted else "this allocation does not name its templates"
            raise PayloadError.single("$.template_ids", f"must name the templates to trigger: {which}")
        for number in wanted:
            if permitted and number not in permitted:
                raise PayloadError.single("$.template_ids", f"template {number} is not one this allocation may trigger ({listed})")
        return wanted

    def _trigger(self, request: FollowupRequest, template: int, guide_star: GuideStar | None) -> HTTPCall:
        altdata, target = request.allocation.altdata, request.target
        start, end = window_of(request.payload)
        params = parameters(
            program_id=altdata["programid"],
            email=altdata["user_email"],
            key=altdata["user_key"],
            obsnum=template,
            target=target.id,
            ra=target.ra,
            dec=target.dec,
            payload=dict(request.payload),
            start=start,
            end=end,
            guide_star=guide_star,
        )
        return HTTPCall("POST", f"{self.servers[program_site(altdata['programid'])]}/too", params=params)

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        """The trigger of the first template (the others differ only in ``obsnum``), without the
        guide star an offset-star service would add (finding it is a call)."""
        return self._trigger(request, self._templates(request)[0], None)

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        templates = self._templates(request)
        program = request.allocation.altdata["programid"]
        guide_star = None
        if self.offset_stars is not None:
            start, end = window_of(request.payload)
            guide_star = self.offset_stars.guide_star(request.target.id, start + (end - start) / 2, transport)
        answers: list[Triggered] = []
        stop: Exception | None = None
        for template in templates:
            try:
                answers.append(Triggered(template, observation=observation_id(transport.send(self._trigger(request, template, guide_star)), program)))
            except Rejected as exc:
                answers.append(Triggered(template, refused=str(exc)))
            except (RemoteNotFound, CredentialsRefused, Throttled, EgressRefused) as exc:
                stop = exc  # nothing was made, and the next template would fare no better
                break
            except FacilityUnavailable as exc:
                if exc.sent:
                    answers.append(Triggered(template, unknown=str(exc)))
                stop = exc
                break
            except RemoteError as exc:  # a 5xx, or a 200 naming no observation
                answers.append(Triggered(template, unknown=str(exc)))
        return self._outcome(program_site(program), answers, templates[len(answers) :], stop, guide_star, request.payload.get("ready", True))

    @staticmethod
    def _outcome(site: Site, answers: list[Triggered], unsent: list[int], stop: Exception | None, guide_star: GuideStar | None, ready: bool) -> Outcome:
        """Every template's answer in one outcome: ``submitted`` when any observation was made
        (its ids the remote id); ``failed`` with ``maybe_sent`` (no retry, status ``failed: ...``)
        when one may have been; the error that
        stopped the loop when nothing was sent or made; ``rejected`` when every template was
        refused."""
        made = [a for a in answers if a.observation]
        refused = [a for a in answers if a.refused]
        unknown = [a for a in answers if a.unknown]
        done = "triggered" if ready else "made On Hold (not triggered: Ready was off)"
        parts = [f"template {a.template} {done} as {a.observation}" for a in made]
        if made and guide_star is not None:
            parts[-1] += f", guide star {guide_star.name} ({guide_star.probe})"
        parts += [f"template {a.template} refused: {a.refused}" for a in refused]
        parts += [f"template {a.template} may have been made ({a.unknown}): check the Observing Tool before triggering it again" for a in unknown]
        if unsent:
            # Nothing sends these later: when the request is not resubmittable as a whole (something
            # was or may have been made), say how to get them triggered.
            cause = getattr(stop, "cause", str(stop)) if stop is not None else ""
            them = "them" if len(unsent) > 1 else "it"
            advice = f": submit {them} in a new request" if made or unknown else ""
            why = f" ({cause})" if cause and not (unknown and cause == unknown[-1].unknown) else ""  # said once
            parts.append(f"template{'s' if len(unsent) > 1 else ''} {', '.join(map(str, unsent))} not sent{why}{advice}")
        detail = f"{site.title}: " + "; ".join(parts)
        if made:
            return Outcome(State.SUBMITTED, detail, remote_id=",".join(a.observation for a in made if a.observation))
        if unknown:  # never "failed to submit": that would invite a second trigger
            return Outcome(State.FAILED, detail, maybe_sent=True)
        if stop is not None and not refused:
            raise stop
        if stop is not None:
            return Outcome(State.FAILED, detail)
        if len(refused) == 1:
            raise Rejected(f"{site.title} refused template {refused[0].template}: {refused[0].refused}")
        raise Rejected(f"{site.title} refused every template: " + "; ".join(f"template {a.template}: {a.refused}" for a in refused))
