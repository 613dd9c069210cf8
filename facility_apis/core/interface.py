"""The facility contract: value objects in, ``Outcome`` out, every I/O through a ``Transport``."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import AltdataError, NotImplementedOperation, PayloadError
from .outcome import Outcome
from .schemas import apply_defaults, available_schemas, load_document, load_schema, secret_fields, validate
from .transport import Transport

OPERATIONS = ("submit", "get", "update", "delete")
IMPLEMENTABLE = ("validate_altdata", "prepare", *OPERATIONS)


class Kind(str, enum.Enum):
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
    ``callback_url``, when the caller can receive one, is where the facility may announce changes.
    """

    id: int | None
    target: Target
    allocation: Allocation
    payload: Mapping[str, Any] = field(default_factory=dict)
    requester: str | None = None
    remote_id: str | None = None
    callback_url: str | None = None


class Facility:
    """Base of every facility. Subclasses declare metadata and override the operations they
    support; ``implements()`` reports which.

    A facility never sleeps, never opens a database and never reads global configuration: its
    settings come in ``config`` at construction.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[Kind]
    #: SkyPortal's priority convention: "asc" means a higher number is more urgent.
    priority_order: ClassVar[str] = "asc"
    alias_lookup: ClassVar[dict[str, str]] = {}
    setup_url: ClassVar[str] = ""
    #: The package whose ``schemas/<name>/`` folder holds this facility's documents.
    schema_package: ClassVar[str] = "facility_apis"

    def __init__(self, config: Mapping[str, Any] | None = None):
        self.config = dict(config or {})

    # -- schemas -------------------------------------------------------------------------------

    @classmethod
    def altdata_schema(cls) -> dict[str, Any]:
        return load_schema(f"{cls.name}/altdata", cls.schema_package)

    def request_schema(self) -> dict[str, Any]:
        """The request form, with time-relative defaults computed now."""
        schema = load_schema(f"{self.name}/request", self.schema_package)
        for key, value in self.request_defaults().items():
            schema["properties"][key]["default"] = value
        return schema

    def request_defaults(self) -> dict[str, Any]:
        """Defaults that depend on the moment of the call (e.g. "the last 30 days")."""
        return {}

    @classmethod
    def ui_schema(cls) -> dict[str, Any]:
        name = f"{cls.name}/ui"
        return load_document(name, cls.schema_package) if name in available_schemas(cls.schema_package) else {}

    @classmethod
    def secret_fields(cls) -> set[str]:
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

        Raises ``AltdataError`` naming every failing field.
        """
        if not isinstance(altdata, Mapping):
            raise AltdataError.single("$", "must be an object")
        cleaned = {key: value for key, value in altdata.items() if value not in (None, "")}
        validate(self.altdata_schema(), cleaned, AltdataError)
        self.check_altdata(cleaned)
        return cleaned

    def check_altdata(self, altdata: dict[str, Any]) -> None:
        """Rules beyond the schema; raise ``AltdataError``."""

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Check a request payload; return it with defaults filled in. Raises ``PayloadError``."""
        if not isinstance(payload, Mapping):
            raise PayloadError.single("$", "must be an object")
        schema = self.request_schema()
        filled = apply_defaults(schema, dict(payload))
        validate(schema, filled, PayloadError)
        self.check_payload(filled)
        return filled

    def check_payload(self, payload: dict[str, Any]) -> None:
        """Rules beyond the schema (e.g. ordering of dates); raise ``PayloadError``."""

    # -- operations (override the ones the facility supports) ----------------------------------

    def prepare(self, request: FollowupRequest):
        """Build the submission without sending it (powers ``--dry-run``)."""
        raise NotImplementedOperation(f"{self.name} cannot prepare a request")

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        raise NotImplementedOperation(f"{self.name} does not implement submit")

    def get(self, request: FollowupRequest, transport: Transport) -> Outcome:
        raise NotImplementedOperation(f"{self.name} does not implement get")

    def update(self, request: FollowupRequest, transport: Transport) -> Outcome:
        raise NotImplementedOperation(f"{self.name} does not implement update")

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        raise NotImplementedOperation(f"{self.name} does not implement delete")

    # -- capabilities --------------------------------------------------------------------------

    @classmethod
    def implements(cls) -> dict[str, bool]:
        """Which operations this facility overrides, SkyPortal-style."""
        # Every facility validates its altdata against its schema, so that one is always True.
        return {op: op == "validate_altdata" or getattr(cls, op) is not getattr(Facility, op) for op in IMPLEMENTABLE}

    def frontend_render_info(self) -> dict[str, Any]:
        """What SkyPortal's UI reads to render the forms (its ``frontend_render_info`` keys)."""
        request_schema = self.request_schema()
        forced = self.kind is Kind.FORCED_PHOTOMETRY
        return {
            "methodsImplemented": self.implements(),
            "formSchema": None if forced else request_schema,
            "formSchemaForcedPhotometry": request_schema if forced else None,
            "formSchemaAltdata": self.altdata_schema(),
            "uiSchema": self.ui_schema(),
            "aliasLookup": dict(self.alias_lookup),
            "priorityOrder": self.priority_order,
        }
