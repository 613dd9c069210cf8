"""The notification branch of an allocation form, for any facility to include.

The fields are SkyPortal's (its follow-up guide): ``notification_type`` (``slack`` or
``email``), then ``slack_workspace``, ``slack_channel``, ``slack_token`` (the three parts of an
incoming webhook's path) or ``email`` (one address or a comma-separated list), and
``include_comments``. They live in ``schemas/notify/altdata.json``; a facility adds them to its own
form with :func:`notification_altdata` and checks what the schema cannot say with
:func:`check_notification_altdata`.

The branch fields sit inside ``dependencies``/``oneOf`` branches, so the form shows them only once
a notification type is chosen. ``additionalProperties: false`` cannot see into branches, so the
host schema gives it up and :func:`check_notification_altdata` refuses unknown keys instead.
Fields of a branch that is not chosen are accepted and ignored: SkyPortal's allocation ``PUT``
merges keys and cannot remove one, so an allocation switched from Slack to e-mail keeps its old
Slack fields (which stay masked as secrets).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from ..core.errors import AltdataError, FieldError
from ..core.schemas import load_schema

#: The modes the branch offers, as ``notification_type`` values.
MODES = ("slack", "email")
MAX_RECIPIENTS = 50
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: An address as an admin types it: a dot-atom local part, ``@``, a domain of at least two labels.
ADDRESS = re.compile(rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~-]+)*@{_LABEL}(?:\.{_LABEL})+")
ADDRESS_RULE = "must be e-mail addresses (name@example.org), one or several separated by commas"


def branch_schema() -> dict[str, Any]:
    """The shipped fragment ``schemas/notify/altdata.json`` (a fresh copy; a valid draft-07 schema
    of its own)."""
    return load_schema("notify/altdata")


def _branches(schema: Mapping[str, Any], key: str = "notification_type") -> list[dict[str, Any]]:
    dependency = (schema.get("dependencies") or {}).get(key)
    return list(dependency.get("oneOf") or []) if isinstance(dependency, Mapping) else []


def _keyed(branch: dict[str, Any], key: str) -> dict[str, Any]:
    """A branch of the fragment with its ``notification_type`` pin moved to ``key``."""
    properties = branch["properties"]
    pin = properties.pop("notification_type")
    branch["properties"] = {key: pin, **properties}
    return branch


def notification_altdata(schema: dict[str, Any], *, key: str = "notification_type") -> dict[str, Any]:
    """``schema`` (a facility's altdata schema) with the notification branch added: the
    ``notification_type`` choices ``slack`` and ``email`` (appended to a ``notification_type`` the
    facility already declares, e.g. GENERIC's ``API``), and one ``dependencies`` branch each. A
    facility whose allocations name the mode under another key (MMA's ``allocation_type``) passes
    it as ``key``: the choices and branches hang on that field instead. A top-level
    ``additionalProperties: false`` is dropped (see the module docstring). Returns a new schema;
    ``required`` is left as the facility wrote it (the branch is optional unless the facility
    requires the key)."""
    merged = copy.deepcopy(schema)
    fragment = branch_schema()
    properties = merged.setdefault("properties", {})
    offered = fragment["properties"]["notification_type"]
    if key in properties:
        choice = properties[key]
        choice["enum"] = [*choice.get("enum", []), *(mode for mode in offered["enum"] if mode not in choice.get("enum", []))]
    else:
        properties[key] = offered
    dependency = merged.setdefault("dependencies", {}).setdefault(key, {})
    dependency.setdefault("oneOf", []).extend(_keyed(branch, key) for branch in _branches(fragment))
    if merged.get("additionalProperties") is False:
        del merged["additionalProperties"]
    return merged


def allowed_keys(schema: Mapping[str, Any]) -> set[str]:
    """Every altdata key ``schema`` knows: its top-level properties and those of its branches."""
    keys = set(schema.get("properties") or {})
    for dependency in (schema.get("dependencies") or {}).values():
        if isinstance(dependency, Mapping):
            for branch in dependency.get("oneOf") or [dependency]:
                keys |= set((branch or {}).get("properties") or {})
    return keys


def parse_addresses(text: str) -> list[str]:
    """The addresses of a comma-separated ``email`` field, blanks dropped and repeats removed (in
    order); ``AltdataError`` on ``$.email`` naming the entry that is not an address (by
    position: the value itself is not repeated)."""
    entries = [entry.strip() for entry in str(text).split(",")]
    addresses: list[str] = []
    for position, entry in enumerate(entries, 1):
        if not entry:
            continue
        if len(entry) > 254 or not ADDRESS.fullmatch(entry):
            raise AltdataError.single("$.email", f"{ADDRESS_RULE}; entry {position} is not one")
        if entry.lower() not in (known.lower() for known in addresses):
            addresses.append(entry)
    if not addresses:
        raise AltdataError.single("$.email", ADDRESS_RULE)
    if len(addresses) > MAX_RECIPIENTS:
        raise AltdataError.single("$.email", f"must list at most {MAX_RECIPIENTS} addresses")
    return addresses


def check_notification_altdata(altdata: Mapping[str, Any], schema: Mapping[str, Any], *, key: str = "notification_type") -> None:
    """Rules the schema cannot say, on altdata that passed ``schema`` (the facility's merged
    altdata schema): no key unknown to the form (``$.<key>: is not an allowed property``), and for
    ``email`` (chosen by ``key``) every entry an address. Raises ``AltdataError``."""
    unknown = sorted(set(altdata) - allowed_keys(schema))
    if unknown:
        raise AltdataError([FieldError(f"$.{name}", "is not an allowed property") for name in unknown])
    if altdata.get(key) == "email":
        parse_addresses(altdata["email"])


def include_comments(altdata: Mapping[str, Any]) -> bool:
    """Whether the allocation shares comments (``include_comments: true``)."""
    return altdata.get("include_comments") is True
