"""Loading and validating the draft-07 schema documents shipped in ``facility_apis/schemas``."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from .errors import FieldError, ValidationFailed
from .timeutil import DATE_PATTERN, INSTANT_PATTERN

DRAFT7 = "http://json-schema.org/draft-07/schema#"
FORMAT_CHECKER = Draft7Validator.FORMAT_CHECKER


PACKAGE = "facility_apis"


def schema_root(package: str = PACKAGE):
    """The ``schemas`` folder inside an installed package (ours by default)."""
    return resources.files(package) / "schemas"


@functools.cache
def _read(name: str, package: str) -> dict[str, Any]:
    path = schema_root(package).joinpath(*f"{name}.json".split("/"))
    return json.loads(path.read_text(encoding="utf-8"))


def load_document(name: str, package: str = PACKAGE) -> dict[str, Any]:
    """A fresh copy of a shipped JSON document that is not a schema (e.g. a uiSchema)."""
    return copy.deepcopy(_read(name, package))


@functools.cache
def _load(name: str, package: str) -> dict[str, Any]:
    document = _read(name, package)
    if document.get("$schema") != DRAFT7:
        raise ValueError(f"schema {name!r} must declare $schema {DRAFT7!r}")
    Draft7Validator.check_schema(document)
    return document


def load_schema(name: str, package: str = PACKAGE) -> dict[str, Any]:
    """A fresh copy of schema ``name`` (e.g. ``"atlas/altdata"``) from ``package``'s ``schemas``
    folder, checked to be valid draft-07."""
    return copy.deepcopy(_load(name, package))


def available_schemas(package: str = PACKAGE) -> list[str]:
    """Every schema document name shipped in ``package``, sorted."""
    names = []
    root = schema_root(package)
    for entry in root.iterdir():
        if entry.is_dir():
            names += [f"{entry.name}/{f.name[:-5]}" for f in entry.iterdir() if f.name.endswith(".json")]
        elif entry.name.endswith(".json"):
            names.append(entry.name[:-5])
    return sorted(names)


def secret_fields(schema: dict[str, Any]) -> set[str]:
    """Names of the properties marked ``writeOnly`` anywhere in an object schema (branches too)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, sub in (node.get("properties") or {}).items():
                if isinstance(sub, dict) and sub.get("writeOnly"):
                    found.add(key)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return found


def _quoted(message: str, position: int = 0) -> str:
    """The ``position``-th single-quoted name in a jsonschema message."""
    parts = message.split("'")
    return parts[1 + 2 * position] if len(parts) > 1 + 2 * position else ""


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if name else path


def _json_path(error: ValidationError) -> str:
    """The JSON path of the field at fault (the missing or extra property itself, not its parent)."""
    if error.validator in ("required", "additionalProperties", "dependencies"):
        return _child(error.json_path, _quoted(error.message))
    return error.json_path


_HTTPS_URL = (
    r"^(?:https://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])|http://(?:localhost|127(?:[.][0-9]{1,3}){3}|\[::1\]))"
    r"(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?$"
)
_TOKEN = "must be printable ASCII without spaces"

#: Every ``pattern`` the kit's forms use -> the rule in one short line (the field's description
#: says more; a pattern is no explanation, and repeating the description buries the rule). A form
#: with a pattern not listed here fails ``tests/test_schemas.py``; an outside package's unknown
#: pattern reads ``does not follow the form's rule for it`` (``must match the pattern ...``
#: without a description).
PATTERN_RULES: dict[str, str] = {
    DATE_PATTERN: "must look like 2026-12-01 (a UTC date; a time such as 2026-12-01 10:00 may follow)",
    INSTANT_PATTERN: "must look like 2026-12-01 10:00:00 (UTC unless it ends with Z or an offset)",
    _HTTPS_URL: "must be an https URL without a user name or password (plain http only to a loopback address)",
    r"^https?://[^\s/?#]+(/[^\s?#]*)?$": "must be an http or https URL without a query or fragment",
    r"^[!-~]+$": _TOKEN,
    r"^[\x21-\x7e]+$": _TOKEN,
    r"^[\x21-\x7e]{1,64}$": "must be 1 to 64 printable ASCII characters without spaces",
    r"^[\x21-\x39\x3b-\x7e]+$": "must be printable ASCII without spaces or ':'",
    r"^[\x20-\x7e]+$": "must be printable ASCII",
    r"^[^\x00-\x1f\x7f]+$": "must not contain control characters",
    r"^\S+$": "must not contain spaces",
    r"^[A-Za-z0-9]+$": "must be letters and digits only",
    r"^[A-Za-z0-9_-]+$": "must be letters, digits, '_' and '-' only",
    r"^[A-Za-z0-9_.-]{1,60}$": "must be 1 to 60 letters, digits, '_', '.' and '-'",
    r"^[a-z_]{1,40}$": "must be 1 to 40 lowercase letters and '_'",
    r"^[0-9]+/[0-9]+(\.[0-9]+)?$": "must be calls per seconds, as 600/60",
    r"^[0-9]{1,12}$": "must be a number of 1 to 12 digits",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "must be an e-mail address, like name@example.org",
    r"^[^@\s]+@[^@\s]+[.][^@\s]+$": "must be an e-mail address, like name@example.org",
    r"^G[NS]-[A-Z0-9]+(-[A-Z0-9]+)*$": "must look like GN-2026B-Q-101 (GN- or GS-, then capitals and digits)",
    r"^\s*[0-9]{1,6}(\s*,\s*[0-9]{1,6})*\s*$": "must be template numbers separated by commas, like 3, 5",
    r"^[0-9]{1,19}( *, *[0-9]{1,19}){0,19}$": "must be 1 to 20 ids of digits separated by commas",
    r"^(?!\s+$)[^()/\\:]*$": "must not be blank, nor contain ( ) / \\ or :",
    r"^(?:[A-Za-z0-9.-]{1,253}|\[?[0-9A-Fa-f:.]{2,45}\]?)$": "must be a host name or an IP address",
    r"^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]+-----END [A-Z0-9 ]*PRIVATE KEY-----\s*$": (
        "must be a PEM private key, -----BEGIN ... PRIVATE KEY----- to its END line"
    ),
    r"^(?!(?:.*/)?\.\.(?:/|$))[^\x00-\x1f\x7f]{1,1000}$": "must be a path of at most 1000 characters, without '..' parts or control characters",
    (
        r"^(?:SHA256:[A-Za-z0-9+/]{43}=?|(?:ssh-ed25519|ssh-ed448|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa)"
        r" [A-Za-z0-9+/]+={0,2}(?: [\x20-\x7e]*)?)$"
    ): "must be a host key fingerprint (SHA256:...) or public key line (ssh-ed25519 AAAA...)",
    r"^[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]{0,199}$": "must be a file name of at most 200 characters, not starting with '.', without '/' or '\\'",
}

_RULES = {
    "type": "must be of type {}",
    "pattern": "must match the pattern {!r}",
    "minLength": "must be at least {} characters long",
    "minItems": "must hold at least {} item(s)",
    "maxItems": "must hold at most {} item(s)",
    "uniqueItems": "must not repeat an item",
    "maxLength": "must be at most {} characters long",
    "format": "must be a valid {}",
    "enum": "must be one of {}",
    "const": "must be {!r}",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "exclusiveMinimum": "must be greater than {}",
    "exclusiveMaximum": "must be less than {}",
}


def _rule(error: ValidationError) -> str:
    """The broken rule in words. The offending value is never quoted: it may be a secret."""
    if error.validator == "required":
        return "is required"
    if error.validator == "additionalProperties":
        return "is not an allowed property"
    if error.validator == "dependencies":
        return f"is required when {_quoted(error.message, 1)} is given"
    if error.validator == "pattern" and str(error.validator_value) in PATTERN_RULES:
        return PATTERN_RULES[str(error.validator_value)]
    if error.validator == "pattern" and isinstance(error.schema, dict) and error.schema.get("description"):
        return "does not follow the form's rule for it (see its description)"  # an outside package's pattern
    template = _RULES.get(str(error.validator))
    return template.format(error.validator_value) if template else f"breaks the rule {error.validator!r}"


def _unmatched_choice(error: ValidationError) -> FieldError | None:
    """When no branch of a ``oneOf``/``anyOf`` was chosen because every branch refused the same
    discriminating property (``notification_type: fax``): that property and every value the
    branches allow. None otherwise."""
    paths: set[str] = set()
    allowed: list[Any] = []
    for index, branch in enumerate(error.validator_value):
        refusals = [e for e in error.context or () if e.relative_schema_path[0] == index and e.validator in ("enum", "const")]
        if len(refusals) != 1 or not isinstance(branch, dict):
            return None
        paths.add(refusals[0].json_path)
        values = refusals[0].validator_value
        allowed += [value for value in (values if refusals[0].validator == "enum" else [values]) if value not in allowed]
    return FieldError(paths.pop(), f"must be one of {allowed}") if len(paths) == 1 else None


def _leaf_errors(error: ValidationError) -> Iterable[ValidationError | FieldError]:
    """Expand ``oneOf``/``anyOf`` failures to the errors of the branch the instance chose.

    A branch is chosen when its discriminating properties all matched: the property a
    ``dependencies`` entry hangs on, else every property the branch pins with ``enum``/``const``.
    An ``enum`` error elsewhere in the branch (a list item, another field) is the branch's own
    error, not a sign the instance chose another branch. Without a chosen branch: when every
    branch refused the same discriminating value, that property with the values allowed; else the
    combinator error itself.
    """
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        yield error
        return
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    branches = error.validator_value
    chosen = []
    for index, errors in by_branch.items():
        keys = discriminators(branches[index], error.schema_path)
        mismatched = any(e.validator in ("enum", "const") and len(e.relative_path) == 1 and e.relative_path[0] in keys for e in errors)
        if keys and not mismatched:
            chosen.append(index)
    if len(chosen) == 1:
        for sub in by_branch[chosen[0]]:
            yield from _leaf_errors(sub)
    else:
        yield _unmatched_choice(error) or error


def discriminators(branch: dict[str, Any], schema_path: Sequence[Any]) -> set[str]:
    """The properties that say whether an instance chose ``branch`` of the ``oneOf``/``anyOf`` at
    ``schema_path`` (its keywords from the root, e.g. ``dependencies, mode, oneOf``): the property
    a ``dependencies`` entry hangs on, else every property the branch pins with ``enum``/``const``.
    The browser form check reads Ajv's errors by the same rule."""
    path = list(schema_path)
    pinned = {name for name, sub in (branch.get("properties") or {}).items() if isinstance(sub, dict) and ("enum" in sub or "const" in sub)}
    if len(path) >= 3 and path[-3] == "dependencies" and path[-2] in pinned:
        return {path[-2]}
    return pinned


def compiled(schema: dict[str, Any]) -> Draft7Validator:
    """A draft-07 validator of ``schema`` with formats checked: what ``field_errors`` takes to
    judge many instances by one schema without building it again each time."""
    return Draft7Validator(schema, format_checker=FORMAT_CHECKER)


def field_errors(schema: dict[str, Any] | Draft7Validator, instance: Any) -> list[FieldError]:
    """Every way ``instance`` breaks ``schema`` (a draft-07 document, or ``compiled`` from one;
    formats checked), one per field."""
    validator = schema if isinstance(schema, Draft7Validator) else compiled(schema)
    seen: dict[str, FieldError] = {}
    for error in validator.iter_errors(instance):
        for leaf in _leaf_errors(error):
            found = leaf if isinstance(leaf, FieldError) else FieldError(_json_path(leaf), _rule(leaf))
            seen.setdefault(found.path, found)
    return sorted(seen.values(), key=lambda e: e.path)


def validate(schema: dict[str, Any] | Draft7Validator, instance: Any, error_class: type[ValidationFailed]) -> None:
    """Raise ``error_class`` listing every failing field, or return quietly."""
    errors = field_errors(schema, instance)
    if errors:
        raise error_class(errors)


def apply_defaults(schema: dict[str, Any], instance: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``instance`` with the top-level ``default`` of each missing property filled in."""
    filled = dict(instance)
    for key, sub in (schema.get("properties") or {}).items():
        if key not in filled and isinstance(sub, dict) and "default" in sub:
            filled[key] = copy.deepcopy(sub["default"])
    return filled
