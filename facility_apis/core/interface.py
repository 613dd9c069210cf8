"""The facility contract: value objects in, ``Outcome`` out, every I/O through a ``Transport``."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .credentials import credential_errors
from .egress import EgressPolicy
from .errors import AltdataError, NotImplementedOperation, PayloadError
from .outcome import Outcome
from .schemas import apply_defaults, available_schemas, field_errors, load_document, load_schema, secret_fields, validate
from .transport import HTTPCall, Transport

OPERATIONS = ("submit", "get", "update", "delete")
IMPLEMENTABLE = ("validate_altdata", "prepare", *OPERATIONS)


class Kind(str, enum.Enum):
    """What a facility does: observe (a telescope's queue), measure forced photometry on existing
    images, or notify people (Slack, e-mail, another service)."""

    OBSERVATION = "observation"
    FORCED_PHOTOMETRY = "forced_photometry"
    NOTIFICATION = "notification"


@dataclass(frozen=True)
class Target:
    """The source to follow up; ``ra``/``dec`` in decimal degrees (ICRS)."""

    id: str
    ra: float
    dec: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.ra) and 0.0 <= self.ra < 360.0):
            raise PayloadError.single("$.ra", "must be a finite number in [0, 360)")
        if not (math.isfinite(self.dec) and -90.0 <= self.dec <= 90.0):
            raise PayloadError.single("$.dec", "must be a finite number in [-90, 90]")


@dataclass(frozen=True)
class Allocation:
    """An allocation on a facility. ``altdata`` holds credentials and never shows in a repr."""

    id: int | None
    altdata: Mapping[str, Any] = field(repr=False)
    pi: str | None = None
    proposal_id: str | None = None
    instrument_id: int | None = None
    instrument_name: str | None = None
    filters: tuple[str, ...] = ()
    group_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class FollowupRequest:
    """An observer's request: what to observe, on which allocation, with which form payload.

    ``remote_id`` is the facility's handle once submitted (e.g. the ATLAS task URL);
    ``callback_url``, when the caller can receive one, is where the facility may announce changes
    (a hint: the facility must work without it).
    """

    id: int | None
    target: Target
    allocation: Allocation
    payload: Mapping[str, Any] = field(default_factory=dict)
    requester: str | None = None
    remote_id: str | None = None
    callback_url: str | None = None


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
    ``egress``, both at construction.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[Kind]
    skyportal_class: ClassVar[str]
    setup_url: ClassVar[str] = ""
    priority_order: ClassVar[str] = "asc"
    example_remote_id: ClassVar[str] = "1"
    #: The package whose ``schemas/<name>/`` folder holds this facility's documents.
    schema_package: ClassVar[str] = "facility_apis"

    def __init_subclass__(cls, *, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not abstract:
            _check_metadata(cls)

    def __init__(self, config: Mapping[str, Any] | None = None, *, egress: EgressPolicy | None = None):
        self.config = dict(config or {})
        self.egress = egress if egress is not None else EgressPolicy()

    # -- schemas -------------------------------------------------------------------------------

    @classmethod
    def altdata_schema(cls) -> dict[str, Any]:
        """The allocation form (draft-07): ``schemas/<name>/altdata.json``, a fresh copy."""
        return load_schema(f"{cls.name}/altdata", cls.schema_package)

    def request_schema(self) -> dict[str, Any]:
        """The request form (draft-07), with the time-relative defaults of ``request_defaults()``
        computed now; a fresh copy."""
        schema = load_schema(f"{self.name}/request", self.schema_package)
        for key, value in self.request_defaults().items():
            schema["properties"][key]["default"] = value
        return schema

    def request_defaults(self) -> dict[str, Any]:
        """Defaults that depend on the moment of the call (e.g. "the last 30 days"), by field."""
        return {}

    @classmethod
    def ui_schema(cls) -> dict[str, Any]:
        """The request form's react-jsonschema-form uiSchema (``ui.json``), or ``{}``."""
        name = f"{cls.name}/ui"
        return load_document(name, cls.schema_package) if name in available_schemas(cls.schema_package) else {}

    @classmethod
    def secret_fields(cls) -> set[str]:
        """The altdata fields marked ``writeOnly`` (anywhere, branches included)."""
        return secret_fields(cls.altdata_schema())

    @classmethod
    def secrets(cls, altdata: Mapping[str, Any]) -> list[str]:
        """The secret values in ``altdata``: what every record must mask."""
        if not isinstance(altdata, Mapping):
            return []
        return [str(altdata[key]) for key in cls.secret_fields() if altdata.get(key) not in (None, "")]

    # -- validation ----------------------------------------------------------------------------

    def validate_altdata(self, altdata: Mapping[str, Any]) -> dict[str, Any]:
        """Check allocation credentials; return them without blank values (SkyPortal drops those).

        Raises ``AltdataError`` naming every failing field and its rule (never a value): the
        schema's, then those of ``core/credentials.py`` (secrets that can travel in a header, no
        user name or password in a URL), then ``check_altdata``'s.
        """
        if not isinstance(altdata, Mapping):
            raise AltdataError.single("$", "must be an object")
        cleaned = {key: value for key, value in altdata.items() if value not in (None, "")}
        # The schema's errors first; then the rules every facility's credentials obey.
        errors = {error.path: error for error in field_errors(self.altdata_schema(), cleaned)}
        for error in credential_errors(cleaned, self.secret_fields()):
            errors.setdefault(error.path, error)
        if errors:
            raise AltdataError(sorted(errors.values(), key=lambda error: error.path))
        self.check_altdata(cleaned)
        return cleaned

    def check_altdata(self, altdata: dict[str, Any]) -> None:
        """Rules beyond the schema, on altdata that passed it; raise ``AltdataError``."""

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Check a request payload; return it with defaults filled in. Raises ``PayloadError``
        naming every failing field and its rule."""
        if not isinstance(payload, Mapping):
            raise PayloadError.single("$", "must be an object")
        schema = self.request_schema()
        filled = apply_defaults(schema, dict(payload))
        validate(schema, filled, PayloadError)
        self.check_payload(filled)
        return filled

    def check_payload(self, payload: dict[str, Any]) -> None:
        """Rules beyond the schema (e.g. ordering of dates), on a payload that passed it with its
        defaults filled; raise ``PayloadError``."""

    def instrument_form(self, schema: dict[str, Any], *, name: str | None, filters: tuple[str, ...]) -> dict[str, Any]:
        """The request form narrowed to one instrument (its SkyPortal ``name`` and ``filters``,
        SkyPortal bandpass names), e.g. the filter choices; by default the form unchanged.
        ``schema`` is a fresh copy of ``request_schema()``, free to change and return."""
        return schema

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

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        """The submission as the facility would receive it, built without sending anything (no
        I/O at all): it powers ``--dry-run`` and the docs' generated example."""
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

        Returns ``deleted`` (with a detail saying what happened remotely, and ``photometry`` if
        results were fetched first); any other state means the request was not canceled and the
        detail says why (e.g. ``failed: the facility cannot cancel a completed request``).
        """
        raise NotImplementedOperation(f"{self.name} does not implement delete")

    # -- capabilities --------------------------------------------------------------------------

    @classmethod
    def implements(cls) -> dict[str, bool]:
        """Which of ``validate_altdata``, ``prepare``, ``submit``, ``get``, ``update``,
        ``delete`` this facility overrides (``validate_altdata`` always: every facility checks its
        schema)."""
        return {op: op == "validate_altdata" or getattr(cls, op) is not getattr(Facility, op) for op in IMPLEMENTABLE}


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
    if problems:
        raise TypeError(
            f"facility class {cls.__module__}.{cls.__qualname__} lacks metadata; add: " + "; ".join(problems)
            + " (or declare it abstract: class X(Facility, abstract=True))"
        )
