"""The browser side: what a submitted form did, read as a verdict on the facility's data, and
when two verdicts agree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The package's own rule for which oneOf branch an instance chose: read Ajv's errors the same way.
from ...core.schemas import discriminators
from .forms import Verdict

#: The browser's verdict when the form could not be used: it did not render, threw, had no submit
#: button, or the page itself failed (the outcome's ``broken`` says how).
BROKEN = "broken"


def _instance_path(pointer: str) -> str:
    """Ajv's ``/a/0/b`` as ``$.a[0].b``."""
    out = "$"
    for part in pointer.split("/")[1:] if pointer else []:
        part = part.replace("~1", "/").replace("~0", "~")
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def _error_path(error: Mapping[str, Any]) -> str:
    """The field an Ajv error is about: the missing or extra property itself, as the package says."""
    path = _instance_path(error.get("instancePath", ""))
    params = error.get("params") or {}
    if error.get("keyword") in ("required", "dependencies") and "missingProperty" in params:
        return f"{path}.{params['missingProperty']}"
    if error.get("keyword") == "additionalProperties" and "additionalProperty" in params:
        return f"{path}.{params['additionalProperty']}"
    return path


def _pointer(schema: Any, pointer: str) -> Any:
    node = schema
    for part in pointer.lstrip("#").split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else (node or {}).get(part)
    return node


def ajv_fields(errors: list[Mapping[str, Any]], schema: Mapping[str, Any]) -> set[str]:
    """The fields at fault in Ajv's raw ``errors`` against ``schema``. A failed ``oneOf``/``anyOf``
    is read as the package reads it (``core.schemas.discriminators``): the errors of the one
    branch whose discriminating properties matched, else the combinator's own error; the errors
    of branches that do not apply are dropped."""
    combinators = [e for e in errors if e.get("keyword") in ("oneOf", "anyOf")]
    dropped: set[int] = set()
    named: set[str] = set()
    for combinator in sorted(combinators, key=lambda e: len(e["schemaPath"])):
        if id(combinator) in dropped:
            continue
        prefix = combinator["schemaPath"] + "/"
        by_branch: dict[int, list[Mapping[str, Any]]] = {}
        for error in errors:
            if error["schemaPath"].startswith(prefix) and id(error) not in dropped:
                by_branch.setdefault(int(error["schemaPath"][len(prefix):].split("/")[0]), []).append(error)
        branches = _pointer(schema, combinator["schemaPath"]) or []
        keywords = [part for part in combinator["schemaPath"].lstrip("#").split("/") if part]
        base = combinator.get("instancePath", "")
        chosen = []
        for index, branch_errors in by_branch.items():
            keys = discriminators(branches[index], keywords)
            mismatched = any(e.get("keyword") in ("enum", "const") and e.get("instancePath", "")[len(base) :].lstrip("/") in keys for e in branch_errors)
            if keys and not mismatched:
                chosen.append(index)
        refused = _refused_choice(by_branch, len(branches)) if len(chosen) != 1 else None
        for index, branch_errors in by_branch.items():
            if len(chosen) != 1 or index != chosen[0]:
                dropped.update(id(e) for e in branch_errors)
        if len(chosen) == 1 or refused is not None:
            dropped.add(id(combinator))
        if refused is not None:
            named.add(refused)
    return {_error_path(e) for e in errors if id(e) not in dropped} | named


def _refused_choice(by_branch: Mapping[int, list[Mapping[str, Any]]], count: int) -> str | None:
    """The property every branch refused with one ``enum``/``const`` error, when it is the same
    one (``notification_type: fax``): the package then names that property, not the combinator
    (``core.schemas._unmatched_choice``). None otherwise."""
    paths = set()
    for index in range(count):
        refusals = [e for e in by_branch.get(index, []) if e.get("keyword") in ("enum", "const")]
        if len(refusals) != 1:
            return None
        paths.add(_error_path(refusals[0]))
    return paths.pop() if len(paths) == 1 else None


def _input_path(paths: Mapping[str, str], element: Mapping[str, Any]) -> str:
    """The JSON path of an input HTML5 validation refused: by its RJSF id, by its name (a widget's
    own hidden input), or as an item of an array field (RJSF ids ``root_filters_0``); else ``#id``."""
    for key in (element["id"], element.get("name") or ""):
        if key in paths:
            return paths[key]
        base, _, index = key.rpartition("_")
        if index.isdigit() and base in paths:
            return f"{paths[base]}[{index}]"
    return f"#{element['id']}"


def browser_verdict(outcome: Mapping[str, Any]) -> tuple[Verdict, Any, set[str]]:
    """What the form did (an outcome from ``browser/check.mjs``) as a verdict on the facility's data;
    that data (for an allocation form, its ``payloadKey`` part); and the fields at fault outside it
    (the allocation fields around an altdata form: the check's own filling)."""
    paths = outcome.get("paths") or {}
    key = outcome.get("payloadKey")
    payload = outcome.get("formData")
    if key:
        payload = payload.get(key, {}) if isinstance(payload, Mapping) else payload
    if outcome.get("submitted"):
        return Verdict(True), payload, set()
    if outcome.get("blockedBy") == "broken":
        return Verdict(False, (), note=BROKEN), payload, set()
    if outcome.get("blockedBy") == "html5":
        fields = {_input_path(paths, i) for i in outcome.get("html5") or []}
    elif outcome.get("blockedBy") == "rjsf":
        fields = ajv_fields(outcome.get("raw") or [], outcome.get("schema") or {})
        # Errors added by the host's own checks (SkyPortal's customValidate) carry no schema path.
        fields |= {"$" + e["property"] for e in outcome.get("errors") or [] if not e.get("schemaPath") and e.get("property")}
    else:
        return Verdict(False, (), note="the form neither submitted nor reported an error"), payload, set()
    outside: set[str] = set()
    if key:
        prefix = f"$.{key}"
        outside = {f for f in fields if not (f == prefix or f.startswith((prefix + ".", prefix + "[")))}
        fields = {"$" + f[len(prefix):] for f in fields - outside}
    return Verdict(False, tuple(sorted(fields))), payload, outside


def agrees(browser: Verdict, python: Verdict, blocked_by: str | None) -> bool:
    """Same verdict, and the same fields at fault. When the browser's HTML5 validation stopped the
    submission it has checked only its own first pass (required fields, number and date inputs) and
    the form library never ran: then the browser's fields need only be among the package's, where
    an input standing for a whole array or object (a multi-select) covers the package's fields
    inside it (``$.filters`` covers ``$.filters[0]``)."""
    if browser.valid != python.valid or browser.note or python.note:
        return False
    if blocked_by == "html5":
        return bool(browser.fields) and all(_covers(field, python.fields) for field in browser.fields)
    return browser.fields == python.fields


def _covers(field: str, fields: tuple[str, ...]) -> bool:
    return any(f == field or f.startswith((field + ".", field + "[")) for f in fields)
