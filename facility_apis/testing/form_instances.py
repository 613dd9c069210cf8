"""Deterministic instances to fill a facility's form with, generated from its draft-07 schema.

:func:`form_instances` returns probes, not answers: the schema's valid examples, the smallest
valid instance, then per property (top level, nested objects and ``dependencies``/``oneOf``
branches) its absence, ``null``, a wrong type, the empty string, the boundaries of its numbers and
lengths, every ``enum``/``const`` value and one outside them, a pattern mismatch, a set of known
spellings of its ``format`` (valid and invalid ones), each dependency with and without what it
requires, and an unknown key. Nothing predicts which are valid: a checker submits each to both
sides (e.g. the browser form check) and compares the verdicts. Ids (``"start_date/format:year-0000"``)
depend only on the schema, so a reviewed list of expected disagreements can name them. The dates
of the date and time probes are spelled from the field's default, else from 30 days after the day
the instances are made (:func:`format_probes`): what each probe tests, and so each verdict, does
not change with the calendar.

Format spellings come from RFC 3339 (``date``, ``date-time``, ``time``; the kit's ``DATE_PATTERN``
fields get those of ``date``, its ``INSTANT_PATTERN`` fields those of ``date-time``), RFC 5322 (``email``) and
RFC 3986 (``uri``), with the cases where Ajv's ``ajv-formats`` and Python's ``jsonschema`` are
known to differ (year 0000, missing time zone, space for "T", leap second, dotless e-mail domains).
"""

from __future__ import annotations

import calendar
import contextlib
import copy
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ..core.timeutil import DATE_PATTERN, INSTANT_PATTERN, parse_utc, utcnow

#: Spellings tried for each ``format`` that does not name a time: (label, value). The first one
#: is a valid value. Those of ``date``, ``date-time`` and ``time`` depend on the day: see
#: :func:`format_probes`.
FIXED_PROBES: dict[str, tuple[tuple[str, str], ...]] = {
    "time": (
        ("valid", "12:00:00Z"),
        ("no-zone", "12:00:00"),
        ("hour-24", "24:00:00Z"),
    ),
    "email": (
        ("valid", "observer@example.org"),
        ("space", "an observer@example.org"),
        ("dotless-domain", "observer@localhost"),
        ("no-local-part", "@example.org"),
        ("no-at", "observer.example.org"),
    ),
    "uri": (
        ("valid", "https://example.org/forcedphot"),
        ("http-loopback", "http://127.0.0.1:8000/forcedphot"),
        ("http", "http://example.org/forcedphot"),
        ("ftp", "ftp://example.org/forcedphot"),
        ("query-fragment", "https://example.org/x?a=1#f"),
        ("relative", "example.org/forcedphot"),
        ("space", "https://example .org/"),
    ),
    "hostname": (
        ("valid", "example.org"),
        ("underscore", "ex_ample.org"),
        ("label-too-long", "a" * 64 + ".org"),
    ),
    "ipv4": (
        ("valid", "192.0.2.1"),
        ("octet-256", "192.0.2.256"),
        ("leading-zero", "192.0.2.01"),
    ),
    "ipv6": (
        ("valid", "2001:db8::1"),
        ("triple-colon", "2001:db8:::1"),
    ),
}
#: The formats whose probes are dates and times (:func:`format_probes`), and ``"instant"`` for the
#: kit's ``INSTANT_PATTERN`` fields, which take the spellings of ``date-time``.
TIME_FORMATS = ("date", "date-time", "instant")
#: How far ahead of the day the check runs a probe's date lies when its field has no default.
AHEAD = timedelta(days=30)
#: A probe's leap day is the first 29 February at least this long after its anchor and after the
#: day the check runs, so it lies after every default window (a week, a month) whatever the day.
LEAP_DAY_AFTER = timedelta(days=60)


def _anchor(spec: Mapping[str, Any] | None, now: datetime) -> datetime:
    """The moment a time field's probes are spelled from: its default (computed when the form
    was served, so a valid probe stays inside the form's default window and on the same side of
    "now" whatever the day), else ``AHEAD`` of ``now`` at noon (UTC, whole seconds)."""
    default = spec.get("default") if isinstance(spec, Mapping) else None
    if isinstance(default, str):
        with contextlib.suppress(ValueError):
            return parse_utc(default).replace(microsecond=0)
    return (now + AHEAD).replace(hour=12, minute=0, second=0, microsecond=0)


def _next_leap_day(after: date) -> date:
    year = after.year
    while True:
        if calendar.isleap(year) and date(year, 2, 29) >= after:
            return date(year, 2, 29)
        year += 1


def format_probes(fmt: str, spec: Mapping[str, Any] | None = None, now: datetime | None = None) -> tuple[tuple[str, str], ...]:
    """The spellings tried for ``fmt`` (a ``format``, or ``"instant"``): (label, value), the first
    one valid. Dates and times are spelled from the field's anchor (its default, else 30 days after
    ``now``, by default the moment of the call), so what a probe tests does not change with the
    calendar: labels and kinds of spelling are fixed, the dates move with the day the check runs.
    Year 0000, a 30 February, month 13 and a leap second stay impossible whatever the day."""
    if fmt not in TIME_FORMATS:
        return FIXED_PROBES.get(fmt, ())
    now = now or utcnow()
    moment = _anchor(spec, now)
    day = moment.date()
    year = day.year
    leap = _next_leap_day(max(day, now.date()) + LEAP_DAY_AFTER)
    if fmt == "date":
        return (
            ("valid", day.isoformat()),
            ("leap-day", leap.isoformat()),
            ("impossible-day", f"{year}-02-30"),
            ("month-13", f"{year}-13-01"),
            ("year-0000", "0000-01-01"),
            ("with-time", f"{day.isoformat()} 12:00:00"),
            ("date-time", f"{day.isoformat()}T12:00:00Z"),
            ("no-dashes", day.strftime("%Y%m%d")),
            ("one-digit-month", f"{year + 1}-1-{day.day:02d}"),
        )
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return (
        ("valid", f"{stamp}Z"),
        ("offset", f"{stamp}+02:00"),
        ("fraction", f"{stamp}.250Z"),
        ("no-zone", stamp),
        ("space", stamp.replace("T", " ")),
        ("leap-second", f"{year}-12-31T23:59:60Z"),
        ("date-only", day.isoformat()),
        ("year-0000", "0000-01-01T00:00:00Z"),
    )


def _probe_format(spec: Mapping[str, Any]) -> str:
    """The probe table of a string field: its ``format``, ``"date"`` for the kit's
    ``DATE_PATTERN`` fields, ``"instant"`` for ``INSTANT_PATTERN`` ones, else ``""``."""
    if spec.get("format"):
        return str(spec["format"])
    return {DATE_PATTERN: "date", INSTANT_PATTERN: "instant"}.get(spec.get("pattern", ""), "")


#: A value of another JSON type, per declared type.
WRONG_TYPE: dict[str, Any] = {
    "string": 12345,
    "number": "12",
    "integer": "12",
    "boolean": "true",
    "array": "x",
    "object": "x",
    "null": 0,
}

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}

UNKNOWN_KEY = "unexpected_field"
#: What :func:`valid_value` returns when it knows no valid value (and, given to ``_set``, "remove the key").
NO_VALUE = object()


@dataclass(frozen=True)
class Instance:
    """One probe: a stable ``id``, the ``data`` to submit and what it probes in words (``note``)."""

    id: str
    data: Any
    note: str


def _types(spec: Mapping[str, Any]) -> list[str]:
    kind = spec.get("type")
    if isinstance(kind, list):
        return [str(k) for k in kind]
    return [str(kind)] if kind else []


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def valid_value(spec: Any) -> Any:
    """A value ``spec`` should accept: its ``const`` or ``default``, first ``enum`` value or
    ``examples`` entry, else one built from its type and bounds. ``NO_VALUE`` when none is known."""
    if not isinstance(spec, Mapping):
        return NO_VALUE
    for key in ("const", "default"):
        if key in spec:
            return copy.deepcopy(spec[key])
    if spec.get("enum"):
        return copy.deepcopy(spec["enum"][0])
    if spec.get("examples"):
        return copy.deepcopy(spec["examples"][0])
    choices = [b for b in spec.get("oneOf") or [] if isinstance(b, Mapping)]
    if choices:
        return valid_value(choices[0])
    types = _types(spec)
    kind = types[0] if types else ("object" if "properties" in spec else None)
    if kind == "string":
        probes = format_probes(_probe_format(spec), spec)
        if probes:
            return probes[0][1]
        if "pattern" in spec:
            return NO_VALUE
        return "x" * max(int(spec.get("minLength", 1)), 1)
    if kind in ("number", "integer"):
        return _number_inside(spec, kind)
    if kind == "boolean":
        return True
    if kind == "array":
        item = valid_value(spec.get("items"))
        return [] if item is NO_VALUE else [item] * int(spec.get("minItems", 0))
    if kind == "object":
        return base_instance(spec)
    if kind == "null":
        return None
    return NO_VALUE


def _number_inside(spec: Mapping[str, Any], kind: str) -> float | int:
    """A number between the bounds of ``spec`` (a whole one for ``integer``)."""
    low = spec.get("minimum", spec.get("exclusiveMinimum"))
    high = spec.get("maximum", spec.get("exclusiveMaximum"))
    if low is not None and high is not None:
        value = (low + high) / 2
    elif low is not None:
        value = low + 1
    else:
        value = high - 1 if high is not None else 1
    return math.ceil(value) if kind == "integer" else value


def base_instance(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema's first ``examples`` entry, else its required properties with valid values, and
    what their ``dependencies`` then require (from the branch their value selects).

    The example's dates and times give way to their fields' defaults (computed when the form was
    served, e.g. "the last 30 days"): probed against an example's fixed window, a probe's date
    (spelled from the default) would move across that window as the calendar does, and its
    verdict with it."""
    examples = schema.get("examples") or []
    if examples and isinstance(examples[0], Mapping):
        base = copy.deepcopy(dict(examples[0]))
        for key, spec in (schema.get("properties") or {}).items():
            if key in base and isinstance(spec, Mapping) and "default" in spec and _probe_format(spec) in TIME_FORMATS:
                base[key] = copy.deepcopy(spec["default"])
        return base
    base = _with_values({}, schema, list(schema.get("required") or []))
    for key, dependency in (schema.get("dependencies") or {}).items():
        if key not in base:
            continue
        if isinstance(dependency, list):
            base = _with_values(base, schema, dependency)
            continue
        chosen = [b for b in _branches(dependency) if _selects(b, key, base[key])] or _branches(dependency)[:1]
        for branch in chosen[:1]:
            base = _with_values(base, _merged(schema, branch), list(branch.get("required") or []))
    return base


def _branches(dependency: Any) -> list[Mapping[str, Any]]:
    """The alternatives of a schema dependency: its ``oneOf``/``anyOf`` branches, or itself."""
    if not isinstance(dependency, Mapping):
        return []
    return [b for b in dependency.get("oneOf") or dependency.get("anyOf") or [dependency] if isinstance(b, Mapping)]


def _selects(branch: Mapping[str, Any], key: str, value: Any) -> bool:
    selector = (branch.get("properties") or {}).get(key)
    if not isinstance(selector, Mapping):
        return False
    return ("enum" in selector and value in selector["enum"]) or ("const" in selector and value == selector["const"])


def _merged(schema: Mapping[str, Any], branch: Mapping[str, Any]) -> dict[str, Any]:
    """The properties of ``schema`` and of one of its dependency branches together."""
    return {"properties": {**(schema.get("properties") or {}), **(branch.get("properties") or {})}}


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        child = node.get(key)
        node[key] = child = dict(child) if isinstance(child, Mapping) else {}
        node = child
    if value is NO_VALUE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return out


def _number_probes(spec: Mapping[str, Any], kind: str) -> Iterator[tuple[str, Any]]:
    for keyword, sign in (("minimum", -1), ("exclusiveMinimum", -1), ("maximum", 1), ("exclusiveMaximum", 1)):
        if keyword in spec:
            bound = spec[keyword]
            yield f"{keyword}:at", bound
            yield f"{keyword}:beyond", bound + sign
            if kind == "number":
                yield f"{keyword}:inside", bound - sign * 0.5
    if kind == "integer":
        yield "fraction", _number_inside(spec, kind) + 0.5
    if "multipleOf" in spec:
        yield "multipleOf:off", spec["multipleOf"] * 1.5


def _string_probes(spec: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    yield "blank", "   "
    if "minLength" in spec:
        yield "minLength:at", "x" * spec["minLength"]
        if spec["minLength"] > 1:  # 1 - 1 characters is the empty-string probe
            yield "minLength:below", "x" * (spec["minLength"] - 1)
    if "maxLength" in spec:
        yield "maxLength:at", "x" * spec["maxLength"]
        yield "maxLength:above", "x" * (spec["maxLength"] + 1)
    if "pattern" in spec:
        good = valid_value(spec)
        yield "pattern:mismatch", " " + (good if isinstance(good, str) else "x")
    if spec.get("format"):
        for label, value in format_probes(str(spec["format"]), spec):
            yield f"format:{label}", value
    elif spec.get("pattern") in (DATE_PATTERN, INSTANT_PATTERN):  # the kit's date and instant fields: every spelling they take
        kind = _probe_format(spec)
        for label, value in format_probes(kind, spec):
            yield f"{kind}:{label}", value


def _array_probes(spec: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    items = spec.get("items") if isinstance(spec.get("items"), Mapping) else {}
    item = valid_value(items)
    for value in items.get("enum") or []:
        yield f"item:{_label(value)}", [value]
    item_types = _types(items)
    if item_types:
        yield "item:wrong-type", [WRONG_TYPE[item_types[0]]]
    if item is not NO_VALUE:
        if spec.get("uniqueItems"):
            yield "uniqueItems:repeated", [item, item]
        if "minItems" in spec and spec["minItems"] > 0:
            yield "minItems:below", [item] * (spec["minItems"] - 1)
        if "maxItems" in spec:
            yield "maxItems:above", [item] * (spec["maxItems"] + 1)


def _value_probes(spec: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(label, value) probes of one property, judged on their own."""
    yield "null", None
    yield "empty-string", ""
    types = _types(spec)
    for kind in types[:1]:
        if kind in WRONG_TYPE and not any(isinstance(WRONG_TYPE[kind], _PY_TYPES.get(t, ())) for t in types):
            yield "wrong-type", WRONG_TYPE[kind]
    if "const" in spec:
        yield "const", spec["const"]
        yield "const:other", "other-value" if spec["const"] == "not-the-constant" else "not-the-constant"
    if spec.get("enum"):
        for value in spec["enum"]:
            yield f"enum:{_label(value)}", value
        yield "enum:outside", "not-an-option" if all(isinstance(v, str) for v in spec["enum"]) else max(
            (v for v in spec["enum"] if isinstance(v, (int, float)) and not isinstance(v, bool)), default=0
        ) + 1
    for branch in spec.get("oneOf") or []:
        if isinstance(branch, Mapping) and "const" in branch:
            yield f"oneOf:{_label(branch['const'])}", branch["const"]
    if "boolean" in types:
        yield "true", True
        yield "false", False
    for kind in ("number", "integer"):
        if kind in types:
            yield from _number_probes(spec, kind)
            break
    if "string" in types:
        yield from _string_probes(spec)
    if "array" in types:
        yield from _array_probes(spec)


def _property_instances(
    schema: Mapping[str, Any], base: dict[str, Any], prefix: tuple[str, ...], context: str, ignore: frozenset[str] = frozenset()
) -> Iterator[Instance]:
    """Probes of every property of the object ``schema`` found at ``prefix`` inside ``base``."""
    required = set(schema.get("required") or [])
    for key, spec in (schema.get("properties") or {}).items():
        if not isinstance(spec, Mapping) or (not prefix and key in ignore):
            continue
        path = (*prefix, key)
        name = ".".join(path)
        where = f"{context}{name}"
        if _get(base, path) is not NO_VALUE:
            yield Instance(f"{where}/missing", _set(base, path, NO_VALUE), f"{name} left out ({'required' if key in required else 'optional'})")
        for label, value in _value_probes(spec):
            yield Instance(f"{where}/{label}", _set(base, path, value), f"{name} = {json.dumps(value)} ({label})")
        if "object" in _types(spec) or "properties" in spec:
            inner = valid_value(spec)
            if isinstance(inner, dict):
                yield from _property_instances(spec, _set(base, path, inner), path, context)


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            return NO_VALUE
        data = data[key]
    return data


def _with_values(base: dict[str, Any], schema: Mapping[str, Any], keys: list[str]) -> dict[str, Any]:
    """``base`` plus a valid value for each of ``keys`` it lacks (properties of ``schema``)."""
    out = copy.deepcopy(base)
    for key in keys:
        if key not in out:
            value = valid_value((schema.get("properties") or {}).get(key))
            if value is not NO_VALUE:
                out[key] = value
    return out


def _required_keys(schema: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    """The keys ``base`` must keep to stay valid with nothing optional: the schema's ``required``,
    and for each ``dependencies`` entry it holds, the keys the entry asks (a list) or those
    required by the ``oneOf``/``anyOf`` branch its value chose (the branch pinning that value)."""
    keys = list(schema.get("required") or [])
    for key, dependency in (schema.get("dependencies") or {}).items():
        if key not in keys or key not in base:
            continue
        if isinstance(dependency, list):
            keys += [k for k in dependency if k not in keys]
            continue
        for branch in _branches(dependency):
            selector = (branch.get("properties") or {}).get(key)
            pinned = selector.get("enum", [selector.get("const")]) if isinstance(selector, Mapping) else []
            if base[key] in pinned:
                keys += [k for k in branch.get("required") or [] if k not in keys]
    return keys


def _dependency_instances(schema: Mapping[str, Any], base: dict[str, Any]) -> Iterator[Instance]:
    """Each ``dependencies`` entry: a list of required keys, or a schema (with ``oneOf`` branches)."""
    for key, dependency in (schema.get("dependencies") or {}).items():
        with_key = _with_values(base, schema, [key])
        if isinstance(dependency, list):
            yield Instance(f"{key}/dependencies:all", _with_values(with_key, schema, dependency), f"{key} given with {', '.join(dependency)}")
            for needed in dependency:
                full = _with_values(with_key, schema, dependency)
                full.pop(needed, None)
                yield Instance(f"{key}/dependencies:without-{needed}", full, f"{key} given without {needed}")
            continue
        branches = _branches(dependency)
        top = set(schema.get("properties") or {})
        for index, branch in enumerate(branches):
            merged = _merged(schema, branch)
            selector = (branch.get("properties") or {}).get(key)
            chosen = valid_value(selector) if isinstance(selector, Mapping) else NO_VALUE
            label = f"{key}={_label(chosen)}" if chosen is not NO_VALUE else f"{key}#{index}"
            # Fields only another branch defines leave (the base may have been filled from one).
            others = {k for b in branches if b is not branch for k in b.get("properties") or {}} - top - set(branch.get("properties") or {})
            start = {k: v for k, v in with_key.items() if k not in others}
            if chosen is not NO_VALUE:
                start[key] = chosen
            needed = [k for k in branch.get("required") or [] if k != key]
            branch_base = _with_values(start, merged, needed)
            yield Instance(f"dependencies:{label}", branch_base, f"the branch for {label}, its required fields filled")
            for field in needed:
                yield Instance(f"dependencies:{label}/missing:{field}", _set(branch_base, (field,), NO_VALUE), f"the branch for {label} without {field}")
            own = {k: v for k, v in (branch.get("properties") or {}).items() if k != key and k not in (schema.get("properties") or {})}
            yield from _property_instances({"properties": own, "required": needed}, branch_base, (), f"dependencies:{label}/")


def form_instances(schema: Mapping[str, Any], *, ignore: Iterable[str] = ()) -> list[Instance]:
    """Every probe of the object ``schema``, in a fixed order, ids unique. Top-level properties
    named in ``ignore`` (fields the host adds to a facility's form, such as SkyPortal's
    ``request_type``) are not probed."""
    base = base_instance(schema)
    found: list[Instance] = []
    for index, example in enumerate(schema.get("examples") or []):
        found.append(Instance("example" if index == 0 else f"example-{index + 1}", copy.deepcopy(example), "an example from the schema"))
    found.append(Instance("empty", {}, "nothing filled in (the form fills its defaults)"))
    minimal = {key: base[key] for key in _required_keys(schema, base) if key in base}
    found.append(Instance("minimal", minimal, "only the required fields (with those of the dependency branches it chose)"))
    found.extend(_property_instances(schema, base, (), "", frozenset(ignore)))
    found.extend(_dependency_instances(schema, base))
    found.append(Instance("unknown-key", dict(base, **{UNKNOWN_KEY: "x"}), f"an extra key {UNKNOWN_KEY!r}"))
    unique: dict[str, Instance] = {}
    for instance in found:
        unique.setdefault(instance.id, instance)
    return list(unique.values())
