"""Schema loading and validation: draft-07, formats, dependencies/oneOf enforced, no value echoed."""

import json

import pytest
from jsonschema import Draft7Validator

from facility_apis.core.errors import AltdataError, PayloadError
from facility_apis.core.schemas import (
    DRAFT7,
    FORMAT_CHECKER,
    apply_defaults,
    available_schemas,
    field_errors,
    load_document,
    load_schema,
    schema_root,
    secret_fields,
    validate,
)

BRANCHED = {
    "$schema": DRAFT7,
    "type": "object",
    "properties": {"mode": {"type": "string", "enum": ["imaging", "spectroscopy"]}},
    "required": ["mode"],
    "dependencies": {
        "mode": {
            "oneOf": [
                {
                    "properties": {"mode": {"enum": ["imaging"]}, "filters": {"type": "array", "minItems": 1}},
                    "required": ["filters"],
                },
                {
                    "properties": {"mode": {"enum": ["spectroscopy"]}, "exposure": {"type": "number", "minimum": 1}},
                    "required": ["exposure"],
                },
            ]
        }
    },
}


def test_every_shipped_schema_is_draft07_and_valid():
    names = available_schemas()
    assert "atlas/altdata" in names and "atlas/request" in names and "facility_message" in names
    for name in names:
        if name.endswith("/ui"):
            continue
        schema = load_schema(name)
        assert schema["$schema"] == DRAFT7
        Draft7Validator.check_schema(schema)


def test_repo_root_schemas_folder_is_the_package_copy():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "schemas"
    assert root.resolve() == Path(str(schema_root())).resolve()


def test_load_schema_returns_independent_copies():
    first = load_schema("atlas/altdata")
    first["properties"]["api_token"]["title"] = "changed"
    assert load_schema("atlas/altdata")["properties"]["api_token"]["title"] != "changed"


def test_schema_without_draft07_is_refused(tmp_path, monkeypatch):
    from facility_apis.core import schemas

    (tmp_path / "odd.json").write_text(json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema"}))
    monkeypatch.setattr(schemas, "schema_root", lambda package: tmp_path)
    schemas._read.cache_clear()
    schemas._load.cache_clear()
    try:
        with pytest.raises(ValueError, match="draft-07"):
            schemas.load_schema("odd")
    finally:
        schemas._read.cache_clear()
        schemas._load.cache_clear()


def test_ui_document_is_not_a_schema_but_loads():
    assert "ui:order" in load_document("atlas/ui")


def test_secret_fields_come_from_writeonly_including_branches():
    schema = {
        "properties": {"token": {"type": "string", "writeOnly": True}, "user": {"type": "string"}},
        "dependencies": {"user": {"oneOf": [{"properties": {"password": {"writeOnly": True}}}]}},
    }
    assert secret_fields(schema) == {"token", "password"}
    assert secret_fields(load_schema("atlas/altdata")) == {"api_token"}


def test_dependencies_oneof_are_enforced_and_report_the_chosen_branch():
    errors = field_errors(BRANCHED, {"mode": "imaging"})
    assert [str(e) for e in errors] == ["$.filters: is required"]
    errors = field_errors(BRANCHED, {"mode": "spectroscopy", "exposure": 0})
    assert [str(e) for e in errors] == ["$.exposure: must be at least 1"]
    assert field_errors(BRANCHED, {"mode": "imaging", "filters": ["g"]}) == []


def test_a_value_no_branch_takes_is_named_with_every_value_the_branches_allow():
    schema = {**BRANCHED, "properties": {"mode": {"type": "string"}}}  # the branches alone decide
    assert [str(e) for e in field_errors(schema, {"mode": "polarimetry"})] == ["$.mode: must be one of ['imaging', 'spectroscopy']"]
    assert [str(e) for e in field_errors(BRANCHED, {"mode": "polarimetry"})] == ["$.mode: must be one of ['imaging', 'spectroscopy']"]


def test_property_dependencies_name_the_missing_field():
    schema = {"$schema": DRAFT7, "type": "object", "dependencies": {"a": ["b"]}}
    assert [str(e) for e in field_errors(schema, {"a": 1})] == ["$.b: is required when a is given"]


def test_formats_are_checked():
    # The form (ajv-formats) checks these in the browser; the server must be at least as strict.
    assert {"date", "date-time", "email", "uri"} <= set(FORMAT_CHECKER.checkers)
    schema = {"$schema": DRAFT7, "properties": {"d": {"type": "string", "format": "date"}, "t": {"type": "string", "format": "date-time"}}}
    paths = {e.path for e in field_errors(schema, {"d": "2026-02-30", "t": "yesterday"})}
    assert paths == {"$.d", "$.t"}


DATES = {
    "$schema": DRAFT7,
    "type": "object",
    "properties": {"start_date": {"type": "string", "format": "date"}, "end_date": {"type": "string", "format": "date"}},
    "required": ["start_date", "end_date"],
    "additionalProperties": False,
}


def test_one_message_per_field_every_field_reported():
    errors = field_errors(DATES, {"start_date": 5, "extra": 1})
    assert [e.path for e in errors] == ["$.end_date", "$.extra", "$.start_date"]


@pytest.mark.parametrize(
    "value",
    ["hunter2-super-secret", "x" * 300],
)
def test_errors_never_echo_the_value(value):
    schema = {
        "$schema": DRAFT7,
        "properties": {
            "token": {"type": "string", "writeOnly": True, "maxLength": 100, "pattern": "^[a-f0-9]+$"},
            "n": {"type": "integer"},
            "kind": {"enum": ["a", "b"]},
        },
    }
    with pytest.raises(AltdataError) as caught:
        validate(schema, {"token": value, "n": value, "kind": value}, AltdataError)
    assert value not in str(caught.value)
    assert {e.path for e in caught.value.errors} == {"$.token", "$.n", "$.kind"}


def test_validate_raises_the_given_error_class_with_all_errors():
    with pytest.raises(PayloadError) as caught:
        validate(DATES, {}, PayloadError)
    assert str(caught.value) == "invalid payload: $.end_date: is required; $.start_date: is required"


def test_apply_defaults_fills_only_missing_top_level_properties():
    schema = {"properties": {"a": {"default": [1]}, "b": {"default": 2}, "c": {}}}
    filled = apply_defaults(schema, {"b": 5})
    assert filled == {"a": [1], "b": 5}
    filled["a"].append(9)
    assert schema["properties"]["a"]["default"] == [1]


def test_an_enum_error_inside_the_chosen_branch_is_reported_on_its_field():
    """A dependency branch chosen by its key: an enum error on another field (a list item) is that
    branch's error, named by its own path, not a sign that another branch was meant."""
    schema = {
        "$schema": DRAFT7,
        "type": "object",
        "properties": {"camera": {"enum": ["red", "blue"]}, "filters": {"type": "array"}, "mode": {"type": "string"}},
        "dependencies": {
            "camera": {
                "oneOf": [
                    {"properties": {"camera": {"enum": ["red"]}, "filters": {"items": {"enum": ["r", "i"]}}, "mode": {"enum": ["R1"]}}},
                    {"properties": {"camera": {"enum": ["blue"]}, "filters": {"items": {"enum": ["u", "g"]}}, "mode": {"enum": ["B1"]}}},
                ]
            }
        },
    }
    def found(instance):
        return [(e.path, e.message) for e in field_errors(schema, instance)]

    assert found({"camera": "blue", "filters": ["g", "i"]}) == [("$.filters[1]", "must be one of ['u', 'g']")]
    assert found({"camera": "blue", "mode": "R1"}) == [("$.mode", "must be one of ['B1']")]
    assert field_errors(schema, {"camera": "blue", "filters": ["u"], "mode": "B1"}) == []


# -- a pattern's failure reads as one short rule --------------------------------------------------


def _patterned(node, path="$"):
    """``(path, field schema)`` of every property holding a ``pattern``, branches and items included."""
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield path, node
        for key, value in node.items():
            yield from _patterned(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _patterned(value, f"{path}[{index}]")


def _every_form():
    from facility_apis.core.registry import default_registry

    for name in available_schemas():
        yield name, load_document(name)
    for cls in default_registry().all():  # the forms as served: patterns added in code too
        facility = cls()
        yield f"{cls.name} altdata (served)", cls.altdata_schema()
        yield f"{cls.name} request (served)", facility.request_schema()


def test_every_pattern_of_every_form_fails_with_one_short_rule_not_its_description():
    from facility_apis.core.schemas import PATTERN_RULES

    checked = 0
    for name, document in _every_form():
        for path, spec in _patterned(document):
            rule = PATTERN_RULES.get(spec["pattern"])
            assert rule is not None, f"{name} {path}: add the pattern's rule in words to core.schemas.PATTERN_RULES"
            assert rule.startswith("must ") and len(rule) <= 120 and "\n" not in rule
            # What a validation failure says: the rule, never the description.
            form = {"type": "object", "properties": {"x": {"type": "string", "pattern": spec["pattern"]}}}
            error = next(e for bad in ("\x00 \x01", "(") for e in field_errors(form, {"x": bad}))
            assert error.message == rule and (not spec.get("description") or spec["description"] not in error.message)
            checked += 1
    assert checked > 50


def test_a_pattern_the_kit_does_not_know_gives_a_short_rule_too():
    (error,) = field_errors({"type": "object", "properties": {"x": {"type": "string", "pattern": "^a+$", "description": "Long words."}}}, {"x": "b"})
    assert str(error) == "$.x: does not follow the form's rule for it (see its description)"


def test_every_secret_of_every_allocation_form_is_held_to_the_kits_length_floor_in_the_form_too():
    """``core/credentials.py`` refuses a secret shorter than SECRET_MIN_LENGTH when an allocation
    is saved; a form that states a minimum length for a secret states at least that floor, so
    SkyPortal's allocation form does not accept what saving then refuses."""
    from facility_apis.core.credentials import SECRET_MIN_LENGTH
    from facility_apis.core.registry import default_registry

    def secrets(node):
        if isinstance(node, dict):
            for key, spec in (node.get("properties") or {}).items():
                if isinstance(spec, dict) and spec.get("writeOnly"):
                    yield key, spec
            for value in node.values():
                yield from secrets(value)
        elif isinstance(node, list):
            for value in node:
                yield from secrets(value)

    for facility in default_registry().all():
        for key, spec in secrets(facility.altdata_schema()):
            assert spec.get("minLength", SECRET_MIN_LENGTH) >= SECRET_MIN_LENGTH, (facility.name, key)
