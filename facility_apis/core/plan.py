"""An observation plan the host generated, as a facility of kind ``observation_plan`` receives it.

The core value objects describe one target; a plan (planned fields over an event's localization)
travels in the request's payload instead, under :data:`PLAN_KEY`, validated by the shipped
draft-07 schema ``schemas/observation_plan.json`` and by :func:`check_plan`, so the gateway and
the SkyPortal classes store and pass it like any other payload. Its shape is the body SkyPortal's
MMA classes send to a telescope queue (SkyPortal's ``facility_apis/observation_plan.py``:
``GenericRequest._build_observation_plan_payload`` and ``MMAAPI.send``; Kowalski's
``PUT /api/triggers/ztf`` takes the same)::

    {"queue_name": "ToO_...", "validity_window_mjd": [start, end], "queue_type": "list",
     "user": "<requester>", "targets": [{"request_id": 1, "field_id": 245, "ra": 171.0125,
     "dec": 2.65, "filter": "ztfg", "exposure_time": 300, "program_pi": "<requester>"}, ...]}

plus an optional ``event`` (the GCN event's time) that is shown to people and never sent to a
queue. :class:`ObservationPlan` reads a validated plan and gives it back as the queue's JSON
document (:meth:`ObservationPlan.document`), as a CSV scheduling table (:meth:`to_csv`) and as
the figures a message summarises (:meth:`summary`).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import FieldError, PayloadError
from .schemas import load_schema
from .timeutil import from_mjd

#: The payload key a plan travels under.
PLAN_KEY = "observation_plan"
#: The columns of the CSV scheduling table, in order.
CSV_COLUMNS = ("request_id", "field_id", "ra", "dec", "filter", "exposure_time", "program_pi", "validity_start_mjd", "validity_end_mjd")


def plan_schema() -> dict[str, Any]:
    """The plan's draft-07 schema (a fresh copy of ``schemas/observation_plan.json``)."""
    return load_schema("observation_plan")


def check_plan(plan: Mapping[str, Any], path: str = f"$.{PLAN_KEY}") -> None:
    """Rules :func:`plan_schema` cannot say, on a plan that passed it: the window's start before
    its end, and every ``request_id`` used once. ``PayloadError`` naming the field (under
    ``path``)."""
    errors = []
    start, end = plan["validity_window_mjd"]
    if not start < end:
        errors.append(FieldError(f"{path}.validity_window_mjd", "must start before it ends"))
    seen: set[int] = set()
    for number, target in enumerate(plan["targets"]):
        if target["request_id"] in seen:
            errors.append(FieldError(f"{path}.targets[{number}].request_id", "must be unique within the plan; an earlier target has it"))
            break
        seen.add(target["request_id"])
    if errors:
        raise PayloadError(errors)


@dataclass(frozen=True)
class PlannedField:
    """One planned observation: a field of the instrument's grid (``field_id``, its centre at
    ``ra``/``dec`` in ICRS degrees), a ``filter`` (SkyPortal's bandpass name) and
    ``exposure_time`` in seconds, counted against ``program_pi``."""

    request_id: int
    field_id: int
    ra: float
    dec: float
    filter: str
    exposure_time: float
    program_pi: str

    def document(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "field_id": self.field_id,
            "ra": self.ra,
            "dec": self.dec,
            "filter": self.filter,
            "exposure_time": self.exposure_time,
            "program_pi": self.program_pi,
        }


@dataclass(frozen=True)
class PlanSummary:
    """What a message says of a plan: ``fields`` (how many planned observations), ``filters``
    (each filter and its count, in the plan's order), ``total_exposure`` (seconds), the window
    (``start``/``end``, UTC) and its MJD."""

    fields: int
    filters: tuple[tuple[str, int], ...]
    total_exposure: float
    start: datetime
    end: datetime
    start_mjd: float
    end_mjd: float


@dataclass(frozen=True)
class ObservationPlan:
    """A validated plan (build it with :meth:`from_payload`)."""

    queue_name: str
    validity_window_mjd: tuple[float, float]
    queue_type: str
    user: str
    targets: tuple[PlannedField, ...]
    event: str | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ObservationPlan:
        """The plan in a payload that passed the facility's validation (``payload[PLAN_KEY]``)."""
        plan = payload[PLAN_KEY]
        start, end = plan["validity_window_mjd"]
        targets = tuple(
            PlannedField(
                int(t["request_id"]), int(t["field_id"]), float(t["ra"]), float(t["dec"]), str(t["filter"]), float(t["exposure_time"]), str(t["program_pi"])
            )
            for t in plan["targets"]
        )
        return cls(str(plan["queue_name"]), (float(start), float(end)), str(plan["queue_type"]), str(plan["user"]), targets, plan.get("event"))

    def document(self) -> dict[str, Any]:
        """The plan as a queue receives it: SkyPortal's body (``event`` left out)."""
        return {
            "targets": [target.document() for target in self.targets],
            "queue_name": self.queue_name,
            "validity_window_mjd": list(self.validity_window_mjd),
            "queue_type": self.queue_type,
            "user": self.user,
        }

    def to_json(self) -> bytes:
        """:meth:`document` as UTF-8 JSON, compact (about 140 bytes a target, so 5,000 targets
        stay well within a 1 MiB request) with one target per line: the body a queue API
        receives and the file an scp receiver gets."""
        document = self.document()
        compact = {"sort_keys": True, "separators": (",", ":")}
        targets = ",\n".join(json.dumps(target, **compact) for target in document.pop("targets"))  # type: ignore[arg-type]
        head = json.dumps(document, **compact)[1:-1]  # type: ignore[arg-type]
        return ("{" + head + ',"targets":[\n' + targets + "\n]}\n").encode()

    def to_csv(self) -> bytes:
        """A CSV scheduling table: a header of :data:`CSV_COLUMNS`, then one row per target with
        the validity window repeated (the file's name carries the queue's)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        start, end = self.validity_window_mjd
        for t in self.targets:
            writer.writerow([t.request_id, t.field_id, repr(t.ra), repr(t.dec), t.filter, _number(t.exposure_time), t.program_pi, repr(start), repr(end)])
        return buffer.getvalue().encode()

    def summary(self) -> PlanSummary:
        """The figures of :class:`PlanSummary`."""
        counts = Counter(target.filter for target in self.targets)
        order = list(dict.fromkeys(target.filter for target in self.targets))
        start, end = self.validity_window_mjd
        return PlanSummary(
            fields=len(self.targets),
            filters=tuple((name, counts[name]) for name in order),
            total_exposure=sum(target.exposure_time for target in self.targets),
            start=from_mjd(start),
            end=from_mjd(end),
            start_mjd=start,
            end_mjd=end,
        )


def _number(value: float) -> str:
    """``300.0`` as ``300``, other values as Python writes them."""
    return str(int(value)) if value.is_integer() else repr(value)
