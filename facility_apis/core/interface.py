"""The facility contract: value objects in, ``Outcome`` out, every I/O through a ``Transport``."""

from __future__ import annotations

import contextlib
import enum
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from .credentials import credential_errors
from .egress import EgressPolicy
from .errors import AltdataError, ConfigurationError, FieldError, NotImplementedOperation, PayloadError
from .outcome import Outcome
from .schemas import apply_defaults, available_schemas, compiled, field_errors, load_document, load_schema, secret_fields, validate
from .timeutil import DATE_PATTERN, INSTANT_PATTERN, parse_utc, utc_date, utc_instant, utcnow
from .transport import HTTPCall, MessageCall, Transport

#: The operations SkyPortal knows (its classes get a method for each one implemented).
OPERATIONS = ("submit", "get", "update", "delete")
#: Asks the facility about a request without queuing it (LT's RTML inquiry, LCO's validate).
REMOTE_VALIDATE = "remote_validate"
#: What ``perform`` runs: the operations, ``find`` (for the caller that lost a submission's answer)
#: and ``remote_validate``.
PERFORMABLE = (*OPERATIONS, "find", REMOTE_VALIDATE)
IMPLEMENTABLE = ("validate_altdata", "prepare", *PERFORMABLE)


class Kind(str, enum.Enum):
    """What a facility does: observe (a telescope's queue), measure forced photometry on existing
    images, notify people (Slack, e-mail, another service), or deliver an observation plan the
    host generated (SkyPortal's allocation type ``observation_plan``: the plan travels in the
    payload, see ``core/plan.py``; SkyPortal calls such a facility with ``send``/``remove``)."""

    OBSERVATION = "observation"
    FORCED_PHOTOMETRY = "forced_photometry"
    NOTIFICATION = "notification"
    OBSERVATION_PLAN = "observation_plan"


@dataclass(frozen=True)
class HostPoint:
    """One photometric point the host (SkyPortal) holds for the target, as far as a facility may
    need it (e.g. to compute a flux-weighted position).

    ``ra``/``dec``: where the point was measured (degrees, ICRS), ``None`` when unknown;
    ``flux``/``fluxerr``: its flux and uncertainty, in one unit for all points of a target
    (SkyPortal's µJy; only ratios and weights are meaningful), ``None`` when unknown;
    ``origin``: SkyPortal's origin text (``"fp"`` marks forced photometry);
    ``instrument``: the measuring instrument's name; ``alert``: whether the point came from an
    alert stream (SkyPortal: it belongs to at least one stream); ``mjd``: when it was taken;
    ``filter``: its SkyPortal bandpass name (``ztfg``); ``mag``: its AB magnitude as the host
    gives it, ``None`` for a non-detection (SkyPortal's ``Photometry.mag``, below its detection
    threshold) or when unknown.
    """

    ra: float | None
    dec: float | None
    flux: float | None
    fluxerr: float | None
    origin: str | None = None
    instrument: str | None = None
    alert: bool = False
    mjd: float | None = None
    filter: str | None = None
    mag: float | None = None


@dataclass(frozen=True)
class Target:
    """The source to follow up; ``ra``/``dec`` in decimal degrees (ICRS).

    What else the host knows of it, for facilities that need it (both optional; a facility must
    say what it does without them):

    ``aliases``
        other names of the source (SkyPortal's ``Obj.alias``, e.g. a survey's object id), in the
        host's order;
    ``photometry``
        the host's photometry of the source (:class:`HostPoint`), given only to a facility that
        asks for it for this payload (``Facility.uses_host_photometry``): it can be large.

    Both come from SkyPortal's object in the SkyPortal classes (``request.obj.alias``, and its
    photometry as the requester may see it), from the request body's ``target`` at the gateway,
    and the gateway asks SkyPortal for the aliases of a source named by ``obj_id`` only.
    """

    id: str
    ra: float
    dec: float
    aliases: tuple[str, ...] = ()
    photometry: tuple[HostPoint, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        """``PayloadError`` naming every coordinate out of its range (both, when both are)."""
        errors = []
        if not (math.isfinite(self.ra) and 0.0 <= self.ra < 360.0):
            errors.append(FieldError("$.ra", "must be a finite number in [0, 360)"))
        if not (math.isfinite(self.dec) and -90.0 <= self.dec <= 90.0):
            errors.append(FieldError("$.dec", "must be a finite number in [-90, 90]"))
        if errors:
            raise PayloadError(errors)
        object.__setattr__(self, "aliases", tuple(str(alias) for alias in self.aliases or ()))
        object.__setattr__(self, "photometry", tuple(self.photometry or ()))


@dataclass(frozen=True)
class Allocation:
    """An allocation on a facility. ``altdata`` holds credentials and never shows in a repr.
    ``group`` is the name of the SkyPortal group that holds the allocation, where known (for
    messages to people); ``group_ids`` are the groups its data is shared with."""

    id: int | None
    altdata: Mapping[str, Any] = field(repr=False)
    pi: str | None = None
    proposal_id: str | None = None
    instrument_id: int | None = None
    instrument_name: str | None = None
    filters: tuple[str, ...] = ()
    group_ids: tuple[int, ...] = ()
    group: str | None = None


@dataclass(frozen=True)
class FollowupRequest:
    """An observer's request: what to observe, on which allocation, with which form payload.

    ``remote_id`` is the facility's handle once submitted (e.g. the ATLAS task URL);
    ``callback_url``, when the caller can receive one, is where the facility may announce changes:
    a hint, which must never cost the request (the facility leaves out one its service's rules
    refuse, and submits without it when the service refuses the callback alone). ``cursor`` is
    the last ``Outcome.cursor`` the facility returned for this request (``None`` before it
    returned one): its own note of where it stands, kept by the caller between calls (see
    :class:`~facility_apis.core.outcome.Outcome`). ``comments`` are remarks a caller may pass on
    with the request (the requester's note, the source's comments in SkyPortal), one line each,
    for facilities that forward them to people (a notification's ``include_comments``).
    ``attempted_at`` (UNIX seconds) is set for ``find``: when the submission whose answer was
    lost left. ``followup_request_id`` is SkyPortal's id of the request where the caller knows
    it (``id`` is the caller's own: SkyPortal's in the SkyPortal classes, which set both, the
    gateway's row id in the gateway, which sets this one from the id SkyPortal handed it, or
    ``None`` until it is linked): a facility whose remote side reports to SkyPortal itself
    (SEDM's robot posts statuses to ``/api/facility`` under it) sends this one.
    """

    id: int | None
    target: Target
    allocation: Allocation
    payload: Mapping[str, Any] = field(default_factory=dict)
    requester: str | None = None
    remote_id: str | None = None
    callback_url: str | None = None
    cursor: str | None = None
    comments: tuple[str, ...] = ()
    attempted_at: float | None = None
    followup_request_id: int | None = None


#: Deployment settings several facilities read, each meaning said once here: a facility takes
#: the ones it reads into its ``config_keys`` with :func:`common_config_keys`.
COMMON_CONFIG_KEYS: dict[str, str] = {
    "base_url": "the facility's service URL (default: its production service), held to the egress rule",
    "archive_url": "the facility's data archive URL (default: its production archive), held to the egress rule",
    "poll_interval": "seconds between polls of a submitted request",
    "notify": "the notification settings (SkyPortal's URL, Slack's base URL, the SMTP server; see docs/notifications.md)",
}


def common_config_keys(*keys: str) -> dict[str, str]:
    """The kit's meanings of the common deployment settings ``keys`` (``COMMON_CONFIG_KEYS``),
    for a facility's ``config_keys``; ``KeyError`` for a key the kit does not define."""
    return {key: COMMON_CONFIG_KEYS[key] for key in keys}


@dataclass(frozen=True)
class _AltdataForm:
    """A facility class's allocation form, built once: its validator and its secret fields."""

    validator: Any
    secret_fields: frozenset[str]


@functools.cache
def _altdata_form(facility: type[Facility]) -> _AltdataForm:
    """``facility.altdata_schema()`` compiled once per class: every operation checks its
    allocation's altdata and masks its secrets, and building the form each time (a fresh copy of
    the schema, its validator, a walk for ``writeOnly``) was about a tenth of the CPU a gateway
    spent on a followed task (``bench/gateway_drain.py``, profiled)."""
    schema = facility.altdata_schema()
    return _AltdataForm(compiled(schema), frozenset(secret_fields(schema)))


NAME_RULE = re.compile(r"[a-z][a-z0-9_]*")
SKYPORTAL_CLASS_RULE = re.compile(r"[A-Z][A-Za-z0-9_]*")


class Facility:
    """Base of every facility: declare the metadata, ship the schemas, override the operations
    the facility supports (``implements()`` reports which).

    Metadata (checked when the class is defined; an intermediate base class that is not a
    facility itself passes ``abstract=True``: ``class PortalFacility(Facility, abstract=True)``):

    ``name``
        registry key and schema folder, ``[a-z][a-z0-9_]*``;
    ``title``
        the facility's name for people, used in statuses;
    ``kind``
        a :class:`Kind`;
    ``skyportal_class``
        the class name SkyPortal knows it by (its ``api_classname``, e.g. ``"ATLASAPI"``); two
        facilities may share one only when one is an observation and the other forced photometry
        (SkyPortal's ZTFAPI offers both forms);
    ``setup_url``
        where an admin learns how to get credentials (optional);
    ``priority_order``
        SkyPortal's priority convention: ``"asc"`` means a higher number is more urgent;
    ``example_remote_id``
        a remote id shaped as the facility returns it (docs and the conformance suite use it).

    A facility never sleeps, never opens a database, never reads global configuration and does
    no I/O except through the ``Transport`` it is handed. Its deployment settings come in
    ``config`` (e.g. ``base_url``, ``poll_interval``) and the deployment's egress allowances in
    ``egress``, both at construction. ``config_keys`` declares every setting it reads; any other
    key is refused when the facility is made (``ConfigurationError``), wherever the settings come
    from (the gateway's ``facilities.<name>``, SkyPortal's ``facility_apis.facilities.<name>``, the
    CLI's ``--config``/``--base-url``).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[Kind]
    skyportal_class: ClassVar[str]
    setup_url: ClassVar[str] = ""
    priority_order: ClassVar[str] = "asc"
    example_remote_id: ClassVar[str] = "1"
    #: Request fields holding a UTC date (see ``core.timeutil.DATE_PATTERN``): served with that
    #: pattern, and any spelling of it normalised to ``YYYY-MM-DD`` before the rules run.
    date_fields: ClassVar[tuple[str, ...]] = ()
    #: Request fields holding a UTC date and time (see ``core.timeutil.INSTANT_PATTERN``): served
    #: with that pattern (and no ``format``), and any spelling of it (SkyPortal's
    #: ``YYYY-MM-DD HH:MM:SS``, ISO 8601 with ``T``, ``Z`` or an offset, fractional seconds)
    #: normalised to UTC ``YYYY-MM-DD HH:MM:SS`` before the rules run; the facility sends it as
    #: its protocol requires.
    instant_fields: ClassVar[tuple[str, ...]] = ()
    #: The request field that closes the observing window (``window_end`` reads it); an
    #: observation request whose window has already closed is refused on it.
    window_field: ClassVar[str] = "end_date"
    #: Secret altdata fields the facility never sends in an HTTP header (an SSH private key, a
    #: password posted in a form): the kit's header rules do not apply to them (core/credentials.py).
    secrets_in_bodies: ClassVar[frozenset[str]] = frozenset()
    #: The package whose ``schemas/<name>/`` folder holds this facility's documents.
    schema_package: ClassVar[str] = "facility_apis"
    #: The deployment settings (``config``) the facility reads: key -> its meaning in one line
    #: (the kit's common ones from :func:`common_config_keys`). The constructor refuses any other.
    config_keys: ClassVar[Mapping[str, str]] = {}
    #: The key of ``config_keys`` that holds the facility's one service URL, which the CLI's
    #: ``--base-url`` sets; ``None`` for a facility with several endpoints (or none).
    base_url_key: ClassVar[str | None] = None
    #: Whether outcomes may carry photometry for SkyPortal (``Outcome.photometry``): SkyPortal
    #: stores points under an instrument, so an allocation without ``instrument_id`` is refused
    #: when it is handed over, not when the data arrive. Always true for ``Kind.FORCED_PHOTOMETRY``
    #: (set when the class is defined); an observation facility that brings data back (BHTOM) says so.
    returns_photometry: ClassVar[bool] = False
    #: The call rates the facility documents, per account (its credentials): scope -> ``(calls,
    #: seconds)``, at most ``calls`` started in any ``seconds``; scopes ``read`` (``get``,
    #: ``find``) and ``write`` (``submit``, ``update``, ``delete``), as DRF throttles by method.
    #: The gateway's workers keep to them together (``facilities.<name>.read_rate`` overrides).
    rate_limits: ClassVar[Mapping[str, tuple[int, float]]] = {}

    def __init_subclass__(cls, *, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not abstract:
            _check_metadata(cls)
            if cls.kind is Kind.FORCED_PHOTOMETRY:
                cls.returns_photometry = True

    def __init__(self, config: Mapping[str, Any] | None = None, *, egress: EgressPolicy | None = None):
        """``config``: the deployment settings, keys among ``config_keys``; ``ConfigurationError``
        naming any other key and listing the known ones."""
        if config is not None and not isinstance(config, Mapping):
            raise ConfigurationError(f"{self.name}: the settings must be a mapping of setting names to values")
        self.config = dict(config or {})
        unknown = sorted(str(key) for key in set(self.config) - set(self.config_keys))
        if unknown:
            known = ", ".join(sorted(self.config_keys)) or "none: it takes no settings"
            raise ConfigurationError(f"{self.name}: unknown setting(s) {', '.join(unknown)}; known: {known}")
        self.egress = egress if egress is not None else EgressPolicy()

    def refuse_unusable_url(self, setting: str, url: str, *, secret: bool = True, egress: EgressPolicy | None = None) -> None:
        """For a constructor: ``ConfigurationError`` (``the configured <setting> is refused:
        <why>``) when the configured ``url`` is one the egress rule (``egress``, default the
        facility's) would refuse every call to; ``secret``: credentials travel to it."""
        reason = (egress or self.egress).refusal(url, secret=secret)
        if reason is not None:
            raise ConfigurationError(f"the configured {setting} is refused: {reason}")

    # -- schemas -------------------------------------------------------------------------------

    @classmethod
    def altdata_schema(cls) -> dict[str, Any]:
        """The allocation form (draft-07): ``schemas/<name>/altdata.json``, a fresh copy."""
        return load_schema(f"{cls.name}/altdata", cls.schema_package)

    def request_schema(self) -> dict[str, Any]:
        """The request form (draft-07), as SkyPortal and the browser receive it; a fresh copy.

        - the time-relative defaults of ``request_defaults()`` are computed now;
        - each of ``date_fields`` gets ``DATE_PATTERN``, each of ``instant_fields``
          ``INSTANT_PATTERN`` and no ``format`` (Ajv's and Python's date-time checks differ); their
          descriptions say the rule in words;
        - a field with a default is never ``required``: the package fills it itself at validation
          time, and SkyPortal, which checks ``required`` on the served form before the facility
          runs and computes that form once at start-up, must accept a payload without it.
        """
        schema = self.request_document()
        properties = schema["properties"]
        for key, value in self.request_defaults().items():
            properties[key]["default"] = value
        for key in self.date_fields:
            properties[key]["pattern"] = DATE_PATTERN
        for key in self.instant_fields:
            properties[key].pop("format", None)
            properties[key]["pattern"] = INSTANT_PATTERN
        if "required" in schema:
            schema["required"] = [key for key in schema["required"] if "default" not in properties.get(key, {})]
        return schema

    def request_document(self) -> dict[str, Any]:
        """The request form as shipped, before the time-relative defaults: ``schemas/<name>/request.json``,
        a fresh copy. A family of facilities that assembles its forms from shared parts overrides
        this (see the Observation Portal facilities)."""
        return load_schema(f"{self.name}/request", self.schema_package)

    def request_defaults(self) -> dict[str, Any]:
        """Defaults that depend on the moment of the call (e.g. "the last 30 days"), by field."""
        return {}

    def window_end(self, payload: Mapping[str, Any]) -> datetime | None:
        """When the observing window a validated ``payload`` asks for closes (aware UTC), or None.

        The gateway follows a request until ``horizon_hours`` after the later of its acceptance
        and this moment, so a request valid for a week is not given up after three days.
        Default: the payload's ``window_field`` (``end_date``, SkyPortal's name for a window's
        last day): a date alone means the end of that day (UTC), a date with a time that instant.
        A facility whose window is spelled otherwise (a number of days, visits at a cadence)
        overrides this.
        """
        end = payload.get(self.window_field)
        if not isinstance(end, str):
            return None
        try:
            moment = parse_utc(end)
        except ValueError:
            return None
        return moment + timedelta(days=1) if len(end.strip()) == len("YYYY-MM-DD") else moment

    @classmethod
    def ui_schema(cls) -> dict[str, Any]:
        """The request form's react-jsonschema-form uiSchema (``ui.json``), or ``{}``."""
        name = f"{cls.name}/ui"
        return load_document(name, cls.schema_package) if name in available_schemas(cls.schema_package) else {}

    @classmethod
    def secret_fields(cls) -> set[str]:
        """The altdata fields marked ``writeOnly`` (anywhere, branches included)."""
        return set(_altdata_form(cls).secret_fields)

    @classmethod
    def secrets(cls, altdata: Mapping[str, Any]) -> list[str]:
        """The secret values in ``altdata`` (under the form's keys or a spelling
        ``normalise_altdata`` maps to them): what every record must mask."""
        if not isinstance(altdata, Mapping):
            return []
        values = [dict(altdata)]
        with contextlib.suppress(AltdataError):  # refused anyway: mask what the form's keys hold
            values.append(cls.normalise_altdata(dict(altdata)))
        fields = cls.secret_fields()
        return sorted({str(found[key]) for found in values for key in fields if found.get(key) not in (None, "")})

    # -- validation ----------------------------------------------------------------------------

    def validate_altdata(self, altdata: Mapping[str, Any], *, instrument_name: str | None = None, group_known: bool = True) -> dict[str, Any]:
        """Check allocation credentials; return them without blank values (SkyPortal drops those).

        ``instrument_name``: the SkyPortal instrument the allocation is on, where the caller knows
        it; the altdata is then also held to :meth:`check_instrument`. ``group_known=False``: the
        host will not give the allocation's SkyPortal group name with its requests (the gateway
        does not know it), so the altdata is also held to :meth:`check_without_group`. Raises ``AltdataError``
        naming every failing field and its rule (never a value): the schema's, then those of
        ``core/credentials.py`` (secrets that can travel in a header, no user name or password in
        a URL), then ``check_altdata``'s.
        """
        if not isinstance(altdata, Mapping):
            raise AltdataError.single("$", "must be an object")
        cleaned = self.normalise_altdata({key: value for key, value in altdata.items() if value not in (None, "")})
        # The schema's errors first; then the rules every facility's credentials obey.
        errors = {error.path: error for error in field_errors(_altdata_form(type(self)).validator, cleaned)}
        for error in credential_errors(cleaned, self.secret_fields(), self.secrets_in_bodies):
            errors.setdefault(error.path, error)
        if errors:
            raise AltdataError(sorted(errors.values(), key=lambda error: error.path))
        self.check_altdata(cleaned)
        if instrument_name:
            self.check_instrument(cleaned, instrument_name)
        if not group_known:
            self.check_without_group(cleaned)
        return cleaned

    @classmethod
    def normalise_altdata(cls, altdata: dict[str, Any]) -> dict[str, Any]:
        """``altdata`` (blank values dropped) with the spellings SkyPortal deployments already hold
        mapped to the form's keys, before the schema judges it (e.g. MMA's legacy ``type`` for
        ``allocation_type``); by default unchanged. The result is what ``validate_altdata``
        returns, so what is stored and what the operations read has the form's keys only. It may
        raise ``AltdataError`` naming the field (never quoting a value) for a spelling it cannot
        read."""
        return altdata

    def check_altdata(self, altdata: dict[str, Any]) -> None:
        """Rules beyond the schema, on altdata that passed it; raise ``AltdataError``."""

    def check_instrument(self, altdata: dict[str, Any], instrument_name: str) -> None:
        """Rules tying the altdata to the SkyPortal instrument the allocation is on (its ``name``),
        e.g. a Gemini program id names its site, which must be the instrument's; on altdata that
        passed :meth:`check_altdata`. Runs wherever the instrument is known: when an allocation is
        saved (SkyPortal's ``POST /api/allocation`` passes its instrument to the SkyPortal class's
        ``validate_altdata``; the gateway's allocation ``PUT`` takes ``instrument_name``) and on
        every operation (``perform`` passes ``request.allocation.instrument_name``). Raise
        ``AltdataError``; nothing by default."""

    def check_without_group(self, altdata: dict[str, Any]) -> None:
        """Rules for an allocation whose requests will come without ``Allocation.group`` (the
        SkyPortal group's name), e.g. SEDM's program name, which SkyPortal's own class takes from
        the group: the altdata must then give it. On altdata that passed :meth:`check_altdata`;
        run where the allocation is saved by a host that does not know the group (the gateway's
        allocation ``PUT`` and validate). Raise ``AltdataError``; nothing by default."""

    def exchange_altdata(self, altdata: dict[str, Any], transport: Transport) -> dict[str, Any]:
        """The altdata to store when an allocation is saved, after a one-time exchange with the
        facility (e.g. a password traded for an API token, so the password is never stored nor
        sent again); by default ``altdata`` unchanged, with no I/O.

        Called once per save, on altdata that passed :meth:`validate_altdata`, by whoever stores
        allocations: the gateway's ``PUT /api/allocations/<id>`` (and its validate call) and the
        SkyPortal classes' ``validate_altdata``, whose return value SkyPortal stores on
        ``POST /api/allocation``. Every call goes through ``transport``; the result must pass
        :meth:`validate_altdata`. Raises ``AltdataError``/``CredentialsRefused`` when the facility
        refuses, and lets the transport's errors pass.
        """
        return altdata

    def validate_payload(self, payload: Mapping[str, Any], target: Target | None = None) -> dict[str, Any]:
        """Check a request payload; return it with defaults filled in (computed now) and its
        ``date_fields`` as ``YYYY-MM-DD`` and its ``instant_fields`` as UTC ``YYYY-MM-DD HH:MM:SS``
        (fractions of a second dropped). Raises ``PayloadError`` naming every failing field and
        its rule.

        With ``target``, the fields the facility takes from what the host knows of the target
        are filled in too (``fill_from_target``) and the result is checked again: this is how a
        request is validated when it is submitted (``perform``) or accepted for later (the
        gateway, the SkyPortal hand-off), so what was decided is stored with the request.
        """
        if not isinstance(payload, Mapping):
            raise PayloadError.single("$", "must be an object")
        schema = self.request_schema()
        filled = apply_defaults(schema, dict(payload))
        date_errors = {}
        for key in self.date_fields:
            if isinstance(filled.get(key), str):
                try:
                    filled[key] = utc_date(filled[key]).isoformat()
                except ValueError as exc:
                    date_errors[f"$.{key}"] = FieldError(f"$.{key}", str(exc))
        for key in self.instant_fields:
            if isinstance(filled.get(key), str):
                try:
                    filled[key] = utc_instant(filled[key]).strftime("%Y-%m-%d %H:%M:%S")
                except ValueError as exc:
                    date_errors[f"$.{key}"] = FieldError(f"$.{key}", str(exc))
        # A date's rule in words, rather than the pattern it failed.
        errors = [*date_errors.values(), *(e for e in field_errors(schema, filled) if e.path not in date_errors)]
        if errors:
            raise PayloadError(sorted(errors, key=lambda e: e.path))
        self.check_payload(filled)
        if target is None:
            return filled
        completed = self.fill_from_target(dict(filled), target)
        if completed != filled:
            validate(schema, completed, PayloadError)
            self.check_payload(completed)
        return completed

    def refuse_a_closed_window(self, payload: Mapping[str, Any]) -> None:
        """Raise ``PayloadError`` on ``window_field`` when a validated observation payload's window
        (``window_end``) has already closed: nothing can be observed in it. Checked where a request
        is accepted or sent (gateway intake, ``submit``, ``remote_validate``, ``cli validate``),
        not when a request already placed is looked up again. Forced photometry and archive
        searches, which ask about the past, are never refused."""
        if self.kind not in (Kind.OBSERVATION, Kind.OBSERVATION_PLAN):
            return
        end = self.window_end(payload)
        if end is not None and end <= utcnow():
            message = f"is in the past: the observing window closed at {end:%Y-%m-%d %H:%M} UTC; choose a window that has not ended"
            raise PayloadError.single(f"$.{self.window_field}", message)

    def fill_from_target(self, payload: dict[str, Any], target: Target) -> dict[str, Any]:
        """The payload (valid, defaults filled) with the fields that depend on what the host knows
        of the target filled in, e.g. an object id taken from ``target.aliases``, or a position
        computed from ``target.photometry``. A field the payload already has is kept, so filling
        twice changes nothing. Raise ``PayloadError`` naming the field when it cannot be filled.
        By default the payload unchanged."""
        return payload

    def uses_host_photometry(self, payload: Mapping[str, Any]) -> bool:
        """Whether ``fill_from_target`` needs ``target.photometry`` for this payload (the host
        then loads it; it is left empty otherwise). By default False."""
        return False

    def check_payload(self, payload: dict[str, Any]) -> None:
        """Rules beyond the schema (e.g. ordering of dates), on a payload that passed it with its
        defaults filled; raise ``PayloadError``."""

    def instrument_form(self, schema: dict[str, Any], *, name: str | None, filters: tuple[str, ...]) -> dict[str, Any]:
        """The request form narrowed to one instrument (its SkyPortal ``name`` and ``filters``,
        SkyPortal bandpass names), e.g. the filter choices; by default the form unchanged.
        ``schema`` is a fresh copy of ``request_schema()``, free to change and return."""
        return schema

    def check_instrument_form(self, payload: Mapping[str, Any], *, name: str | None, filters: tuple[str, ...]) -> None:
        """Refuse a payload (already validated) that the form served for this instrument
        (``instrument_form``: its SkyPortal ``name`` and ``filters``) would not have allowed, such
        as a filter the instrument lacks: ``PayloadError`` naming every failing field and its rule.
        A host that takes requests from elsewhere than that form (the gateway's API, the SkyPortal
        hand-off) calls it when it accepts them, so a request the facility cannot use is refused
        then, not when it is submitted."""
        validate(self.instrument_form(self.request_schema(), name=name, filters=tuple(filters)), dict(payload), PayloadError)

    def check_url(self, altdata: Mapping[str, Any], key: str, *, secret: bool = True) -> None:
        """Refuse ``altdata[key]``, a URL an admin typed, when the egress rule forbids it (see
        ``core/egress.py``): ``AltdataError`` naming the field and the rule. ``secret``: the
        credentials travel to it. Nothing is resolved or connected to."""
        url = altdata.get(key)
        if isinstance(url, str) and url:
            reason = self.egress.refusal(url, secret=secret)
            if reason is not None:
                raise AltdataError.single(f"$.{key}", reason)

    # -- operations (override the ones the facility supports) ----------------------------------
    #
    # Each receives a request whose altdata passed validate_altdata (and, for submit, whose
    # payload passed validate_payload, defaults filled) and returns an Outcome. Run them through
    # core.operations.perform, which maps the typed errors they raise to outcomes, masks secrets
    # and attaches the transactions. Raise rather than build failure outcomes by hand:
    # AltdataError (the credentials are unusable), Rejected (the facility refused the request),
    # CredentialsRefused, RemoteError (an answer outside the protocol); core.answers.expect and
    # json_body raise these for you. Let the transport's Throttled and FacilityUnavailable pass.

    def prepare(self, request: FollowupRequest) -> HTTPCall | MessageCall:
        """The submission as the facility would receive it, built without sending anything (no
        I/O at all): it powers ``--dry-run`` and the docs' generated example. An HTTP request is
        an ``HTTPCall``; a delivery by another protocol (an e-mail, an SFTP upload) a
        ``MessageCall``."""
        raise NotImplementedOperation(f"{self.name} cannot prepare a request")

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Send the request to the facility.

        Returns ``submitted`` (or ``queued``/``running``) with ``remote_id`` — the facility's
        handle for the request, a string the other operations can use on their own — and
        ``poll_after`` (seconds until the first ``get``); ``completed``/``no_data`` when the
        answer is immediate; ``rejected`` when the facility refuses the request. A submission that
        may have reached the facility without an answer that proves it must end ``failed`` with
        no ``poll_after`` and a detail that says so (never a blind resubmission).
        """
        raise NotImplementedOperation(f"{self.name} does not implement submit")

    def get(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Follow a submitted request (``request.remote_id`` is set): poll it, list it, or fetch
        its data.

        Returns ``submitted``/``queued``/``running`` with ``poll_after`` (seconds) while the
        facility holds it; ``completed`` (with ``photometry`` where the facility gives data),
        ``no_data``, ``canceled`` when it ends. Transient trouble is raised (``RemoteError``) so
        the caller retries later.
        """
        raise NotImplementedOperation(f"{self.name} does not implement get")

    def update(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Send a changed payload for an accepted request (``request.remote_id`` is set).

        Returns the request's new state (``submitted``/``queued``, with ``poll_after``), or
        ``rejected`` when the facility refuses the change (the request it holds is unchanged).
        """
        raise NotImplementedOperation(f"{self.name} does not implement update")

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Cancel the request at the facility (``remote_id`` may be ``None``: nothing was sent).
        Called for a finished request too (SkyPortal's delete): the facility then removes what
        it keeps, if anything.

        Returns ``deleted`` (with a detail saying what happened remotely, and ``photometry`` if
        results were fetched first); any other state means the request was not canceled and the
        detail says why (e.g. ``failed: the facility cannot cancel a completed request``). Results
        that can never be fetched (expired, unreadable) must not block the delete.
        """
        raise NotImplementedOperation(f"{self.name} does not implement delete")

    def remote_validate(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Ask the facility whether it would accept the request, queuing nothing (a remote dry
        run: the Liverpool Telescope's RTML ``inquiry``, LCO's ``/api/requestgroups/validate/``).

        Receives a request whose altdata and payload passed validation, like ``submit``, and asks
        about exactly what ``submit`` would send (build it with ``prepare``). Returns ``pending``
        (not submitted) with a detail giving the facility's offer when it would accept the
        request; raises ``Rejected`` with the facility's reasons, field by field, when it would
        not (``perform`` makes that ``rejected``). Failures are raised as for ``submit``. Nothing
        may be created at the facility: a facility without such a side-effect-free call does not
        implement this. ``facility-apis submit --remote-validate`` runs it.
        """
        raise NotImplementedOperation(f"{self.name} does not implement remote_validate")

    def find(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Look for a submission that may have reached the facility without its answer being
        recorded (the caller died while it was out; ``request.attempted_at`` is when it left,
        ``remote_id`` is ``None``). Implement it where the facility lets a request be found again
        (by name, by listing the account's requests); the gateway then calls it instead of
        giving such a request up.

        Returns, as ``submit`` would, the request's state with ``remote_id`` when it is found
        (``submitted``/``queued``/``running``, with ``poll_after``, or a final state);
        ``pending`` when it certainly never arrived (it is then submitted again); ``failed``
        with no ``poll_after`` and a detail saying so when the facility cannot tell. A faulty
        answer must never read as "absent": raise (``RemoteError``) and the caller asks again.
        """
        raise NotImplementedOperation(f"{self.name} does not implement find")

    # -- capabilities --------------------------------------------------------------------------

    @classmethod
    def implements(cls) -> dict[str, bool]:
        """Which of ``validate_altdata``, ``prepare``, ``submit``, ``get``, ``update``,
        ``delete``, ``find``, ``remote_validate`` this facility overrides (``validate_altdata``
        always: every facility checks its schema)."""
        return {op: op == "validate_altdata" or getattr(cls, op) is not getattr(Facility, op) for op in IMPLEMENTABLE}


def instrument_refusal(facility: type[Facility] | Facility, instrument_id: int | None) -> str | None:
    """Why an allocation of ``facility`` without an ``instrument_id`` (SkyPortal's instrument id)
    cannot be used, in words; None when it can. A facility that returns
    photometry (``returns_photometry``) needs one: SkyPortal stores every point under an
    instrument, and finding out when the data arrive, hours later, would lose them."""
    if facility.returns_photometry and instrument_id is None:
        return f"the points {facility.title} returns are stored in SkyPortal under an instrument"
    return None


def _check_metadata(cls: type[Facility]) -> None:
    """Refuse a facility class without the metadata the registry, SkyPortal and the docs need."""
    problems = []
    name = getattr(cls, "name", None)
    if not (isinstance(name, str) and NAME_RULE.fullmatch(name)):
        problems.append("name = '<registry name>' ([a-z][a-z0-9_]*, also the schemas folder)")
    if not (isinstance(getattr(cls, "title", None), str) and cls.title.strip()):
        problems.append("title = '<the facility's name for people>'")
    if not isinstance(getattr(cls, "kind", None), Kind):
        problems.append("kind = Kind.OBSERVATION, Kind.FORCED_PHOTOMETRY or Kind.NOTIFICATION")
    skyportal = getattr(cls, "skyportal_class", None)
    if not (isinstance(skyportal, str) and SKYPORTAL_CLASS_RULE.fullmatch(skyportal)):
        problems.append("skyportal_class = '<SkyPortal's api_classname, e.g. ATLASAPI>'")
    if getattr(cls, "priority_order", None) not in ("asc", "desc"):
        problems.append("priority_order = 'asc' or 'desc'")
    if not (isinstance(getattr(cls, "example_remote_id", None), str) and cls.example_remote_id):
        problems.append("example_remote_id = '<a remote id as the facility returns it>'")
    keys = getattr(cls, "config_keys", None)
    if not (isinstance(keys, Mapping) and all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in keys.items())):
        problems.append("config_keys = {'<setting>': '<its meaning in one line>', ...} (the deployment settings it reads)")
    elif cls.base_url_key is not None and cls.base_url_key not in keys:
        problems.append(f"base_url_key = None or one of config_keys (it is {cls.base_url_key!r})")
    if problems:
        raise TypeError(
            f"facility class {cls.__module__}.{cls.__qualname__} lacks metadata; add: " + "; ".join(problems)
            + " (or declare it abstract: class X(Facility, abstract=True))"
        )
