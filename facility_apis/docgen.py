"""Markdown tables for the documentation, generated from the schemas and the registry.

``docs/conf.py`` calls :func:`write_generated` when Sphinx starts; the pages pull the files in
with MyST ``{include}`` directives. The table and example functions are pure: they depend only on
the schemas, the registry and today's date (used to describe time-relative defaults in words),
and the dry-run example builds its request without sending it. Only ``write_generated`` writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.interface import IMPLEMENTABLE, Allocation, FollowupRequest, Target
from .core.plan import plan_schema
from .core.schemas import PATTERN_RULES
from .core.timeutil import DATE_PATTERN, DATE_RULE, utcnow
from .core.transport import Transport

if TYPE_CHECKING:
    from .core.interface import Facility
    from .core.registry import Registry

COLUMNS = ("Field", "Type", "Required", "Default", "Secret", "Allowed values", "Description")

#: The target used by the generated dry-run examples.
EXAMPLE_TARGET = ("ZTF26example", 150.1234, -20.5678)

_MARKDOWN_SPECIAL = "\\`*_[]<>|"


def _text(value: str) -> str:
    """Plain text for a table cell: Markdown and HTML characters escaped, one line."""
    out = " ".join(str(value).split())
    return "".join(f"\\{c}" if c in _MARKDOWN_SPECIAL else c for c in out)


def _code(value: Any) -> str:
    """A value as an inline code span (JSON spelling), safe inside a table cell."""
    text = value if isinstance(value, str) else json.dumps(value)
    text = " ".join(text.split()).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _type(spec: Mapping[str, Any]) -> str:
    kind = spec.get("type")
    if isinstance(kind, list):
        text = " or ".join(kind)
    elif kind:
        text = str(kind)
    elif "enum" in spec or "const" in spec or "oneOf" in spec:
        text = "choice"
    else:
        text = "any"
    if kind == "array" and isinstance(spec.get("items"), Mapping):
        text += f" of {_type(spec['items'])}"
    if spec.get("format"):
        text += f" ({spec['format']})"
    return text


def _allowed(spec: Mapping[str, Any]) -> str:
    """The value rules of a property in words: choices, bounds, lengths, pattern."""
    rules: list[str] = []
    if "const" in spec:
        rules.append(f"exactly {_code(spec['const'])}")
    if "enum" in spec:
        rules.append("one of " + ", ".join(_code(v) for v in spec["enum"]))
    choices = [b for b in spec.get("oneOf") or [] if isinstance(b, Mapping) and "const" in b]
    if choices:
        rules.append(
            "one of "
            + ", ".join(_code(b["const"]) + (f" ({_text(b['title'])})" if b.get("title") else "") for b in choices)
        )
    for keyword, word in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if keyword in spec:
            rules.append(f"{word} {spec[keyword]}")
    if "minLength" in spec:
        rules.append(f"at least {spec['minLength']} character{'s' if spec['minLength'] != 1 else ''}")
    if "maxLength" in spec:
        rules.append(f"at most {spec['maxLength']} characters")
    if spec.get("pattern") == DATE_PATTERN:
        rules.append(_text(DATE_RULE))  # the rule in words, not a 500-character expression
    elif spec.get("pattern") in PATTERN_RULES:
        rules.append(_text(PATTERN_RULES[spec["pattern"]]))  # as a failure reads: in words
    elif "pattern" in spec:
        rules.append(f"matches {_code(spec['pattern'])}")
    items = spec.get("items")
    if isinstance(items, Mapping):
        inner = _allowed(items)
        if inner:
            rules.append(f"each item: {inner}")
        if spec.get("uniqueItems"):
            rules.append("no repeated items")
    return "; ".join(rules)


def relative_day(value: Any, today: date) -> str | None:
    """``"30 days before today"`` for an ISO date ``value`` relative to ``today``; ``None`` when
    ``value`` is not an ISO date."""
    try:
        day = date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        day = None
    if day is None:
        return None
    delta = (day - today).days
    if delta == 0:
        return "today"
    unit = "day" if abs(delta) == 1 else "days"
    return f"{abs(delta)} {unit} {'before' if delta < 0 else 'after'} today"


def _default(key: str, spec: Mapping[str, Any], computed: Mapping[str, Any], today: date) -> str:
    if key in computed:
        words = relative_day(computed[key], today)
        return f"{words} (computed at request time)" if words else "computed at request time"
    if "default" in spec:
        return _code(spec["default"])
    return ""


def _dependencies(schema: Mapping[str, Any]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """From draft-07 property ``dependencies``: what each key requires, and who requires each key."""
    requires: dict[str, list[str]] = {}
    required_by: dict[str, list[str]] = {}
    for key, dependency in (schema.get("dependencies") or {}).items():
        if isinstance(dependency, list):
            requires[key] = list(dependency)
            for other in dependency:
                required_by.setdefault(other, []).append(key)
    return requires, required_by


def _branch_rows(schema: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], str, bool]]:
    """Properties that exist only in a ``dependencies``/``oneOf`` branch, with the condition that
    shows them: ``(name, spec, condition, required)``."""
    rows = []
    top = schema.get("properties") or {}
    for key, dependency in (schema.get("dependencies") or {}).items():
        if not isinstance(dependency, Mapping):
            continue
        branches = dependency.get("oneOf") or dependency.get("anyOf") or [dependency]
        for branch in branches:
            if not isinstance(branch, Mapping):
                continue
            properties = branch.get("properties") or {}
            selector = properties.get(key) if isinstance(properties.get(key), Mapping) else {}
            values = selector.get("enum") or ([selector["const"]] if "const" in selector else [])
            condition = f"when `{key}` is " + " or ".join(_code(v) for v in values) if values else f"when `{key}` is given"
            required = set(branch.get("required") or [])
            for name, spec in properties.items():
                if name == key or name in top or not isinstance(spec, Mapping):
                    continue
                rows.append((name, dict(spec), condition, name in required))
    return rows


def schema_table(schema: Mapping[str, Any], *, computed: Mapping[str, Any] | None = None, today: date | None = None) -> str:
    """A Markdown table of an object schema's properties, one row per property.

    ``computed`` maps the keys whose default depends on the moment of the request (a facility's
    ``request_defaults()``) to one computed value; such defaults are described relative to
    ``today`` ("30 days before today"), never printed as a date.
    """
    computed = dict(computed or {})
    today = today or utcnow().date()
    required = set(schema.get("required") or [])
    requires, required_by = _dependencies(schema)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]

    def row(key: str, spec: Mapping[str, Any], required_text: str, condition: str = "") -> None:
        words = []
        if spec.get("title"):
            words.append(f"**{_text(spec['title'])}.**")
        if spec.get("description"):
            words.append(_text(spec["description"]))
        if condition:
            words.append(f"Only {condition}.")
        if key in requires:
            words.append("Requires " + ", ".join(f"`{k}`" for k in requires[key]) + ".")
        cells = [
            f"`{key}`",
            _text(_type(spec)),
            required_text,
            _default(key, spec, computed, today),
            "yes" if spec.get("writeOnly") else "",
            _allowed(spec),
            " ".join(words),
        ]
        lines.append("| " + " | ".join(cells) + " |")

    for key, spec in (schema.get("properties") or {}).items():
        spec = spec if isinstance(spec, Mapping) else {}
        if key in required:
            required_text = "yes"
        elif key in required_by:
            required_text = "with " + " or ".join(f"`{k}`" for k in required_by[key])
        else:
            required_text = "no"
        row(key, spec, required_text)
    for key, spec, condition, needed in _branch_rows(schema):
        row(key, spec, f"yes, {condition}" if needed else "no", condition)

    notes = []
    if schema.get("additionalProperties") is False:
        notes.append("Any other field is refused.")
    if computed:
        notes.append(
            "Defaults marked *computed at request time* are filled in when the form is shown or the "
            "request is validated, never frozen into the schema."
        )
    return "\n".join(lines) + ("\n\n" + " ".join(notes) if notes else "") + "\n"


def capability_table(registry: Registry) -> str:
    """A Markdown table: one row per registered facility, one column per operation it may implement."""
    lines = [
        "| Facility | Kind | " + " | ".join(f"`{op}`" for op in IMPLEMENTABLE) + " |",
        "|---|---|" + "|".join(":-:" for _ in IMPLEMENTABLE) + "|",
    ]
    for cls in registry.all():
        implemented = cls.implements()
        marks = ["yes" if implemented.get(op) else "—" for op in IMPLEMENTABLE]
        lines.append(f"| `{cls.name}` ({_text(cls.title)}) | {cls.kind.value} | " + " | ".join(marks) + " |")
    return "\n".join(lines) + "\n"


def altdata_table(cls: type[Facility], *, today: date | None = None) -> str:
    return schema_table(cls.altdata_schema(), today=today)


def request_table(cls: type[Facility], *, today: date | None = None) -> str:
    """The request form as the facility shows it, time-relative defaults described in words."""
    facility = cls()
    return schema_table(facility.request_schema(), computed=facility.request_defaults(), today=today)


def dry_run_output(cls: type[Facility], altdata: Mapping[str, Any], payload: Mapping[str, Any], target: tuple[str, float, float] = EXAMPLE_TARGET) -> str:
    """What ``facility-apis submit <name> --dry-run`` prints for these inputs (the same steps as
    the command, for any facility class, registered or not): the HTTP request, secrets masked."""
    facility = cls()
    with Transport(secrets=facility.secrets(altdata)) as transport:
        cleaned = facility.validate_altdata(altdata)
        request = FollowupRequest(None, Target(*target), Allocation(None, cleaned), facility.validate_payload(payload, Target(*target)))
        return transport.render(facility.prepare(request))


def dry_run_example(cls: type[Facility], target: tuple[str, float, float] = EXAMPLE_TARGET) -> str | None:
    """A Markdown section body showing ``facility-apis submit <name> --dry-run`` on the schemas'
    first examples: the input files, the command and what it prints. ``None`` when the facility
    cannot prepare a request or its schemas carry no example."""
    if not cls.implements().get("prepare"):
        return None
    altdata_examples = cls.altdata_schema().get("examples") or []
    request_examples = cls().request_schema().get("examples") or []
    if not altdata_examples or not request_examples:
        return None
    obj_id, ra, dec = target
    output = dry_run_output(cls, altdata_examples[0], request_examples[0], target)
    command = (
        f"facility-apis submit {cls.name} --ra {ra} --dec {dec} --target-id {obj_id} \\\n"
        "    --altdata altdata.json --payload request.json --dry-run"
    )
    return "\n".join(
        [
            "With `altdata.json` (the schema's example, a placeholder credential):",
            "",
            "```json",
            json.dumps(altdata_examples[0], indent=2),
            "```",
            "",
            "and `request.json` (the request schema's example):",
            "",
            "```json",
            json.dumps(request_examples[0], indent=2),
            "```",
            "",
            "the command",
            "",
            "```sh",
            command,
            "```",
            "",
            "prints the request it would send, and sends nothing:",
            "",
            "```text",
            output.rstrip("\n"),
            "```",
            "",
        ]
    )


def _write(path: Path, text: str) -> bool:
    """Write ``text`` unless the file already holds it (so Sphinx does not rebuild for nothing)."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def write_generated(outdir: str | Path, registry: Registry | None = None) -> list[Path]:
    """Write ``<facility>-altdata.md``, ``<facility>-request.md`` (and ``<facility>-dry-run.md``
    where the facility can prepare its example request) for every registered facility, plus
    ``capabilities.md`` and the observation plan's fields (``observation-plan.md``,
    ``observation-plan-targets.md``, from ``core/plan.py``'s schema), into ``outdir``. Returns the paths written or already up to date."""
    from .core.registry import default_registry

    registry = registry or default_registry()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    today = utcnow().date()
    plan = plan_schema()
    files: dict[str, str] = {
        "capabilities.md": capability_table(registry),
        "observation-plan.md": schema_table(plan, today=today),
        "observation-plan-targets.md": schema_table(plan["properties"]["targets"]["items"], today=today),
    }
    for cls in registry.all():
        files[f"{cls.name}-altdata.md"] = altdata_table(cls, today=today)
        files[f"{cls.name}-request.md"] = request_table(cls, today=today)
        example = dry_run_example(cls)
        if example is not None:
            files[f"{cls.name}-dry-run.md"] = example
    paths = []
    for name, text in files.items():
        _write(outdir / name, text)
        paths.append(outdir / name)
    return paths


if __name__ == "__main__":  # pragma: no cover
    import sys

    for path in write_generated(sys.argv[1] if len(sys.argv) > 1 else "docs/generated"):
        print(path)
