"""Allocations: a facility account's credentials (``altdata``, sealed at rest with AES-256-GCM and
bound to the allocation id) and the SkyPortal fields photometry is filed under."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from ...core.errors import ConfigurationError
from ...core.interface import Allocation
from ..crypto import SealError, SecretBox
from ..models import ALLOCATIONS, AllocationRow, Meta
from .database import Database
from .errors import NotFound

#: The allocation's fields besides its id and credentials, as ``Allocation`` names them.
ALLOCATION_FIELDS = ("pi", "proposal_id", "instrument_id", "instrument_name", "filters", "group_ids")


def _context(allocation_id: int) -> str:
    """What sealed credentials are bound to: copied onto another row, they do not open."""
    return f"allocation:{allocation_id}"


#: ``gateway_meta`` row holding a value sealed with the database's key, and what it seals.
KEY_CHECK = "key_check"
_KEY_CHECK_TEXT = "facility_apis gateway key check"

WRONG_KEY = (
    "the encryption key is not the one this database's credentials were sealed with: start with the right key "
    "(FACILITY_APIS_SECRET_KEY or secret_key_file); nothing was changed"
)


class Allocations:
    """Storing allocations and opening their credentials."""

    def __init__(self, database: Database, box: SecretBox):
        self._database = database
        self._box = box

    def check_key(self) -> None:
        """Refuse (``ConfigurationError``) a key that is not the database's, before anything runs.

        The database keeps a value sealed with its key (``gateway_meta.key_check``); a database
        that has none yet gets one, once an existing allocation (if any) proves the key right.
        """
        with self._database.session() as session:
            found = session.get(Meta, KEY_CHECK)
            if found is None:
                sample = session.execute(select(AllocationRow.id, AllocationRow.sealed_altdata).limit(1)).one_or_none()
                if sample is not None and not self._opens(sample.sealed_altdata, _context(sample.id)):
                    raise ConfigurationError(WRONG_KEY)
                session.add(Meta(key=KEY_CHECK, value=self._box.seal(_KEY_CHECK_TEXT, KEY_CHECK)))
                return
        if not self._opens(found.value, KEY_CHECK, _KEY_CHECK_TEXT):
            raise ConfigurationError(WRONG_KEY)

    def _opens(self, sealed: str, context: str, expected: Any = None) -> bool:
        try:
            value = self._box.open(sealed, context)
        except SealError:
            return False
        return expected is None or value == expected

    def put(self, owner_id: int, allocation_id: int, facility: str, altdata: Mapping[str, Any], **fields: Any) -> None:
        """Create or replace an allocation (``altdata`` already validated; ``fields`` among
        ``ALLOCATION_FIELDS``). Another client's allocation with this id is refused as ``NotFound``."""
        now = time.time()
        with self._database.session() as session:
            row = session.get(AllocationRow, allocation_id)
            if row is not None and row.owner_id != owner_id:
                raise NotFound(f"allocation {allocation_id} belongs to another client")
            if row is None:
                row = AllocationRow(id=allocation_id, owner_id=owner_id, created_at=now)
                session.add(row)
            row.facility = facility
            row.sealed_altdata = self._box.seal(dict(altdata), _context(allocation_id))
            row.pi = fields.get("pi")
            row.proposal_id = fields.get("proposal_id")
            row.instrument_id = fields.get("instrument_id")
            row.instrument_name = fields.get("instrument_name")
            row.filters = list(fields.get("filters") or [])
            row.group_ids = list(fields.get("group_ids") or [])
            row.updated_at = now

    def get(self, allocation_id: int, owner_id: int | None = None) -> tuple[str, Allocation]:
        """``(facility name, Allocation with opened altdata)``; ``owner_id`` restricts to a client
        (``NotFound`` otherwise); ``SealError`` when the credentials do not open."""
        with self._database.session() as session:
            row = session.get(AllocationRow, allocation_id)
        if row is None or (owner_id is not None and row.owner_id != owner_id):
            raise NotFound(f"no allocation {allocation_id}")
        return row.facility, self.opened(row.id, row.sealed_altdata, {name: getattr(row, name) for name in ALLOCATION_FIELDS})

    def summary(self, allocation_id: int, owner_id: int) -> dict[str, Any]:
        """An allocation as the API shows it: ``id``, ``facility`` and ``ALLOCATION_FIELDS``,
        never the credentials. ``NotFound`` unless ``owner_id`` owns it. A read only: it never
        waits for the worker's writes."""
        columns = [ALLOCATIONS.c[name] for name in ("id", "owner_id", "facility", *ALLOCATION_FIELDS)]
        with self._database.reading() as connection:
            row = connection.execute(select(*columns).where(ALLOCATIONS.c.id == allocation_id)).one_or_none()
        if row is None or row.owner_id != owner_id:
            raise NotFound(f"no allocation {allocation_id}")
        return {"id": row.id, "facility": row.facility, **{name: getattr(row, name) for name in ALLOCATION_FIELDS}}

    def opened(self, allocation_id: int, sealed_altdata: str, fields: Mapping[str, Any]) -> Allocation:
        """An ``Allocation`` from a stored row's values (``fields`` keyed by ``ALLOCATION_FIELDS``),
        its credentials opened; ``SealError`` when they do not open."""
        return Allocation(
            allocation_id,
            self._box.open(sealed_altdata, _context(allocation_id)),
            pi=fields["pi"],
            proposal_id=fields["proposal_id"],
            instrument_id=fields["instrument_id"],
            instrument_name=fields["instrument_name"],
            filters=tuple(fields["filters"] or ()),
            group_ids=tuple(fields["group_ids"] or ()),
        )
