"""Request forms whose fields live in ``dependencies``/``oneOf`` branches (Swift's three request
kinds, NICER's yes/no options): what the kit does for top-level fields, done for branch fields.

``Facility.validate_payload`` fills top-level defaults, normalises ``date_fields`` and refuses
unknown keys through ``additionalProperties``; none of that reaches a field declared inside a
branch. A facility with such a form:

- sets time-relative defaults and the date pattern on branch fields (:func:`set_branch_property`),
- fills the chosen branches' defaults before validation (:func:`fill_defaults`), as the
  form renderer does when a branch is shown, so a script's payload and the browser's agree,
- normalises dates and instants in branches (:func:`normalise_times`),
- refuses keys no part of the form declares (:func:`unknown_fields`), since
  ``additionalProperties: false`` cannot see into branches. A key of a branch not chosen is
  accepted (a form keeps what was typed in a branch the observer left) and the facility ignores it.

Which branch a payload chose is read as the schema says it: the ``dependencies`` entry hangs on
one property, and the branch whose ``enum`` for it holds the payload's value is chosen.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from ..core.errors import FieldError, PayloadError
from ..core.timeutil import parse_utc, utc_date
from ..notify.altdata import allowed_keys


def _branches(schema: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``(trigger property, branch)`` of the schema's ``dependencies``/``oneOf``."""
    for trigger, dependency in (schema.get("dependencies") or {}).items():
        if isinstance(dependency, Mapping):
            for branch in dependency.get("oneOf") or []:
                if isinstance(branch, dict):
                    yield trigger, branch


def chosen_branches(schema: Mapping[str, Any], payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The branches ``payload`` chose: those whose ``enum`` for their trigger holds its value."""
    return [
        branch
        for trigger, branch in _branches(schema)
        if trigger in payload and payload[trigger] in ((branch.get("properties") or {}).get(trigger) or {}).get("enum", ())
    ]


def set_branch_property(schema: dict[str, Any], key: str, **rules: Any) -> None:
    """Set ``rules`` (e.g. ``default=...``, ``pattern=...``) on field ``key`` in every branch that
    declares it; ``KeyError`` if none does (a typo must not pass silently)."""
    found = False
    for _, branch in _branches(schema):
        spec = (branch.get("properties") or {}).get(key)
        if isinstance(spec, dict):
            spec.update(rules)
            found = True
    if not found:
        raise KeyError(f"no branch of the form declares {key!r}")


def fill_defaults(schema: Mapping[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` with the top-level defaults, then those of the branches it chose,
    filled in where missing (the top level first: it decides the branches)."""
    filled = dict(payload)
    for key, spec in (schema.get("properties") or {}).items():
        if key not in filled and isinstance(spec, dict) and "default" in spec:
            filled[key] = copy.deepcopy(spec["default"])
    for branch in chosen_branches(schema, filled):
        for key, spec in (branch.get("properties") or {}).items():
            if key not in filled and isinstance(spec, dict) and "default" in spec:
                filled[key] = copy.deepcopy(spec["default"])
    return filled


def normalise_times(payload: dict[str, Any], *, dates: tuple[str, ...] = (), instants: tuple[str, ...] = ()) -> dict[str, Any]:
    """``payload`` with each of ``dates`` as its UTC date (``YYYY-MM-DD``) and each of
    ``instants`` as UTC ``YYYY-MM-DD HH:MM:SS``, from any spelling of ``DATE_PATTERN``;
    ``PayloadError`` naming every field that is not one, with the rule in words."""
    errors = []
    for key in (*dates, *instants):
        if isinstance(payload.get(key), str):
            try:
                day = utc_date(payload[key])
            except ValueError as exc:
                errors.append(FieldError(f"$.{key}", str(exc)))
                continue
            payload[key] = day.isoformat() if key in dates else parse_utc(payload[key]).strftime("%Y-%m-%d %H:%M:%S")
    if errors:
        raise PayloadError(errors)
    return payload


def unknown_fields(schema: Mapping[str, Any], payload: Mapping[str, Any]) -> None:
    """Raise ``PayloadError`` naming every key of ``payload`` no part of the form declares."""
    unknown = sorted(set(payload) - allowed_keys(schema))
    if unknown:
        raise PayloadError([FieldError(f"$.{key}", "is not a field of this form") for key in unknown])
